"""Checking one row's fields and building its Question: shared by every file format and by the
hub converters, so a defect reads the same wherever the row came from.

A defect raises InvalidRow with what is wrong; the reader that met the row adds the file and the
row number (RowProblem).

Multiple-choice rows are built by ``build_question``; free-form rows (numeric and short answers:
no choices, the answer and its aliases as ``references``) by ``build_free_form``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cdvkit.data.question import LETTERS, MULTIPLE_CHOICE, NO_CHOICE, Question, stable_id


@dataclass(frozen=True)
class RowProblem:
    """One row that could not be turned into a question."""

    path: str
    row: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.row}: {self.message}"


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says which file, which row and what is wrong."""

    def __init__(self, message: str, *, problem: RowProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


class InvalidRow(DatasetError):
    """A single row is defective; the loader that reads it adds the file and row number."""


@dataclass
class LoadResult:
    """Questions that loaded, (with ``skip_invalid``) the rows that did not, and repaired rows."""

    questions: list[Question]
    skipped: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)  # rows loaded after a repair

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def task(self) -> str | None:
        """The task shape of the questions (a file holds one), or None when none loaded."""
        return self.questions[0].task if self.questions else None


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _choice_name(i: int) -> str:
    return LETTERS[i] if i < len(LETTERS) else f"#{i + 1}"


def _resolve_answer(
    answer: Any,
    choices: Sequence[str],
    *,
    labels: Sequence[str] | None,
    digits_are_indices: bool,
) -> int:
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise InvalidRow("answer is missing")
    # bool is an int subclass; `true` as an answer is a data error, not index 1.
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        raise InvalidRow(
            f"answer must be the choice text, an index or a letter, got {short(answer)}"
        )
    n = len(choices)
    if isinstance(answer, int):
        if not 0 <= answer < n:
            raise InvalidRow(f"answer index {answer} is out of range for {n} choices (0-{n - 1})")
        return answer

    # Hub-shaped choices carry their own labels, and answerKey names one of them; a choice
    # text that happens to equal a label ("A") must not win over it.
    if labels is not None and answer.strip() in labels:
        return list(labels).index(answer.strip())
    # Otherwise text first: that is the reference format, and a choice may itself be "A" or "3".
    if answer in choices:
        return choices.index(answer)
    stripped = [c.strip() for c in choices]
    if answer.strip() in stripped:
        return stripped.index(answer.strip())
    key = answer.strip()
    if len(key) == 1 and key in LETTERS:
        index = LETTERS.index(key)
        if index >= n:
            raise InvalidRow(
                f"answer {answer!r} is not one of the choices, and as a letter it is out of range "
                f"for {n} choices (A-{LETTERS[n - 1]})"
            )
        return index
    if digits_are_indices and key.isdigit():
        index = int(key)
        if index >= n:
            raise InvalidRow(
                f"answer {answer!r} is not one of the choices, and as an index it is out of range "
                f"for {n} choices (0-{n - 1})"
            )
        return index
    hint = ""
    if key.isdigit():
        # JSON has real numbers, so a quoted digit is more likely a typo than an index.
        hint = " (write an index as a JSON number, not a string)"
    raise InvalidRow(f"answer {short(answer)} is not one of the choices{hint}")


def _clean_choices(raw: Any) -> tuple[list[str], list[str] | None]:
    """Return choice texts and, for hub-shaped ``{"label": [...], "text": [...]}``, the labels."""
    labels: list[str] | None = None
    if isinstance(raw, Mapping):
        texts = raw.get("text")
        if not isinstance(texts, list):
            raise InvalidRow("choices is an object without a 'text' list")
        raw_labels = raw.get("label")
        if raw_labels is not None:
            if not isinstance(raw_labels, list) or len(raw_labels) != len(texts):
                raise InvalidRow("choices 'label' list does not match its 'text' list")
            labels = [str(x).strip() for x in raw_labels]
        raw = texts
    if raw is None:
        raise InvalidRow("choices are missing")
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidRow(f"choices must be a list, got {type(raw).__name__}")
    out: list[str] = []
    for i, c in enumerate(raw):
        # Numbers are common choices (arithmetic questions); nested values or nulls are not.
        if isinstance(c, bool) or not isinstance(c, str | int | float):
            raise InvalidRow(f"choice {_choice_name(i)} is not text: {short(c)}")
        text = c if isinstance(c, str) else str(c)
        if not text.strip():
            raise InvalidRow(f"choice {_choice_name(i)} is empty")
        out.append(text)
    return out, labels


