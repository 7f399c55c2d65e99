"""Raw rows from each file format (JSON list, JSON Lines, CSV/TSV), each with its row number.

Readers only find the rows and what keeps a row from being read at all (bad bytes, broken JSON,
a CSV row longer than its header); the fields are checked alike for every format afterwards
(``cdvkit.data.validation``). A defect of the file as a whole raises DatasetError at once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.data.validation import DatasetError, short

# Bytes that are not UTF-8 are decoded with surrogateescape, so they survive as lone surrogates
# and can be pinned to the row that holds them instead of failing the whole file.
_SURROGATE = re.compile("[\udc80-\udcff]")
# Any surrogate code point. In valid UTF-8 text one can only come from a JSON escape such as
# "\ud800" that is not half of a pair; such a string cannot be encoded, so the run store and every
# model client would fail on it in the middle of a search.
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
LONE_SURROGATE = (
    "contains a lone surrogate escape (\\ud800-\\udfff not part of a pair), "
    "which is not valid Unicode text"
)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included.

    Iterative, since a row may be nested nearly as deep as the JSON decoder allows and a
    recursive walk would then overflow the stack.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, Mapping):
            for k, item in v.items():
                stack.append(k)
                stack.append(item)
        elif isinstance(v, list | tuple):
            stack.extend(v)


def _has_bad_bytes(value: Any) -> bool:
    return any(_SURROGATE.search(s) for s in _strings(value))


def has_lone_surrogates(value: Any) -> bool:
    return any(_ANY_SURROGATE.search(s) for s in _strings(value))


@dataclass
class RawRow:
    row: int
    data: dict[str, Any] | None = None
    error: str | None = None  # a defect found before the fields could be read
    digits_are_indices: bool = False
    from_csv: bool = False  # every cell is text (aliases may be a JSON list or "a|b")


_BAD_BYTES = (
    "contains bytes that are not valid UTF-8 (was the file saved in another encoding, "
    "such as Latin-1 or cp1252?)"
)


@dataclass
class DecodedText:
    text: str
    bad_bytes: bool  # True when the file was not valid UTF-8
    first_bad_offset: int = -1
    first_bad_line: int = -1

    def bad_bytes_location(self) -> str:
        return f"line {self.first_bad_line} (byte offset {self.first_bad_offset})"


def read_text(path: Path) -> DecodedText:
    data = path.read_bytes()
    try:
        return DecodedText(data.decode("utf-8-sig"), False)
    except UnicodeDecodeError as exc:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        offset = exc.start + bom
        line = data.count(b"\n", 0, offset) + 1
        return DecodedText(data.decode("utf-8-sig", errors="surrogateescape"), True, offset, line)


def _number_error(exc: ValueError) -> str:
    # Python refuses to convert integers of more than 4300 digits (a defence against slow
    # parsing); its message ends with advice for programmers, not for the file's author.
    return "a number too long to read: " + str(exc).split(";")[0]


def json_rows(path: Path, text: DecodedText) -> Iterator[RawRow]:
    try:
        data = json.loads(text.text)
    except RecursionError:
        raise DatasetError(f"{path}: not valid JSON: nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.text.lstrip().startswith("{"):
            # Many tools (including datasets' to_json) write JSON Lines under a .json name.
            yield from jsonl_rows(path, text)
            return
        if text.bad_bytes:
            # A stray byte outside any string breaks the JSON itself; name where it is.
            raise DatasetError(f"{path}: {text.bad_bytes_location()}: {_BAD_BYTES}") from None
        raise DatasetError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except ValueError as exc:  # a number too long to convert (sys.get_int_max_str_digits)
        raise DatasetError(f"{path}: not valid JSON: {_number_error(exc)}") from None
    if not isinstance(data, list):
        raise DatasetError(
            f"{path}: a .json dataset must be a list of question objects, "
            f"got a JSON {type(data).__name__}"
        )
    for i, item in enumerate(data, start=1):
        if text.bad_bytes and _has_bad_bytes(item):
            yield RawRow(i, error=f"row {_BAD_BYTES}")
        elif not isinstance(item, dict):
            yield RawRow(i, error=f"row is not an object but a JSON {type(item).__name__}")
        else:
            yield RawRow(i, item)


def jsonl_rows(path: Path, text: DecodedText) -> Iterator[RawRow]:
    # Split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings.
    for lineno, line in enumerate(text.text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if text.bad_bytes and _SURROGATE.search(line):
            yield RawRow(lineno, error=f"line {_BAD_BYTES}")
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(lineno, error=f"malformed JSON line (column {exc.colno}): {exc.msg}")
            continue
        except RecursionError:
            yield RawRow(lineno, error="malformed JSON line: nested too deeply to read")
            continue
        except ValueError as exc:
            yield RawRow(lineno, error=f"malformed JSON line: {_number_error(exc)}")
            continue
        if not isinstance(item, dict):
            yield RawRow(lineno, error=f"row is not an object but a JSON {type(item).__name__}")
        else:
            yield RawRow(lineno, item)


_CHOICE_N = re.compile(r"choice_(\d+)")


def _csv_choice_columns(header: list[str], path: Path, required: bool) -> list[int] | None:
    """Column indices of the choices in order, or None when a ``choices`` column is used.

    A header without choices gives ``[]`` (free-form questions), or is a defect if ``required``.
    """
    names = [h.strip() for h in header]
    if "choices" in names:
        return None
    letters = {h: i for i, h in enumerate(names) if len(h) == 1 and h in LETTERS}
    if letters:
        order = sorted(letters, key=LETTERS.index)
        expected = list(LETTERS[: len(order)])
        if order != expected:
            raise DatasetError(
                f"{path}: header: choice columns must be consecutive letters from A, "
                f"found {', '.join(order)}"
            )
        return [letters[h] for h in order]
    numbered = {}
    for i, h in enumerate(names):
        m = _CHOICE_N.fullmatch(h)
        if m:
            numbered[int(m.group(1))] = i
    if numbered:
        nums = sorted(numbered)
        start = nums[0]
        if start not in (0, 1) or nums != list(range(start, start + len(nums))):
            raise DatasetError(
                f"{path}: header: choice columns must be consecutive choice_0, choice_1, ..., "
                f"found {', '.join(f'choice_{n}' for n in nums)}"
            )
        return [numbered[n] for n in nums]
    if not required:
        return []
    raise DatasetError(
        f"{path}: header: no choices (the task is multiple choice); add a 'choices' column "
        f"(JSON list), columns A, B, C, ... or columns choice_0, choice_1, ... "
        f"(header: {', '.join(names)})"
    )


def csv_rows(path: Path, text: DecodedText, *, require_choices: bool = False) -> Iterator[RawRow]:
    """Rows of a CSV/TSV file. Choices come from a ``choices`` column (a JSON list), columns A,
    B, ... or choice_0, choice_1, ...; a header with none of them holds free-form questions,
    unless ``require_choices`` (the task is multiple choice)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text.text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DatasetError(f"{path}: header: unreadable CSV: {exc}") from None
    if text.bad_bytes and any(_SURROGATE.search(h) for h in header):
        raise DatasetError(f"{path}: header {_BAD_BYTES}")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{path}: header: duplicate column names: {', '.join(dupes)}")
    if "question" not in names:
        raise DatasetError(
            f"{path}: header: no 'question' column (the first line must be a header "
            f"naming question, answer and, for multiple choice, choices or A/B/C/...); "
            f"found: {', '.join(names)}"
        )
    choice_cols = _csv_choice_columns(header, path, require_choices)
    consumed = set(choice_cols or [])
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield RawRow(row, error=f"unreadable CSV row: {exc}")
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines are not data rows
        row += 1
        if text.bad_bytes and any(_SURROGATE.search(c) for c in cells):
            yield RawRow(row, error=f"row {_BAD_BYTES}")
            continue
        if len(cells) > len(header):
            yield RawRow(row, error=f"row has {len(cells)} fields but the header has {len(header)}")
            continue
        # Spreadsheets drop trailing empty cells; treat them as empty.
        cells = cells + [""] * (len(header) - len(cells))
        data: dict[str, Any] = {}
        for i, (name, cell) in enumerate(zip(names, cells, strict=True)):
            if i not in consumed and name:
                data[name] = cell
        if choice_cols is None:
            raw = data.get("choices", "")
            try:
                data["choices"] = json.loads(raw) if raw.strip() else None
            except (ValueError, RecursionError):  # JSONDecodeError, or a number too long
                yield RawRow(row, error=f"choices is not a JSON list: {short(raw)}")
                continue
        elif choice_cols:
            values = [cells[i] for i in choice_cols]
            # Files mixing 4- and 5-choice questions leave the last columns empty.
            while values and not values[-1].strip():
                values.pop()
            data["choices"] = values
        # Empty optional cells mean "not given", not an empty-string id or subject.
        for key in ("id", "source", "subject"):
            if key in data and not data[key].strip():
                del data[key]
        yield RawRow(row, data, digits_are_indices=True, from_csv=True)
