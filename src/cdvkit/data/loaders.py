"""Load questions from local JSON, JSONL and CSV files: multiple choice or free form.

Two shapes of multiple-choice row are accepted:

* the reference format: ``question``, ``choices`` (a list), ``answer`` = the text of the correct
  choice, optional ``source``, ``subject`` and ``id``; every other field goes to ``metadata``;
* the index form: ``answer`` (or ``answerKey`` / ``label``) is a 0-based integer or a letter A-Z.

CSV files name the choices with a ``choices`` column holding a JSON list, with columns ``A``,
``B``, ``C``, ... or with columns ``choice_0``, ``choice_1``, ...

A free-form row (task ``numeric`` or ``short_answer``) has no choices: ``question``, ``answer``
(text or a number; for numeric a GSM8K-style solution ending in "#### N" gives N), optional
``aliases`` (more accepted answers: a list of strings, in CSV a JSON list or ``a|b|c``), ``id``,
``source`` and ``subject``; every other field goes to ``metadata``.

A file holds one task shape. Unless the caller names it (``task``, the CLI's ``--task``) it is
inferred per row: choices -> multiple choice; none and a numeric answer -> numeric; none and
any other answer -> short answer. A row of another shape than the file's other rows is a defect.

Every defect is reported with the file and a 1-based row number: the element number in a JSON
list, the line number in a JSONL file, the data row number (header not counted) in a CSV file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.data.readers import (
    LONE_SURROGATE,
    RawRow,
    csv_rows,
    has_lone_surrogates,
    json_rows,
    jsonl_rows,
    read_text,
)
from cdvkit.data.validation import (
    DatasetError,
    InvalidRow,
    LoadResult,
    RowProblem,
    RowShape,
    Shapes,
    build_free_form,
    build_question,
    has_choices,
    infer_task,
    resolve_task,
    short,
)

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv")

# Fields with a meaning of their own; anything else in a row is kept in Question.metadata.
_ANSWER_KEYS = ("answer", "answerKey", "label")
_KNOWN_KEYS = {"id", "question", "choices", "source", "subject", *_ANSWER_KEYS}
_FREE_FORM_KEYS = {"id", "question", "choices", "answer", "aliases", "source", "subject"}

_SKIP_HINT = "use --skip-invalid (skip_invalid=True) to skip bad rows and report them instead"


def _question_from_row(
    raw: dict[str, Any],
    *,
    source: str,
    digits_are_indices: bool,
    repairs: list[str] | None = None,
    task: str,
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
        task=task,
    )


def _free_form_from_row(
    raw: dict[str, Any], *, shape: RowShape, source: str, from_csv: bool
) -> Question:
    row_source = raw.get("source")
    return build_free_form(
        shape=shape,
        question=raw.get("question"),
        answer=raw.get("answer"),
        aliases=raw.get("aliases"),
        source=str(row_source) if row_source else source,
        id=raw.get("id"),
        subject=raw.get("subject"),
        metadata={k: v for k, v in raw.items() if k not in _FREE_FORM_KEYS},
        aliases_text=from_csv,
    )


def _row_shapes(rows: list[RawRow], shapes: Shapes) -> dict[int, str]:
    """The task shape each readable row reads as (see ``infer_task``), by row number."""
    return {
        raw.row: infer_task(raw.data.get("choices"), raw.data.get("answer"), shapes)
        for raw in rows
        if raw.data is not None
    }


def _file_task(found: dict[int, str]) -> tuple[str, int] | None:
    """The shape most rows read as (on a tie, the earliest row's) and its first row."""
    if not found:
        return None
    counts = Counter(found.values())
    first: dict[str, int] = {}
    for row, shape in found.items():
        first.setdefault(shape, row)
    task = max(counts, key=lambda t: (counts[t], -first[t]))
    return task, first[task]


def _shape_mismatch(data: dict[str, Any], row: RowShape, file: RowShape, first_row: int) -> str:
    """The defect of a row whose inferred shape is not the file's: what it reads as, and why."""
    rest = (
        f"this file's other rows are {file.name} (from row {first_row}), and a file holds "
        "questions of one task shape"
    )
    hint = "set the shape with --task"
    if file.has_choices:
        return f"choices are missing: {rest}; give this row its choices, or {hint}"
    if row.has_choices:
        return f"has choices, but {rest}; remove them, or {hint}"
    answer = data.get("answer")
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return f"answer is missing ({rest})"
    why = f"answer {short(answer)} {row.row_claim or 'reads so'}, so this row reads as {row.name}"
    if (row.infer_rank or 0) < (file.infer_rank or 0):
        # The file's shape takes more answers than this row's: forcing it reads this row too.
        return (
            f"{why}, but {rest}; use --task {file.name} (task={file.name!r}) to read every "
            f"answer as a {file.answer_noun}"
        )
    return f"{why}, but {rest}; {hint}"


def _build(
    raw: RawRow,
    *,
    forced: bool,
    file_shape: RowShape,
    default_source: str,
    row_shape: RowShape,
    first_row: int,
    repairs: list[str] | None,
) -> Question:
    assert raw.data is not None
    data = raw.data
    if not forced and row_shape.name != file_shape.name:
        raise InvalidRow(_shape_mismatch(data, row_shape, file_shape, first_row))
    if file_shape.has_choices:
        if not has_choices(data.get("choices")):
            raise InvalidRow(f"choices are missing (task {file_shape.name})")
        return _question_from_row(
            data,
            source=default_source,
            digits_are_indices=raw.digits_are_indices,
            repairs=repairs,
            task=file_shape.name,
        )
    if has_choices(data.get("choices")):
        raise InvalidRow(
            f"has choices, but the task is {file_shape.name} and a {file_shape.name} question "
            "has none; remove them, or leave --task out"
        )
    return _free_form_from_row(data, shape=file_shape, source=default_source, from_csv=raw.from_csv)


def load_file(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    source: str | None = None,
    strict: bool = False,
    task: str | None = None,
    shapes: Shapes,
) -> LoadResult:
    """Load a .json (list or JSON Lines), .jsonl/.ndjson, .csv or .tsv file of questions.

    ``source`` labels rows that have no ``source`` field of their own (default: the file name
    without its suffix). A defective row raises DatasetError naming the file, the row and the
    defect, unless ``skip_invalid`` is set: then it is left out and listed in ``skipped``.
    Defects of the file as a whole (unreadable, not a list, no header) always raise.
    Repeated choices are collapsed and reported in ``warnings``, or are a defect with ``strict``.

    ``task`` (a name among ``shapes``: multiple_choice, numeric, short_answer, a plugin's) says
    what shape every row must have; left out, the shape most rows read as is the file's, and a
    row of another shape is a defect. ``shapes`` are the task shapes by name (cdvkit.tasks
    passes every registered one).
    """
    task = resolve_task(task, shapes)
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

    if not text.text.strip():
        # Said as what it is: json.loads of nothing would report "not valid JSON (line 1)".
        raise DatasetError(f"{p}: contains no questions (the file is empty)")
    label = str(p)
    default_source = source or p.stem
    if suffix == ".json":
        rows = list(json_rows(p, text))
    elif suffix in (".jsonl", ".ndjson"):
        rows = list(jsonl_rows(p, text))
    else:
        choices = task is not None and shapes[task].has_choices
        rows = list(csv_rows(p, text, require_choices=choices))
    if not rows:
        raise DatasetError(f"{p}: contains no questions")
    row_shape = _row_shapes(rows, shapes)
    found = _file_task(row_shape)
    default = infer_task([], None, shapes)  # no readable row: the shape that takes choices
    file_task, first_row = (task, 0) if task else found or (default, 0)

    questions: list[Question] = []
    skipped: list[RowProblem] = []
    warnings: list[RowProblem] = []
    first_row_of_id: dict[str, int] = {}
    for raw in rows:
        try:
            if raw.data is None:
                raise InvalidRow(raw.error or "unreadable row")
            if has_lone_surrogates(raw.data):
                raise InvalidRow(LONE_SURROGATE)
            repairs: list[str] | None = None if strict else []
            q = _build(
                raw,
                forced=task is not None,
                file_shape=shapes[file_task],
                default_source=default_source,
                row_shape=shapes[row_shape[raw.row]],
                first_row=first_row,
                repairs=repairs,
            )
            # Ids key the run store and resume; two rows with one id would share results.
            if q.id in first_row_of_id:
                first = first_row_of_id[q.id]
                if raw.data.get("id") not in (None, ""):
                    raise InvalidRow(f"duplicate id {q.id!r} (already used by row {first})")
                what = "answers" if q.free_form else "choices"
                raise InvalidRow(f"duplicate question: same question and {what} as row {first}")
        except InvalidRow as exc:
            problem = RowProblem(label, raw.row, str(exc))
            if not skip_invalid:
                raise DatasetError(f"{problem}. To go on, {_SKIP_HINT}.", problem=problem) from None
            skipped.append(problem)
            continue
        first_row_of_id[q.id] = raw.row
        questions.append(q)
        warnings.extend(RowProblem(label, raw.row, r) for r in repairs or [])
    return LoadResult(questions, skipped, warnings)
