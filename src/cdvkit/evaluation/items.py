"""What an evaluation runs on: questions paired with their CDV examples, from any source.

Sources are a run store (``example_rows``), cdvkit's own JSONL export, or the reference
implementation's output (``reference``), read from a file by ``examples_file``; all of them
become these types, so the evaluation never knows where its examples came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import MULTIPLE_CHOICE
from cdvkit.tasks import AnswerKey

ORIGINAL = "original"


@dataclass(frozen=True)
class Variant:
    """One version of a question a model is asked: the original or a distracted one."""

    key: str  # "original" or "example:<id>"
    question: str
    choices: tuple[str, ...]
    answer: int
    # Free-form questions: their shape and accepted answers (no choices, answer NO_CHOICE).
    task: str = MULTIPLE_CHOICE
    references: tuple[str, ...] = ()

    @property
    def answer_key(self) -> AnswerKey | None:
        return None if self.task == MULTIPLE_CHOICE else AnswerKey(self.task, self.references)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
        }
        if self.task != MULTIPLE_CHOICE:
            out |= {"task": self.task, "references": list(self.references)}
        return out


@dataclass(frozen=True)
class EvalItem:
    """A question with at least one CDV example; the unit that statistics resample."""

    id: str
    dataset: str
    original: Variant
    examples: tuple[Variant, ...]

    def variants(self, all_examples: bool) -> list[Variant]:
        chosen = self.examples if all_examples else self.examples[:1]
        return [self.original, *chosen]


@dataclass
class ExampleSet:
    """Examples found against one target: one row of the transfer matrix."""

    label: str  # the target the examples were found against (or a name for the file)
    kind: str  # "run" | "jsonl" | "reference"
    path: str
    items: list[EvalItem]
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "path": self.path,
            "questions": len(self.items),
            "examples": sum(len(i.examples) for i in self.items),
            "skipped": len(self.skipped),
        }
