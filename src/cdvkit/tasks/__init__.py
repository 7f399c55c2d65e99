"""Task shapes: what a question asks for, and how a reply's answer is read and judged right.

Multiple choice is read by :mod:`cdvkit.answers`. The free-form shapes are read here:

- ``numeric``: a number (:mod:`cdvkit.tasks.numeric`), right when it equals the reference within
  a tolerance, after commas, currency, percent signs, units, fractions and markup are dropped;
- ``short_answer``: a short text (:mod:`cdvkit.tasks.short`), right when it matches the reference
  or one of its aliases after SQuAD-style normalisation.

A reply whose answer the reader cannot find is *undecided*, never guessed: it goes on to the
extractor, then the grader, when a run has them, and otherwise counts as wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdvkit.data.question import MULTIPLE_CHOICE, NUMERIC, SHORT_ANSWER, TASKS, Question
from cdvkit.tasks.numeric import parse_number, read_number, reference_number, same_number
from cdvkit.tasks.short import normalize_answer, read_short, short_matches

FREE_TASKS = (NUMERIC, SHORT_ANSWER)


@dataclass(frozen=True)
class FreeReading:
    """A free-form reply's final answer as written (``answer``), or None and why not."""

    answer: str | None
    reason: str  # "" when answer is set, else "no answer" | "ambiguous" | "refused" | ...
    how: str = ""


@dataclass(frozen=True)
class AnswerKey:
    """What answers one free-form question right: its shape and its accepted answers."""

    task: str
    references: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.task not in FREE_TASKS:
            raise ValueError(f"an answer key is for free-form tasks, not {self.task!r}")
        if self.task == NUMERIC and reference_number(self.references[0]) is None:
            raise ValueError(f"the reference answer {self.references[0]!r} is not a number")

    @classmethod
    def of(cls, q: Question) -> AnswerKey | None:
        """The key of a free-form question; None for multiple choice."""
        return cls(q.task, q.references) if q.free_form else None

    @property
    def reference(self) -> str:
        return self.references[0]

    def read(self, reply: str | None) -> FreeReading:
        if self.task == NUMERIC:
            num = read_number(reply)
            return FreeReading(num.text if num.value is not None else None, num.reason, num.how)
        short = read_short(reply)
        return FreeReading(short.text, short.reason, short.how)

    def is_right(self, answer: str | None) -> bool:
        if answer is None:
            return False
        if self.task == NUMERIC:
            got, want = parse_number(answer), reference_number(self.reference)
            return got is not None and want is not None and same_number(got, want)
        return short_matches(answer, self.references)

    def canonical(self, answer: str) -> str:
        """One spelling per distinct answer, so "$1,080" and "1080" count as one wrong answer."""
        if self.task == NUMERIC:
            value = parse_number(answer)
            if value is not None:
                return f"{value:.6g}"
        return normalize_answer(answer)


__all__ = [
    "FREE_TASKS",
    "MULTIPLE_CHOICE",
    "NUMERIC",
    "SHORT_ANSWER",
    "TASKS",
    "AnswerKey",
    "FreeReading",
]
