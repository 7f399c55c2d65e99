"""What an evaluation runs on: questions paired with their CDV examples, from any source.

Sources are a run store, cdvkit's own JSONL export, or the reference implementation's output
(a JSON list of questions, each with ``good_questions``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS, stable_id
from cdvkit.store import RunStore

ORIGINAL = "original"


@dataclass(frozen=True)
class Variant:
    """One version of a question a model is asked: the original or a distracted one."""

    key: str  # "original" or "example:<id>"
    question: str
    choices: tuple[str, ...]
    answer: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
        }


@dataclass(frozen=True)
class EvalItem:
    """A question with at least one CDV example; the unit that statistics resample."""

    id: str
    dataset: str
    original: Variant
    examples: tuple[Variant, ...]

    def variants(self, all_examples: bool) -> list[Variant]:
        chosen = self.examples if all_examples else self.examples[:1]
        return [self.original, *chosen]


@dataclass
class ExampleSet:
    """Examples found against one target: one row of the transfer matrix."""

    label: str  # the target the examples were found against (or a name for the file)
    kind: str  # "run" | "jsonl" | "reference"
    path: str
    items: list[EvalItem]
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "path": self.path,
            "questions": len(self.items),
            "examples": sum(len(i.examples) for i in self.items),
            "skipped": len(self.skipped),
        }


# ---------------------------------------------------------------------------------------------
# Row validation, shared by the JSONL reader (and a JSON list of its rows) and the reference's
# ---------------------------------------------------------------------------------------------

MAX_REPORTED = 20  # malformed rows listed in an ExamplesFileError message; the rest are counted
IDENTICAL = "identical to its original question (no distraction)"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LETTER = re.compile(r"\(([A-Za-z])\)|([A-Za-z])[).:]?")


def _no_example_left(where: str, identical: int) -> str:
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


class _Bad(Exception):
    """One row's first defect; the reader adds the row number."""


@dataclass
class _Row:
    number: int  # 1-based: the line of a JSONL file, the entry of a JSON list
    data: Any = None
    error: str | None = None  # the line is no JSON at all


@dataclass
class _Read:
    items: list[EvalItem]
    skipped: list[str]
    problems: list[str]


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


def _json_kind(value: Any) -> str:
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


