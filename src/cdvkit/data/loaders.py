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

from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.data.readers import (
    LONE_SURROGATE,
    csv_rows,
    has_lone_surrogates,
    json_rows,
    jsonl_rows,
    read_text,
)
from cdvkit.data.validation import DatasetError, InvalidRow, LoadResult, RowProblem, build_question

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv")

# Fields with a meaning of their own; anything else in a row is kept in Question.metadata.
_ANSWER_KEYS = ("answer", "answerKey", "label")
_KNOWN_KEYS = {"id", "question", "choices", "source", "subject", *_ANSWER_KEYS}

_SKIP_HINT = "use --skip-invalid (skip_invalid=True) to skip bad rows and report them instead"


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
        text = read_text(p)
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{p}: is a directory, not a dataset file") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot be read: {exc.strerror or exc}") from None

    label = str(p)
    default_source = source or p.stem
    if suffix == ".json":
        rows = json_rows(p, text)
    elif suffix in (".jsonl", ".ndjson"):
        rows = jsonl_rows(p, text)
    else:
        rows = csv_rows(p, text)

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
            if has_lone_surrogates(raw.data):
                raise InvalidRow(LONE_SURROGATE)
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
