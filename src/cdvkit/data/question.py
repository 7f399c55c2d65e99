"""The one question type every part of cdvkit passes around."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Question:
    """A multiple-choice question with its correct answer as an index into ``choices``."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    source: str = ""
    subject: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Callers often hand lists; freezing them keeps questions hashable and cache keys stable.
        if not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
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
    def answer_text(self) -> str:
        return self.choices[self.answer]

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]

    @property
    def wrong_indices(self) -> list[int]:
        return [i for i in range(len(self.choices)) if i != self.answer]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
            "answer_text": self.answer_text,
            "source": self.source,
            "subject": self.subject,
            "metadata": self.metadata,
        }

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
        )


def stable_id(source: str, question: str, choices: tuple[str, ...] | list[str]) -> str:
    """An id that stays the same each time a question is loaded, so resume can match rows."""
    h = hashlib.sha256(json.dumps([source, question, list(choices)]).encode()).hexdigest()
    return f"{source or 'q'}-{h[:12]}"
