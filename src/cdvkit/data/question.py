"""The one question type every part of cdvkit passes around."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# The built-in task shapes' names, for declaring what a dataset holds; each shape is a part of
# cdvkit.tasks, which reads and judges its answers (nothing here tells shapes apart by name).
MULTIPLE_CHOICE, NUMERIC, SHORT_ANSWER = "multiple_choice", "numeric", "short_answer"
# A free-form question has no choices, so no choice is its answer.
NO_CHOICE = -1


@dataclass(frozen=True)
class Question:
    """A question and what answers it right.

    ``task`` names its shape (a cdvkit.tasks part). With choices (multiple choice), ``answer``
    indexes ``choices``. Free form (``numeric``, ``short_answer``, ...): no choices, ``answer``
    is ``NO_CHOICE``, and ``references`` holds the accepted answers, the reference first and its
    aliases after it.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    source: str = ""
    subject: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    task: str = MULTIPLE_CHOICE
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Callers often hand lists; freezing them keeps questions hashable and cache keys stable.
        if not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        if not isinstance(self.references, tuple):
            object.__setattr__(self, "references", tuple(self.references))
        if not isinstance(self.task, str) or not self.task:
            raise ValueError(f"question {self.id!r}: task must name a task shape")
        if self.free_form:
            if self.answer != NO_CHOICE:
                raise ValueError(f"question {self.id!r}: a {self.task} question has no choices")
            if not self.references or not all(r.strip() for r in self.references):
                raise ValueError(f"question {self.id!r}: a {self.task} question needs its answer")
            return
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(
                f"question {self.id!r}: answer index {self.answer} is out of range "
                f"for {len(self.choices)} choices"
            )

    @property
    def key(self) -> str:
        """The question as a job for an executor (cdvkit.jobs): its calls are cached under it."""
        return self.id

    @property
    def free_form(self) -> bool:
        """Answered in the reply's own words (no choices): its answer is ``references``."""
        return not self.choices

    @property
    def answer_text(self) -> str:
        return self.references[0] if self.free_form else self.choices[self.answer]

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]

    @property
    def wrong_indices(self) -> list[int]:
        return [i for i in range(len(self.choices)) if i != self.answer]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
            "answer_text": self.answer_text,
            "source": self.source,
            "subject": self.subject,
            "metadata": self.metadata,
        }
        if self.free_form:
            # Only free-form questions carry these, so a multiple-choice question's stored form
            # (and every run directory written before them) stays as it was.
            out |= {"task": self.task, "references": list(self.references)}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Question:
        return cls(
            id=str(d["id"]),
            question=d["question"],
            choices=tuple(d["choices"]),
            answer=int(d["answer"]),
            source=d.get("source", "") or "",
            subject=d.get("subject"),
            metadata=dict(d.get("metadata") or {}),
            task=d.get("task") or MULTIPLE_CHOICE,
            references=tuple(d.get("references") or ()),
        )


def stable_id(source: str, question: str, choices: tuple[str, ...] | list[str]) -> str:
    """An id that stays the same each time a question is loaded, so resume can match rows."""
    h = hashlib.sha256(json.dumps([source, question, list(choices)]).encode()).hexdigest()
    return f"{source or 'q'}-{h[:12]}"
