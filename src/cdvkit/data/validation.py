"""Checking one row's fields and building its Question: shared by every file format and by the
hub converters, so a defect reads the same wherever the row came from.

A defect raises InvalidRow with what is wrong; the reader that met the row adds the file and the
row number (RowProblem).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import LETTERS, Question, stable_id


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
) -> Question:
    """Validate one row's fields and build a Question, raising InvalidRow on the first defect.

    ``answer`` may be the choice text, a 0-based int, a letter A-Z, or a label from hub-shaped
    choices; with ``digits_are_indices`` (CSV, where everything is text) a digit string that is
    not itself a choice is taken as a 0-based index.

    Repeated choices are a defect; when a ``repairs`` list is given (lenient loading) they are
    collapsed into one instead, which leaves the question and its answer unchanged, and the
    repair is described in ``repairs`` so the caller can report it with the row number.
    """
    if question is None:
        raise InvalidRow("question is missing")
    if not isinstance(question, str):
        raise InvalidRow(f"question must be text, got {type(question).__name__}")
    if not question.strip():
        raise InvalidRow("question is empty")
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
    qid = str(id).strip() if id is not None and str(id).strip() else None
    return Question(
        id=qid or stable_id(source, question, texts),
        question=question,
        choices=tuple(texts),
        answer=index,
        source=source,
        subject=subject or None,
        metadata=dict(metadata or {}),
    )
