"""Task shapes: what a question asks for, and how a reply's answer is read and judged right.

Each shape is one registered part (:class:`cdvkit.tasks.base.TaskShape`): multiple choice
(:mod:`.multiple_choice`, read by :mod:`cdvkit.answers`), ``numeric`` (:mod:`.numeric_answer`: a
number, right when it equals the reference within a tolerance) and ``short_answer``
(:mod:`.short_answer`: a short text, right when it matches the reference or an alias after
SQuAD-style normalisation). A plugin adds one with ``@task_shape`` (or the ``cdvkit.task_shapes``
entry point group).

A reply whose answer the reader cannot find is *undecided*, never guessed: it goes on to the
extractor, then the grader, when a run has them, and otherwise counts as wrong.

Loading questions needs the shapes (a row becomes a question of its shape), so the loaders are
offered here with the registered shapes: ``cdvkit.tasks.load_questions`` is
``cdvkit.data.load_questions`` that knows every shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdvkit.data import load_builtin as _load_builtin
from cdvkit.data import load_file as _load_file
from cdvkit.data import load_questions as _load_questions
from cdvkit.data.question import Question
from cdvkit.data.validation import LoadResult

# Imported to register the built-in shapes, in the order `cdv parts` lists them.
from cdvkit.tasks import multiple_choice, numeric_answer, short_answer  # noqa: F401
from cdvkit.tasks.base import (
    SHAPES,
    FreeReading,
    TaskShape,
    row_shapes,
    row_task,
    shape_names,
    shape_of,
    task_shape,
)


@dataclass(frozen=True)
class AnswerKey:
    """What answers one free-form question right: its shape and its accepted answers."""

    task: str
    references: tuple[str, ...]

    def __post_init__(self) -> None:
        shape = shape_of(self.task)
        if shape.has_choices:
            raise ValueError(f"an answer key is for free-form tasks, not {self.task!r}")
        shape.reference(self.references[0])  # a numeric key needs a number: raises InvalidRow

    @classmethod
    def of(cls, q: Question) -> AnswerKey | None:
        """The key of a free-form question; None for one with choices."""
        return cls(q.task, q.references) if q.free_form else None

    @property
    def shape(self) -> TaskShape:
        return shape_of(self.task)

    @property
    def reference(self) -> str:
        return self.references[0]

    def read(self, reply: str | None) -> FreeReading:
        return self.shape.read(reply)

    def is_right(self, answer: str | None) -> bool:
        return self.shape.is_right(answer, self.references)

    def canonical(self, answer: str) -> str:
        """One spelling per distinct answer, so "$1,080" and "1080" count as one wrong answer."""
        return self.shape.canonical(answer)


def load_questions(spec: str, **options: Any) -> LoadResult:
    """:func:`cdvkit.data.load_questions` with every registered task shape."""
    return _load_questions(spec, shapes=row_shapes(), **options)


def load_file(path: str | Path, **options: Any) -> LoadResult:
    """:func:`cdvkit.data.load_file` with every registered task shape."""
    return _load_file(path, shapes=row_shapes(), **options)


def load_builtin(name: str, **options: Any) -> LoadResult:
    """:func:`cdvkit.data.load_builtin` with every registered task shape."""
    return _load_builtin(name, shapes=row_shapes(), **options)


__all__ = [
    "SHAPES",
    "AnswerKey",
    "FreeReading",
    "TaskShape",
    "load_builtin",
    "load_file",
    "load_questions",
    "row_shapes",
    "row_task",
    "shape_names",
    "shape_of",
    "task_shape",
]
