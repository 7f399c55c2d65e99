"""Load multiple-choice questions from local JSON, JSONL and CSV files.

Two shapes of row are accepted:

* the reference format: ``question``, ``choices`` (a list), ``answer`` = the text of the correct
  choice, optional ``source``, ``subject`` and ``id``; every other field goes to ``metadata``;
* the index form: ``answer`` (or ``answerKey`` / ``label``) is a 0-based integer or a letter A-Z.

CSV files name the choices with a ``choices`` column holding a JSON list, with columns ``A``,
``B``, ``C``, ... or with columns ``choice_0``, ``choice_1``, ...

Every defect is reported with the file and a 1-based row number: the element number in a JSON
list, the line number in a JSONL file, the data row number (header not counted) in a CSV file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS, Question, stable_id

__all__ = [
    "SUPPORTED_SUFFIXES",
    "DatasetError",
    "InvalidRow",
    "LoadResult",
    "RowProblem",
    "build_question",
    "load_file",
]

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv")

# Fields with a meaning of their own; anything else in a row is kept in Question.metadata.
_ANSWER_KEYS = ("answer", "answerKey", "label")
_KNOWN_KEYS = {"id", "question", "choices", "source", "subject", *_ANSWER_KEYS}

_SKIP_HINT = "use --skip-invalid (skip_invalid=True) to skip bad rows and report them instead"


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


# ---------------------------------------------------------------------------------------------
# Validation shared by every format (and by the hub converters)
# ---------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
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
            f"answer must be the choice text, an index or a letter, got {_short(answer)}"
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
    raise InvalidRow(f"answer {_short(answer)} is not one of the choices{hint}")


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
            raise InvalidRow(f"choice {_choice_name(i)} is not text: {_short(c)}")
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
                f"duplicate choices: {_short(c)} is both choice {_choice_name(seen[key])} "
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


# ---------------------------------------------------------------------------------------------
# Raw rows from each format
# ---------------------------------------------------------------------------------------------

# Bytes that are not UTF-8 are decoded with surrogateescape, so they survive as lone surrogates
# and can be pinned to the row that holds them instead of failing the whole file.
_SURROGATE = re.compile("[\udc80-\udcff]")
# Any surrogate code point. In valid UTF-8 text one can only come from a JSON escape such as
# "\ud800" that is not half of a pair; such a string cannot be encoded, so the run store and every
# model client would fail on it in the middle of a search.
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_SURROGATE = (
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


def _has_lone_surrogates(value: Any) -> bool:
    return any(_ANY_SURROGATE.search(s) for s in _strings(value))


@dataclass
class _RawRow:
    row: int
    data: dict[str, Any] | None = None
    error: str | None = None  # a defect found before the fields could be read
    digits_are_indices: bool = False


_BAD_BYTES = (
    "contains bytes that are not valid UTF-8 (was the file saved in another encoding, "
    "such as Latin-1 or cp1252?)"
)


@dataclass
class _Text:
    text: str
    bad_bytes: bool  # True when the file was not valid UTF-8
    first_bad_offset: int = -1
    first_bad_line: int = -1

    def bad_bytes_location(self) -> str:
        return f"line {self.first_bad_line} (byte offset {self.first_bad_offset})"


def _read_text(path: Path) -> _Text:
    data = path.read_bytes()
    try:
        return _Text(data.decode("utf-8-sig"), False)
    except UnicodeDecodeError as exc:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        offset = exc.start + bom
        line = data.count(b"\n", 0, offset) + 1
        return _Text(data.decode("utf-8-sig", errors="surrogateescape"), True, offset, line)


def _number_error(exc: ValueError) -> str:
    # Python refuses to convert integers of more than 4300 digits (a defence against slow
    # parsing); its message ends with advice for programmers, not for the file's author.
    return "a number too long to read: " + str(exc).split(";")[0]


def _json_rows(path: Path, text: _Text) -> Iterator[_RawRow]:
    try:
        data = json.loads(text.text)
    except RecursionError:
        raise DatasetError(f"{path}: not valid JSON: nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.text.lstrip().startswith("{"):
            # Many tools (including datasets' to_json) write JSON Lines under a .json name.
            yield from _jsonl_rows(path, text)
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
            yield _RawRow(i, error=f"row {_BAD_BYTES}")
        elif not isinstance(item, dict):
            yield _RawRow(i, error=f"row is not an object but a JSON {type(item).__name__}")
        else:
            yield _RawRow(i, item)


def _jsonl_rows(path: Path, text: _Text) -> Iterator[_RawRow]:
    # Split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings.
    for lineno, line in enumerate(text.text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if text.bad_bytes and _SURROGATE.search(line):
            yield _RawRow(lineno, error=f"line {_BAD_BYTES}")
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _RawRow(lineno, error=f"malformed JSON line (column {exc.colno}): {exc.msg}")
            continue
        except RecursionError:
            yield _RawRow(lineno, error="malformed JSON line: nested too deeply to read")
            continue
        except ValueError as exc:
            yield _RawRow(lineno, error=f"malformed JSON line: {_number_error(exc)}")
            continue
        if not isinstance(item, dict):
            yield _RawRow(lineno, error=f"row is not an object but a JSON {type(item).__name__}")
        else:
            yield _RawRow(lineno, item)


_CHOICE_N = re.compile(r"choice_(\d+)")


def _csv_choice_columns(header: list[str], path: Path) -> list[int] | None:
    """Column indices of the choices in order, or None when a ``choices`` column is used."""
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
    raise DatasetError(
        f"{path}: header: no choices; add a 'choices' column (JSON list), "
        f"columns A, B, C, ... or columns choice_0, choice_1, ... (header: {', '.join(names)})"
    )


def _csv_rows(path: Path, text: _Text) -> Iterator[_RawRow]:
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
            f"naming question, choices or A/B/C/..., answer); found: {', '.join(names)}"
        )
    choice_cols = _csv_choice_columns(header, path)
    consumed = set(choice_cols or [])
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield _RawRow(row, error=f"unreadable CSV row: {exc}")
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines are not data rows
        row += 1
        if text.bad_bytes and any(_SURROGATE.search(c) for c in cells):
            yield _RawRow(row, error=f"row {_BAD_BYTES}")
            continue
        if len(cells) > len(header):
            yield _RawRow(
                row, error=f"row has {len(cells)} fields but the header has {len(header)}"
            )
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
                yield _RawRow(row, error=f"choices is not a JSON list: {_short(raw)}")
                continue
        else:
            values = [cells[i] for i in choice_cols]
            # Files mixing 4- and 5-choice questions leave the last columns empty.
            while values and not values[-1].strip():
                values.pop()
            data["choices"] = values
        # Empty optional cells mean "not given", not an empty-string id or subject.
        for key in ("id", "source", "subject"):
            if key in data and not data[key].strip():
                del data[key]
        yield _RawRow(row, data, digits_are_indices=True)


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def _question_from_row(
    raw: dict[str, Any],
    *,
    source: str,
    digits_are_indices: bool,
    repairs: list[str] | None = None,
) -> Question:
    answer = None
    for key in _ANSWER_KEYS:
        if key in raw and raw[key] is not None and raw[key] != "":
            answer = raw[key]
            break
    row_source = raw.get("source")
    metadata = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
    return build_question(
        question=raw.get("question"),
        choices=raw.get("choices"),
        answer=answer,
        source=str(row_source) if row_source else source,
        id=raw.get("id"),
        subject=raw.get("subject"),
        metadata=metadata,
        digits_are_indices=digits_are_indices,
        repairs=repairs,
    )


def load_file(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    source: str | None = None,
    strict: bool = False,
) -> LoadResult:
    """Load a .json (list or JSON Lines), .jsonl/.ndjson, .csv or .tsv file of questions.

    ``source`` labels rows that have no ``source`` field of their own (default: the file name
    without its suffix). A defective row raises DatasetError naming the file, the row and the
    defect, unless ``skip_invalid`` is set: then it is left out and listed in ``skipped``.
    Defects of the file as a whole (unreadable, not a list, no header) always raise.
    Repeated choices are collapsed and reported in ``warnings``, or are a defect with ``strict``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DatasetError(
            f"{p}: unsupported file type {p.suffix or '(none)'!r}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        text = _read_text(p)
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{p}: is a directory, not a dataset file") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot be read: {exc.strerror or exc}") from None

    label = str(p)
    default_source = source or p.stem
    if suffix == ".json":
        rows = _json_rows(p, text)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(p, text)
    else:
        rows = _csv_rows(p, text)

    questions: list[Question] = []
    skipped: list[RowProblem] = []
    warnings: list[RowProblem] = []
    first_row_of_id: dict[str, int] = {}
    n_rows = 0
    for raw in rows:
        n_rows += 1
        try:
            if raw.data is None:
                raise InvalidRow(raw.error or "unreadable row")
            if _has_lone_surrogates(raw.data):
                raise InvalidRow(_LONE_SURROGATE)
            repairs: list[str] | None = None if strict else []
            q = _question_from_row(
                raw.data,
                source=default_source,
                digits_are_indices=raw.digits_are_indices,
                repairs=repairs,
            )
            # Ids key the run store and resume; two rows with one id would share results.
            if q.id in first_row_of_id:
                first = first_row_of_id[q.id]
                if raw.data.get("id") not in (None, ""):
                    raise InvalidRow(f"duplicate id {q.id!r} (already used by row {first})")
                raise InvalidRow(f"duplicate question: same question and choices as row {first}")
        except InvalidRow as exc:
            problem = RowProblem(label, raw.row, str(exc))
            if not skip_invalid:
                raise DatasetError(f"{problem}. To go on, {_SKIP_HINT}.", problem=problem) from None
            skipped.append(problem)
            continue
        first_row_of_id[q.id] = raw.row
        questions.append(q)
        warnings.extend(RowProblem(label, raw.row, r) for r in repairs or [])
    if n_rows == 0:
        raise DatasetError(f"{p}: contains no questions")
    return LoadResult(questions, skipped, warnings)