def _checked_text(value: Any, name: str) -> str:
    if value is None:
        raise _Bad(f"{name} is missing")
    if not isinstance(value, str):
        raise _Bad(f"{name} must be text, got {_json_kind(value)}")
    if not value.strip():
        raise _Bad(f"{name} is empty")
    if _LONE_SURROGATE.search(value):
        raise _Bad(f"{name} contains a lone surrogate escape (\\ud800-\\udfff), not valid text")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    """An optional label (id, source, path, target): text or a number; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Bad(f"{name} must be text, got {_json_kind(value)}")
    text = value if isinstance(value, str) else _number_text(value)
    if _LONE_SURROGATE.search(text):
        raise _Bad(f"{name} contains a lone surrogate escape (\\ud800-\\udfff), not valid text")
    return text.strip() or None


def _checked_choices(value: Any, name: str, *, numbers: bool = False) -> list[str]:
    """A non-empty list of texts (with ``numbers``, numeric choices are read as their text)."""
    if value is None:
        raise _Bad(f"{name} is missing")
    if not isinstance(value, list):
        raise _Bad(f"{name} must be a list of texts, got {_json_kind(value)}")
    if not value:
        raise _Bad(f"{name} is empty")
    if len(value) > len(LETTERS):
        raise _Bad(f"{name} has {len(value)} choices; at most {len(LETTERS)} (A-Z) are supported")
    out = []
    for i, c in enumerate(value):
        if numbers and isinstance(c, int | float) and not isinstance(c, bool):
            c = _number_text(c)
        elif c is None:
            raise _Bad(f"{name}[{i}] must be text, got JSON null")
        out.append(_checked_text(c, f"{name}[{i}]"))
    return out


def _choice_names(indices: list[int]) -> str:
    return ", ".join(LETTERS[i] for i in indices)


def _answer_index(answer: Any, choices: list[str], name: str = "answer") -> int:
    """A 0-based index (a number or a string of digits), a letter (A, b, "(C)") or the choice's
    text (exact, or equal after stripping and case-folding when that names one choice)."""
    n = len(choices)
    if answer is None:
        raise _Bad(f"{name} is missing")
    # bool is an int subclass; `true` as an answer is a data error, not index 1.
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        raise _Bad(f"{name} must be a choice's index, letter or text, got {_json_kind(answer)}")
    if isinstance(answer, int):
        if 0 <= answer < n:
            return answer
        raise _Bad(f"{name} {_short(answer)} is out of range for its {n} choices (0-{n - 1})")
    key = answer.strip()
    if not key:
        raise _Bad(f"{name} is empty")
    # Text first: a choice may itself be "A" or "3".
    for matches in (
        [i for i, c in enumerate(choices) if c == answer],
        [i for i, c in enumerate(choices) if c.strip() == key],
    ):
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise _Bad(
                f"{name} {_short(answer)} is ambiguous: it is choices {_choice_names(matches)}"
            )
    folded = [i for i, c in enumerate(choices) if c.strip().casefold() == key.casefold()]
    if len(folded) > 1:
        raise _Bad(
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
            raise _Bad(
                f"{name} {_short(answer)} is ambiguous: as a letter it is choice {LETTERS[index]}, "
                f"ignoring case it is the text of choice {LETTERS[folded[0]]}"
            )
        return index
    if folded:
        return folded[0]
    why = f", and {as_what}" if index is not None else ""
    raise _Bad(f"{name} {_short(answer)} is not one of its {n} choices{why}")


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _read_example_rows(rows: Iterable[_Row]) -> _Read:
    """Validate and group rows of cdvkit's example schema (``RunStore.examples()`` / its JSONL)
    by question, keeping their order: rows come in the order the search found them, so a
    question's first example stays first."""
    grouped: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for row in rows:
        where = f"row {row.number}"
        try:
            if row.error is not None:
                raise _Bad(row.error)
            d = row.data
            if not isinstance(d, dict):
                raise _Bad(f"is not a JSON object but {_json_kind(d)}")
            oq = _checked_text(d.get("original_question"), "original_question")
            oc = _checked_choices(d.get("original_choices"), "original_choices")
            oa = _answer_index(d.get("original_answer"), oc, "original_answer")
            question = _checked_text(d.get("question"), "question")
            choices = _checked_choices(d.get("choices"), "choices")
            answer = _answer_index(d.get("answer"), choices, "answer")
            source = _optional_text(d.get("source"), "source") or ""
            qid = _optional_text(d.get("question_id"), "question_id")
            qid = qid or stable_id(source, oq, oc)
            path = _optional_text(d.get("path"), "path")
            _optional_text(d.get("target"), "target")
            original = Variant(ORIGINAL, oq, tuple(oc), oa)
            g = grouped.get(qid)
            if g is not None and g["original"] != original:
                raise _Bad(f"question_id {qid!r} names another original question in row {g['row']}")
        except _Bad as exc:
            problems.append(f"{where}: {exc}")
            continue
        if g is None:
            g = grouped[qid] = {
                "row": row.number,
                "dataset": source,
                "original": original,
                "examples": [],
                "identical": [],
            }
        if _same_text(question, oq):
            g["identical"].append((row.number, f"{where}: {IDENTICAL}"))
            continue
        key = f"example:{path or len(g['examples'])}"
        if any(v.key == key for v in g["examples"]):
            key = f"{key}@row{row.number}"  # two rows with one path: keep both apart
        g["examples"].append(Variant(key, question, tuple(choices), answer))
    items = []
    left_out: list[tuple[int, str]] = []
    for qid, g in grouped.items():
        if not g["examples"]:
            left_out.append((g["row"], _no_example_left(f"row {g['row']}", len(g["identical"]))))
            continue
        left_out.extend(g["identical"])
        items.append(EvalItem(qid, g["dataset"], g["original"], tuple(g["examples"])))
    skipped = [line for _, line in sorted(left_out, key=lambda x: x[0])]
    return _Read(items, skipped, problems)


def items_from_examples(rows: Iterable[dict[str, Any]]) -> list[EvalItem]:
    """Group example rows (``RunStore.examples()`` / its JSONL) by question, keeping their order.

    Examples identical to their original are left out (``from_store`` and ``load_examples_file``
    also say so); malformed rows raise ExamplesFileError naming every one by its 1-based row.
    """
    read = _read_example_rows(_Row(n, row) for n, row in enumerate(rows, 1))
    if read.problems:
        raise ExamplesFileError("example rows", read.problems)
    return read.items


def from_store(store: RunStore, label: str | None = None) -> ExampleSet:
    cfg = store.get_config() or {}
    # Row numbers are those of the run's JSONL export, which writes the same rows in this order.
    read = _read_example_rows(_Row(n, row) for n, row in enumerate(store.examples(), 1))
    if read.problems:
        raise ExamplesFileError(str(store.run_dir), read.problems)
    return ExampleSet(
        label=label or str(cfg.get("target") or store.run_dir.name),
        kind="run",
        path=str(store.run_dir),
        items=read.items,
        skipped=read.skipped,
    )


def from_run_dir(run_dir: str | Path, label: str | None = None) -> ExampleSet:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return from_store(store, label)


def _reference_dataset_name(path: Path) -> str:
    # The reference writes enhanced/<model>/<Dataset>_enhanced.json.
    return re.sub(r"_enhanced$", "", path.stem)


def reference_label(path: Path) -> str:
    """The reference keeps the target model in the folder name: enhanced/<model>/<file>."""
    if path.parent.parent.name == "enhanced" and path.parent.name:
        return path.parent.name
    return path.stem


