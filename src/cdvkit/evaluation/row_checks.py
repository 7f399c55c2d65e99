"""Checking the rows of an examples file, field by field, shared by both of its formats.

A malformed row is named with its 1-based row number and its first defect, and the whole load
fails with every such row listed: an evaluation over silently thinned data would mislead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.evaluation.items import EvalItem

MAX_REPORTED = 20  # malformed rows listed in an ExamplesFileError message; the rest are counted
IDENTICAL = "identical to its original question (no distraction)"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LETTER = re.compile(r"\(([A-Za-z])\)|([A-Za-z])[).:]?")


def no_example_left(where: str, identical: int) -> str:
    """A question whose every example is its original (for the reference: the mark that the
    target already failed the original) is one skipped entry, in either format."""
    which = "its only example is" if identical == 1 else f"its {identical} examples are"
    return f"{where}: no CDV example, question skipped: {which} {IDENTICAL}"


class ExamplesFileError(ValueError):
    """Rows of an examples file are malformed; the message names the file and every bad row."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.name = name
        self.problems = problems  # "row N: what is wrong", one line per malformed row
        n = len(problems)
        lines = [f"{name}: {n} malformed row{'' if n == 1 else 's'}"]
        lines += [f"{name} {p}" for p in problems[:MAX_REPORTED]]
        if n > MAX_REPORTED:
            lines.append(f"... and {n - MAX_REPORTED} more")
        super().__init__("\n".join(lines))


class BadRow(Exception):
    """One row's first defect; the reader adds the row number."""


@dataclass
class Row:
    number: int  # 1-based: the line of a JSONL file, the entry of a JSON list
    data: Any = None
    error: str | None = None  # the line is no JSON at all

    def object(self) -> dict[str, Any]:
        """The row as a JSON object; BadRow when it is no JSON or not an object."""
        if self.error is not None:
            raise BadRow(self.error)
        if not isinstance(self.data, dict):
            raise BadRow(f"is not a JSON object but {json_kind(self.data)}")
        return self.data


@dataclass
class ReadRows:
    items: list[EvalItem]
    skipped: list[str]
    problems: list[str]
    # Questions the rows name without a CDV example: they still count in the accuracy over
    # every question of the dataset.
    others: list[EvalItem] = field(default_factory=list)


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a very long number"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number_text(value: int | float) -> str:
    try:
        return str(value)
    except ValueError:  # an integer too long to print
        return _short(value)


def json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, bool):
        return f"JSON {str(value).lower()}"
    if value is None:
        return "JSON null"
    if isinstance(value, int | float):
        return f"the number {_short(value)}"
    return f"the text {_short(value)}"


def checked_text(value: Any, name: str) -> str:
    if value is None:
        raise BadRow(f"{name} is missing")
    if not isinstance(value, str):
        raise BadRow(f"{name} must be text, got {json_kind(value)}")
    if not value.strip():
        raise BadRow(f"{name} is empty")
    if _LONE_SURROGATE.search(value):
        raise BadRow(f"{name} contains a lone surrogate escape (\\ud800-\\udfff), not valid text")
    return value


def optional_text(value: Any, name: str) -> str | None:
    """An optional label (id, source, path, target): text or a number; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRow(f"{name} must be text, got {json_kind(value)}")
    text = value if isinstance(value, str) else _number_text(value)
    if _LONE_SURROGATE.search(text):
        raise BadRow(f"{name} contains a lone surrogate escape (\\ud800-\\udfff), not valid text")
    return text.strip() or None


def checked_choices(value: Any, name: str, *, numbers: bool = False) -> list[str]:
    """A non-empty list of texts (with ``numbers``, numeric choices are read as their text)."""
    if value is None:
        raise BadRow(f"{name} is missing")
    if not isinstance(value, list):
        raise BadRow(f"{name} must be a list of texts, got {json_kind(value)}")
    if not value:
        raise BadRow(f"{name} is empty")
    if len(value) > len(LETTERS):
        raise BadRow(f"{name} has {len(value)} choices; at most {len(LETTERS)} (A-Z) are supported")
    out = []
    for i, c in enumerate(value):
        if numbers and isinstance(c, int | float) and not isinstance(c, bool):
            c = _number_text(c)
        elif c is None:
            raise BadRow(f"{name}[{i}] must be text, got JSON null")
        out.append(checked_text(c, f"{name}[{i}]"))
    return out


def _choice_names(indices: list[int]) -> str:
    return ", ".join(LETTERS[i] for i in indices)


def answer_index(answer: Any, choices: list[str], name: str = "answer") -> int:
    """A 0-based index (a number or a string of digits), a letter (A, b, "(C)") or the choice's
    text (exact, or equal after stripping and case-folding when that names one choice)."""
    n = len(choices)
    if answer is None:
        raise BadRow(f"{name} is missing")
    # bool is an int subclass; `true` as an answer is a data error, not index 1.
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        raise BadRow(f"{name} must be a choice's index, letter or text, got {json_kind(answer)}")
    if isinstance(answer, int):
        if 0 <= answer < n:
            return answer
        raise BadRow(f"{name} {_short(answer)} is out of range for its {n} choices (0-{n - 1})")
    key = answer.strip()
    if not key:
        raise BadRow(f"{name} is empty")
    # Text first: a choice may itself be "A" or "3".
    for matches in (
        [i for i, c in enumerate(choices) if c == answer],
        [i for i, c in enumerate(choices) if c.strip() == key],
    ):
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise BadRow(
                f"{name} {_short(answer)} is ambiguous: it is choices {_choice_names(matches)}"
            )
    folded = [i for i, c in enumerate(choices) if c.strip().casefold() == key.casefold()]
    if len(folded) > 1:
        raise BadRow(
            f"{name} {_short(answer)} is ambiguous: ignoring case it is choices "
            f"{_choice_names(folded)}"
        )
    index: int | None = None
    as_what = ""
    letter = _LETTER.fullmatch(key)
    if key.isascii() and key.isdigit():
        index, as_what = (
            (int(key) if len(key) < 9 else n),
            f"as an index it is out of range (0-{n - 1})",
        )
    elif letter:
        index = LETTERS.index((letter.group(1) or letter.group(2)).upper())
        as_what = f"as a letter it is out of range (A-{LETTERS[n - 1]})"
    if index is not None and index < n:
        if folded and folded[0] != index:
            raise BadRow(
                f"{name} {_short(answer)} is ambiguous: as a letter it is choice {LETTERS[index]}, "
                f"ignoring case it is the text of choice {LETTERS[folded[0]]}"
            )
        return index
    if folded:
        return folded[0]
    why = f", and {as_what}" if index is not None else ""
    raise BadRow(f"{name} {_short(answer)} is not one of its {n} choices{why}")


def same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())
