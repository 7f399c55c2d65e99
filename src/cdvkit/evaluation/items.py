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


def items_from_examples(rows: Iterable[dict[str, Any]]) -> list[EvalItem]:
    """Group example rows (``RunStore.examples()`` / its JSONL) by question, keeping their order.

    Rows come in the order the search found them, so a question's first example stays first.
    """
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        qid = str(row["question_id"])
        g = grouped.get(qid)
        if g is None:
            g = grouped[qid] = {
                "dataset": row.get("source") or "",
                "original": Variant(
                    ORIGINAL,
                    row["original_question"],
                    tuple(row["original_choices"]),
                    int(row["original_answer"]),
                ),
                "examples": [],
            }
        key = f"example:{row.get('path') or len(g['examples'])}"
        g["examples"].append(
            Variant(key, row["question"], tuple(row["choices"]), int(row["answer"]))
        )
    return [
        EvalItem(qid, g["dataset"], g["original"], tuple(g["examples"]))
        for qid, g in grouped.items()
    ]


def from_store(store: RunStore, label: str | None = None) -> ExampleSet:
    cfg = store.get_config() or {}
    return ExampleSet(
        label=label or str(cfg.get("target") or store.run_dir.name),
        kind="run",
        path=str(store.run_dir),
        items=items_from_examples(store.examples()),
    )


def from_run_dir(run_dir: str | Path, label: str | None = None) -> ExampleSet:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return from_store(store, label)


def _answer_index(answer: Any, choices: list[str]) -> int | None:
    """The reference stores the correct choice's text; tolerate an index or a letter too."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer if 0 <= answer < len(choices) else None
    text = str(answer)
    if text in choices:
        return choices.index(text)
    stripped = [c.strip() for c in choices]
    if text.strip() in stripped:
        return stripped.index(text.strip())
    if len(text.strip()) == 1 and text.strip().upper() in LETTERS[: len(choices)]:
        return LETTERS.index(text.strip().upper())
    return None


def _reference_dataset_name(path: Path) -> str:
    # The reference writes enhanced/<model>/<Dataset>_enhanced.json.
    return re.sub(r"_enhanced$", "", path.stem)


def reference_label(path: Path) -> str:
    """The reference keeps the target model in the folder name: enhanced/<model>/<file>."""
    if path.parent.parent.name == "enhanced" and path.parent.name:
        return path.parent.name
    return path.stem


def items_from_reference(
    entries: list[dict[str, Any]], *, dataset: str = ""
) -> tuple[list[EvalItem], list[str]]:
    """Read the reference's output; returns the items and why other entries were left out.

    The reference records a question its target already failed as a ``good_questions`` entry that
    is the original question itself; that is no CDV example and is skipped, as is an entry the
    reference never processed (no ``good_questions`` key).
    """
    items: list[EvalItem] = []
    skipped: list[str] = []
    for i, e in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(e, dict) or "question" not in e or "choices" not in e:
            skipped.append(f"{where}: not a question (needs question and choices)")
            continue
        choices = [str(c) for c in e["choices"]]
        answer = _answer_index(e.get("answer"), choices)
        if answer is None:
            skipped.append(f"{where}: answer {e.get('answer')!r} is not one of its choices")
            continue
        if "good_questions" not in e:
            skipped.append(f"{where}: not searched (no good_questions)")
            continue
        source = str(e.get("source") or dataset)
        qid = str(e.get("id") or stable_id(source, e["question"], choices))
        examples: list[Variant] = []
        original_text = e["question"].strip()
        for k, g in enumerate(e.get("good_questions") or []):
            text = str(g.get("question", ""))
            if text.strip() == original_text:
                continue  # the reference's marker for "original already failed"
            gchoices = [str(c) for c in (g.get("choices") or choices)]
            gt = _answer_index(g.get("ground_truth", e.get("answer")), gchoices)
            if gt is None:
                skipped.append(f"{where} example {k}: ground_truth is not one of its choices")
                continue
            examples.append(Variant(f"example:{k}", text, tuple(gchoices), gt))
        if not examples:
            skipped.append(f"{where}: no CDV example")
            continue
        items.append(
            EvalItem(
                qid,
                source,
                Variant(ORIGINAL, e["question"], tuple(choices), answer),
                tuple(examples),
            )
        )
    return items, skipped


def load_examples_file(path: str | Path, label: str | None = None) -> ExampleSet:
    """Read cdvkit JSONL (or a JSON list of its rows) or the reference's JSON output."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"examples file {p} not found")
    text = p.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        raise ValueError(f"examples file {p} is empty")
    rows: list[Any]
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p} line {n} is not valid JSON: {exc}") from None
    if rows and all(isinstance(r, dict) and "original_question" in r for r in rows):
        targets = {r.get("target") for r in rows if r.get("target")}
        default = targets.pop() if len(targets) == 1 else p.stem
        return ExampleSet(label or default, "jsonl", str(p), items_from_examples(rows))
    if rows and all(isinstance(r, dict) and "question" in r for r in rows):
        items, skipped = items_from_reference(rows, dataset=_reference_dataset_name(p))
        return ExampleSet(label or reference_label(p), "reference", str(p), items, skipped)
    raise ValueError(
        f"{p} is neither cdvkit JSONL (rows with original_question) nor the reference format "
        "(a JSON list of questions with good_questions)"
    )
