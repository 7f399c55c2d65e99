"""Reading an examples file whichever format it holds: cdvkit JSONL, or the reference's JSON.

The format is told from the rows themselves, not the file name, since both are written as .json
and .jsonl by different tools.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.evaluation.example_rows import question_item, read_example_rows
from cdvkit.evaluation.items import ExampleSet
from cdvkit.evaluation.reference import read_reference_rows, reference_dataset_name, reference_label
from cdvkit.evaluation.row_checks import ExamplesFileError, Row, json_kind


def _jsonl_rows(text: str) -> list[Row]:
    rows = []
    # Split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings.
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append(Row(n, json.loads(line)))
        except json.JSONDecodeError as exc:
            rows.append(Row(n, error=f"not valid JSON (column {exc.colno}): {exc.msg}"))
        except (ValueError, RecursionError):  # a number too long, or nesting too deep
            rows.append(Row(n, error="not valid JSON: a number too long or nesting too deep"))
    return rows


def load_examples_file(path: str | Path, label: str | None = None) -> ExampleSet:
    """Read cdvkit JSONL (or a JSON list of its rows) or the reference's JSON output.

    Rows are numbered from 1: lines of a JSONL file, entries of a JSON list. Any malformed row
    fails the load with an ExamplesFileError listing every one; examples identical to their
    original question, and questions left without an example, are skipped and listed in
    ``ExampleSet.skipped``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"examples file {p} not found")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{p}: line {line} is not UTF-8 text (byte offset {exc.start})") from None
    if not text.strip():
        raise ValueError(f"examples file {p} is empty")
    data: Any = None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # "Extra data" after a first value: JSON Lines whose first row is a list.
            if exc.msg != "Extra data":
                raise ValueError(
                    f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
                ) from None
        except (ValueError, RecursionError):
            raise ValueError(
                f"{p}: not valid JSON: a number too long or nesting too deep"
            ) from None
    if isinstance(data, list):
        rows = [Row(n, e) for n, e in enumerate(data, 1)]
    else:
        rows = _jsonl_rows(text)
        if rows and all(r.error is not None for r in rows):
            try:
                whole = json.loads(text)
            except (ValueError, RecursionError):
                pass  # broken lines: reported row by row below
            else:
                raise ValueError(
                    f"{p} holds {json_kind(whole)}, not one JSON object per line (JSONL) "
                    "nor a JSON list"
                )
    objects = [r.data for r in rows if isinstance(r.data, dict)]
    broken_lines = any(r.error is not None for r in rows)
    if any("original_question" in d for d in objects) or (broken_lines and not objects):
        read = read_example_rows(rows)
        kind = "jsonl"
        targets = {d.get("target") for d in objects if isinstance(d.get("target"), str)}
        targets.discard("")
        default = targets.pop() if len(targets) == 1 else p.stem
    elif any("question" in d for d in objects):
        read = read_reference_rows(rows, reference_dataset_name(p))
        kind = "reference"
        default = reference_label(p)
    else:
        raise ValueError(
            f"{p} is neither cdvkit JSONL (rows with original_question) nor the reference format "
            "(a JSON list of questions with good_questions)"
        )
    if read.problems:
        raise ExamplesFileError(str(p), read.problems)
    # The reference's file lists every question of its dataset; cdvkit's JSONL only those with
    # an example (``attach_dataset`` adds the rest from the dataset they were found on).
    return ExampleSet(
        label or default,
        kind,
        str(p),
        read.items,
        read.skipped,
        others=read.others,
        whole=kind == "reference",
    )


def attach_dataset(es: ExampleSet, questions: list[Question]) -> ExampleSet:
    """``es`` with every question of the dataset it was found on: the questions without an
    example join its ``others``, matched by id, else by their text and choices."""
    known = {i.id for i in es.every}
    texts = {_text_key(i.original.question, i.original.choices) for i in es.every}
    subjects = {}
    for q in questions:
        subjects[q.id] = subjects[_text_key(q.question, q.choices)] = q.subject
    others = list(es.others)
    for q in questions:
        if q.id in known or _text_key(q.question, q.choices) in texts:
            continue
        others.append(question_item(q))
        known.add(q.id)
    # A file's rows may leave out the subject that the dataset gives.
    items = [
        i
        if i.subject
        else replace(
            i,
            subject=subjects.get(i.id)
            or subjects.get(_text_key(i.original.question, i.original.choices)),
        )
        for i in es.items
    ]
    return replace(es, items=items, others=others, whole=True)


def _text_key(question: str, choices: tuple[str, ...] | list[str]) -> str:
    return json.dumps([" ".join(question.split()), sorted(" ".join(c.split()) for c in choices)])