def _read_reference_rows(rows: Iterable[_Row], dataset: str) -> _Read:
    items: list[EvalItem] = []
    skipped: list[str] = []
    problems: list[str] = []
    for row in rows:
        where = f"row {row.number}"
        try:
            if row.error is not None:
                raise _Bad(row.error)
            e = row.data
            if not isinstance(e, dict):
                raise _Bad(f"is not a JSON object but {_json_kind(e)}")
            question = _checked_text(e.get("question"), "question")
            choices = _checked_choices(e.get("choices"), "choices", numbers=True)
            answer = _answer_index(e.get("answer"), choices, "answer")
            source = _optional_text(e.get("source"), "source") or dataset
            qid = _optional_text(e.get("id"), "id") or stable_id(source, question, choices)
            if "good_questions" not in e:
                skipped.append(f"{where}: not searched (no good_questions)")
                continue
            goods = [] if e["good_questions"] is None else e["good_questions"]
            if not isinstance(goods, list):
                raise _Bad(f"good_questions must be a list, got {_json_kind(goods)}")
            examples: list[Variant] = []
            identical: list[str] = []
            for k, g in enumerate(goods):
                at = f"good_questions[{k}]"
                if not isinstance(g, dict):
                    raise _Bad(f"{at} is not a JSON object but {_json_kind(g)}")
                text = _checked_text(g.get("question"), f"{at}.question")
                gchoices = choices
                if g.get("choices") is not None:
                    gchoices = _checked_choices(g["choices"], f"{at}.choices", numbers=True)
                # Without a ground truth of its own, the example's is the original's answer text.
                truth = g.get("ground_truth")
                gt = _answer_index(
                    choices[answer] if truth is None else truth, gchoices, f"{at}.ground_truth"
                )
                if _same_text(text, question):
                    # Also the reference's marker for "the target already failed the original".
                    identical.append(f"{where}, {at}: {IDENTICAL}")
                    continue
                examples.append(Variant(f"example:{k}", text, tuple(gchoices), gt))
        except _Bad as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not examples:
            if identical:
                skipped.append(_no_example_left(where, len(identical)))
            else:
                skipped.append(f"{where}: no CDV example (good_questions is empty)")
            continue
        skipped.extend(identical)
        items.append(
            EvalItem(
                qid, source, Variant(ORIGINAL, question, tuple(choices), answer), tuple(examples)
            )
        )
    return _Read(items, skipped, problems)


def items_from_reference(
    entries: list[dict[str, Any]], *, dataset: str = ""
) -> tuple[list[EvalItem], list[str]]:
    """Read the reference's output; returns the items and why other entries were left out.

    The reference records a question its target already failed as a ``good_questions`` entry that
    is the original question itself; that is no CDV example and is skipped (like any example
    identical to its original), as is an entry the reference never processed (no
    ``good_questions`` key). Here a malformed entry is listed with them, by its 1-based row;
    ``load_examples_file`` refuses a file that has any.
    """
    read = _read_reference_rows((_Row(n, e) for n, e in enumerate(entries, 1)), dataset)
    return read.items, read.problems + read.skipped


def _jsonl_rows(text: str) -> list[_Row]:
    rows = []
    # Split on "\n" only: str.splitlines would also split on U+2028 inside JSON strings.
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rows.append(_Row(n, json.loads(line)))
        except json.JSONDecodeError as exc:
            rows.append(_Row(n, error=f"not valid JSON (column {exc.colno}): {exc.msg}"))
        except (ValueError, RecursionError):  # a number too long, or nesting too deep
            rows.append(_Row(n, error="not valid JSON: a number too long or nesting too deep"))
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
        rows = [_Row(n, e) for n, e in enumerate(data, 1)]
    else:
        rows = _jsonl_rows(text)
        if rows and all(r.error is not None for r in rows):
            try:
                whole = json.loads(text)
            except (ValueError, RecursionError):
                pass  # broken lines: reported row by row below
            else:
                raise ValueError(
                    f"{p} holds {_json_kind(whole)}, not one JSON object per line (JSONL) "
                    "nor a JSON list"
                )
    objects = [r.data for r in rows if isinstance(r.data, dict)]
    broken_lines = any(r.error is not None for r in rows)
    if any("original_question" in d for d in objects) or (broken_lines and not objects):
        read = _read_example_rows(rows)
        kind = "jsonl"
        targets = {d.get("target") for d in objects if isinstance(d.get("target"), str)}
        targets.discard("")
        default = targets.pop() if len(targets) == 1 else p.stem
    elif any("question" in d for d in objects):
        read = _read_reference_rows(rows, _reference_dataset_name(p))
        kind = "reference"
        default = reference_label(p)
    else:
        raise ValueError(
            f"{p} is neither cdvkit JSONL (rows with original_question) nor the reference format "
            "(a JSON list of questions with good_questions)"
        )
    if read.problems:
        raise ExamplesFileError(str(p), read.problems)
    return ExampleSet(label or default, kind, str(p), read.items, read.skipped)