def _check_question_text(question: Any) -> None:
    if question is None:
        raise InvalidRow("question is missing")
    if not isinstance(question, str):
        raise InvalidRow(f"question must be text, got {type(question).__name__}")
    if not question.strip():
        raise InvalidRow("question is empty")


def _row_id(id: Any) -> str | None:
    return str(id).strip() if id is not None and str(id).strip() else None


def build_question(
    *,
    question: Any,
    choices: Any,
    answer: Any,
    source: str,
    id: Any = None,
    subject: Any = None,
    metadata: Mapping[str, Any] | None = None,
    digits_are_indices: bool = False,
    repairs: list[str] | None = None,
    task: str = MULTIPLE_CHOICE,
) -> Question:
    """Validate one row's fields and build a Question, raising InvalidRow on the first defect.

    ``answer`` may be the choice text, a 0-based int, a letter A-Z, or a label from hub-shaped
    choices; with ``digits_are_indices`` (CSV, where everything is text) a digit string that is
    not itself a choice is taken as a 0-based index.

    Repeated choices are a defect; when a ``repairs`` list is given (lenient loading) they are
    collapsed into one instead, which leaves the question and its answer unchanged, and the
    repair is described in ``repairs`` so the caller can report it with the row number.
    """
    _check_question_text(question)
    texts, labels = _clean_choices(choices)
    if len(texts) < 2:
        raise InvalidRow(f"has {len(texts)} choice(s); a multiple-choice question needs at least 2")
    if len(texts) > len(LETTERS):
        raise InvalidRow(f"has {len(texts)} choices; at most {len(LETTERS)} (A-Z) are supported")
    seen: dict[str, int] = {}
    keep: list[int] = []  # position in the collapsed list of each original choice
    dupes: list[str] = []
    for i, c in enumerate(texts):
        # Whitespace-only differences look identical to a model, so they count as duplicates.
        key = c.strip()
        if key in seen:
            message = (
                f"duplicate choices: {short(c)} is both choice {_choice_name(seen[key])} "
                f"and choice {_choice_name(i)}"
            )
            if repairs is None:
                raise InvalidRow(message)
            dupes.append(message)
            keep.append(keep[seen[key]])
            continue
        seen[key] = i
        keep.append(len(seen) - 1)
    index = _resolve_answer(answer, texts, labels=labels, digits_are_indices=digits_are_indices)
    if dupes:
        assert repairs is not None
        texts = [texts[i] for i in sorted(seen.values())]
        index = keep[index]
        if len(texts) < 2:
            raise InvalidRow(
                f"{dupes[0]}; after collapsing repeats only {len(texts)} distinct choice is left"
            )
        repairs.append("; ".join(dupes) + " (collapsed into one; the answer is unchanged)")
    if subject is not None and not isinstance(subject, str):
        subject = str(subject)
    return Question(
        id=_row_id(id) or stable_id(source, question, texts),
        question=question,
        choices=tuple(texts),
        answer=index,
        source=source,
        subject=subject or None,
        metadata=dict(metadata or {}),
        task=task,
    )


# ---------------------------------------------------------------------------------------------
# Task shapes, as rows need them (cdvkit.tasks defines them)
# ---------------------------------------------------------------------------------------------


class RowShape(Protocol):
    """What loading a row needs of a task shape; :class:`cdvkit.tasks.TaskShape` is one.

    The data layer knows no shape by name: the loaders are given the shapes
    (``shapes: Mapping[str, RowShape]``, by name) and ask them."""

    name: str
    has_choices: bool
    infer_rank: int | None
    answer_noun: str  # one answer of the shape, in a sentence: "number"
    row_claim: str  # how a row's answer that it claims is said: "is a number" ("": none)

    def claims(self, answer: Any) -> bool: ...

    def reference(self, answer: Any) -> tuple[str, dict[str, Any]]: ...


Shapes = Mapping[str, RowShape]


