"""What an evaluation runs on: questions paired with their CDV examples, from any source.

Sources are a run store (``example_rows``), cdvkit's own JSONL export, or the reference
implementation's output (``reference``), read from a file by ``examples_file``; all of them
become these types, so the evaluation never knows where its examples came from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import MULTIPLE_CHOICE
from cdvkit.tasks import AnswerKey

ORIGINAL = "original"
ORDER = "order"  # key prefix of the order-only control's variants


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
        return AnswerKey(self.task, self.references) if not self.choices else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
        }
        if not self.choices:
            # Only free-form variants carry these, so older files read the same.
            out |= {"task": self.task, "references": list(self.references)}
        return out


@dataclass(frozen=True)
class EvalItem:
    """A question of the dataset and its CDV examples (none for a question the search found no
    example for); the unit that statistics resample."""

    id: str
    dataset: str
    original: Variant
    examples: tuple[Variant, ...]
    subject: str | None = None
    # The search's target already failed it undistracted: no CDV example, but the paper's
    # enhanced accuracy counts it as its own distracted version.
    failed: bool = False

    def variants(self, all_examples: bool) -> list[Variant]:
        return [self.original, *self.chosen(all_examples)]

    def chosen(self, all_examples: bool) -> tuple[Variant, ...]:
        """The examples an evaluation asks: the first, or every one."""
        return self.examples if all_examples else self.examples[:1]

    def reordered(self, example: Variant) -> Variant | None:
        """The order-only control of ``example``: the original question's text with the
        example's choices in the example's order, so a drop splits into what the new order
        costs and what the distraction costs. The original itself when the order is unchanged;
        None for a free-form question (no choices to reorder)."""
        if not example.choices:
            return None
        if example.choices == self.original.choices and example.answer == self.original.answer:
            return self.original
        # Keyed by the order, not by the example: examples sharing an order share one answer.
        digest = hashlib.sha256(json.dumps([*example.choices, example.answer]).encode())
        return Variant(
            f"{ORDER}:{digest.hexdigest()[:16]}",
            self.original.question,
            example.choices,
            example.answer,
        )

    def group(self, by: str) -> str:
        """The row this question falls in when results are split ``by`` dataset or subject."""
        name = self.subject if by == "subject" else self.dataset
        return name or "(none)"


@dataclass
class ExampleSet:
    """Examples found against one target: one row of the transfer matrix."""

    label: str  # the target the examples were found against (or a name for the file)
    kind: str  # "run" | "jsonl" | "reference"
    path: str
    items: list[EvalItem]  # the questions with at least one example
    skipped: list[str] = field(default_factory=list)
    # The dataset's other questions (no example; originally failed ones marked ``failed``).
    others: list[EvalItem] = field(default_factory=list)
    # items + others are every question of the dataset (a run, a reference file, a JSONL file
    # given its --data); False: only the questions with an example are known.
    whole: bool = False
    # The targets every example of a run fools under its protocol ("by construction" applies to
    # them): a run's target; a multi-target run's targets when it required all to be fooled.
    targets: tuple[str, ...] = ()
    protocol: Any = None  # the run's own protocol (cdvkit.protocol.Protocol)
    baseline: str | None = None  # the rewrite proposer of a baseline run (no search)

    @property
    def every(self) -> list[EvalItem]:
        """Every known question of the dataset, those with an example first."""
        return [*self.items, *self.others]

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "path": self.path,
            "questions": len(self.items),
            "examples": sum(len(i.examples) for i in self.items),
            "skipped": len(self.skipped),
            "dataset_questions": len(self.every) if self.whole else None,
            "originally_failed": sum(i.failed for i in self.others),
            "baseline": self.baseline,
        }