def resolve_task(task: str | None, shapes: Shapes) -> str | None:
    """Check a task shape a user named (``--task``); ``None`` (or "auto") means "infer it from
    the data"."""
    if task is None:
        return None
    key = str(task).strip().lower().replace("-", "_")
    if key in ("", "auto"):
        return None
    if key not in shapes:
        raise DatasetError(f"unknown task {task!r}; choose auto or one of {', '.join(shapes)}")
    return key


def has_choices(choices: Any) -> bool:
    """Whether a row gives choices. Absent, null or ``""`` (an empty CSV cell) means none; an
    empty list still declares a row with choices (one with too few)."""
    return choices is not None and not (isinstance(choices, str) and not choices.strip())


def infer_task(choices: Any, answer: Any, shapes: Shapes) -> str:
    """The shape a row reads as: the first shape (by ``infer_rank``) that takes rows like it:
    with choices, the shape with choices; without, the first whose ``claims(answer)`` holds."""
    ranked = sorted(
        (s for s in shapes.values() if s.infer_rank is not None), key=lambda s: s.infer_rank or 0
    )
    with_choices = has_choices(choices)
    for shape in ranked:
        if shape.has_choices == with_choices and (with_choices or shape.claims(answer)):
            return shape.name
    raise DatasetError("no task shape takes this row; set one with --task")


def answer_text(answer: Any) -> str:
    """A free-form answer as text: numbers as written in Python (72 -> "72", 0.5 -> "0.5")."""
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise InvalidRow("answer is missing")
    if isinstance(answer, bool) or not isinstance(answer, int | float | str):
        raise InvalidRow(f"answer must be text or a number, got {short(answer)}")
    if isinstance(answer, float) and not math.isfinite(answer):
        raise InvalidRow(f"answer {answer!r} is not a finite number")
    return answer.strip() if isinstance(answer, str) else str(answer)


def parse_aliases(aliases: Any, *, text_cell: bool = False) -> list[str]:
    """A row's aliases: a list of strings; from a CSV cell, a JSON list or ``a|b|c``."""
    if aliases is None:
        return []
    if text_cell and isinstance(aliases, str):
        cell = aliases.strip()
        if not cell:
            return []
        if cell.startswith("["):
            try:
                aliases = json.loads(cell)
            except (ValueError, RecursionError):
                raise InvalidRow(f"aliases is not a JSON list: {short(cell)}") from None
        else:
            aliases = [part.strip() for part in cell.split("|")]
    if isinstance(aliases, str) or not isinstance(aliases, list | tuple):
        raise InvalidRow(f"aliases must be a list of strings, got {type(aliases).__name__}")
    out: list[str] = []
    for i, alias in enumerate(aliases, start=1):
        if not isinstance(alias, str):
            raise InvalidRow(f"alias {i} is not text: {short(alias)}")
        if not alias.strip():
            raise InvalidRow(f"alias {i} is empty")
        out.append(alias.strip())
    return out


def build_free_form(
    *,
    shape: RowShape,
    question: Any,
    answer: Any,
    source: str,
    aliases: Any = None,
    id: Any = None,
    subject: Any = None,
    metadata: Mapping[str, Any] | None = None,
    aliases_text: bool = False,
) -> Question:
    """Validate one free-form row and build its Question, raising InvalidRow on the first defect.

    ``answer`` is text or a number (kept as text), made a reference by ``shape`` (a numeric
    shape refuses one that is no number, and takes a worked solution's final number, keeping the
    solution in metadata). ``aliases`` are more accepted answers (with ``aliases_text``, a CSV
    cell: a JSON list or ``a|b``). The references are the answer then its aliases, repeats
    (after strip) removed.
    """
    if shape.has_choices:
        raise ValueError(f"not a free-form task: {shape.name!r}")
    _check_question_text(question)
    reference, added = shape.reference(answer)
    meta = dict(metadata or {}) | added
    references: list[str] = []
    for text in (reference, *parse_aliases(aliases, text_cell=aliases_text)):
        if text.strip() not in references:
            references.append(text.strip())
    if subject is not None and not isinstance(subject, str):
        subject = str(subject)
    return Question(
        id=_row_id(id) or stable_id(source, question, references),
        question=question,
        choices=(),
        answer=NO_CHOICE,
        source=source,
        subject=subject or None,
        metadata=meta,
        task=shape.name,
        references=tuple(references),
    )
