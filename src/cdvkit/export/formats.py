"""Export a run's CDV examples to the formats other tools read.

- ``jsonl``: one example per line (``RunStore.examples()`` rows plus the target they fool);
- ``hf``: a Hugging Face ``datasets.Dataset`` saved with ``save_to_disk``;
- ``reference``: the reference implementation's JSON (questions with ``good_questions``);
- ``lm-eval``: an lm-evaluation-harness task folder (multiple-choice YAML tasks + JSONL data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.prompts import render_mcq
from cdvkit.registry import Registry
from cdvkit.store import RunStore, check_writable_output
from cdvkit.store.status import QuestionStatus


@dataclass(frozen=True)
class Exporter:
    """An export format: ``write(store, path, **options)`` and the name it writes by default."""

    write: Callable[..., ExportResult]
    default_name: str


# Formats register by name (``cdv export --format NAME``); a new format is one module.
EXPORTERS: Registry[Exporter] = Registry("export format", "cdvkit.exporters")


def exporter(name: str, default_name: str, *, help: str = "") -> Callable[[Any], Any]:
    """Register ``write(store, path, **options) -> ExportResult`` as the format ``name``."""

    def add(write: Callable[..., ExportResult]) -> Callable[..., ExportResult]:
        EXPORTERS.add(name, Exporter(write, default_name), help=help)
        return write

    return add


@dataclass
class ExportResult:
    path: Path
    count: int  # examples written (questions for the reference format)
    files: list[Path] = field(default_factory=list)


def example_rows(store: RunStore) -> list[dict[str, Any]]:
    """The run's examples with the target they were found against, so a file on its own still
    says which model it fools (evaluation uses it as the transfer matrix row)."""
    target = (store.get_config() or {}).get("target")
    return [{**ex, "target": target} for ex in store.examples()]


def jsonl_text(store: RunStore) -> tuple[str, int]:
    """The ``jsonl`` export as text, and the number of examples in it."""
    rows = example_rows(store)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), len(rows)


@exporter("jsonl", "examples.jsonl", help="one example per line (cdv evaluate --examples reads it)")
def export_jsonl(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text, count = jsonl_text(store)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    return ExportResult(p, count, [p])


def _hf_features() -> Any:
    import datasets

    # datasets >= 4 names list columns List; older releases only have Sequence.
    seq = getattr(datasets, "List", None) or datasets.Sequence
    s, i, f = datasets.Value("string"), datasets.Value("int64"), datasets.Value("float64")
    return datasets.Features(
        {
            "question_id": s,
            "source": s,
            "subject": s,
            "original_question": s,
            "original_choices": seq(s),
            "original_answer": i,
            "original_rate": f,
            "question": s,
            "choices": seq(s),
            "answer": i,
            "answer_text": s,
            "rate": f,
            "depth": i,
            "path": s,
            "distraction": s,
            "placement": s,
            "target_option": s,
            "target": s,
        }
    )


@exporter("hf", "hf_dataset", help="a Hugging Face dataset (datasets.load_from_disk)")
def export_hf(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    """A dataset with a fixed schema, so even a run without examples exports a loadable one."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise RuntimeError("the hf format needs the datasets library") from exc
    features = _hf_features()
    rows = example_rows(store)
    # Columns, not rows: from_list([]) would drop every column of an empty export.
    ds = datasets.Dataset.from_dict(
        {k: [row.get(k) for row in rows] for k in features}, features=features
    )
    p = Path(path)
    # An empty dataset saved with the default sharding writes no shard, which load_from_disk
    # then fails on; one explicit shard keeps an empty export loadable.
    ds.save_to_disk(str(p), num_shards=1 if len(ds) == 0 else None)
    return ExportResult(p, len(rows), [p])


def reference_entries(store: RunStore) -> list[dict[str, Any]]:
    """Questions in the reference's output layout.

    Follows its conventions so its own evaluation scripts read the file unchanged: ``answer`` and
    ``ground_truth`` are choice texts; a question the target already failed carries the original
    itself as its only ``good_questions`` entry (rate 0); a question not (fully) searched has no
    ``good_questions`` key, which the reference reads as "still to do".
    """
    good: dict[str, list[dict[str, Any]]] = {}
    for n in store.nodes(status="good"):
        good.setdefault(n["question_id"], []).append(n)
    out = []
    for d in store.questions():
        q = d["question"]
        entry: dict[str, Any] = {
            "id": q.id,
            "question": q.question,
            "choices": list(q.choices),
            "answer": q.answer_text,
            "source": q.source,
        }
        if q.subject is not None:
            entry["subject"] = q.subject
        if d["status"] == QuestionStatus.ORIGINAL_FAILED:
            entry["good_questions"] = [
                {
                    "ori_question": q.question,
                    "question": q.question,
                    "choices": list(q.choices),
                    "ground_truth": q.answer_text,
                    "rate": 0,
                }
            ]
        elif d["status"] == QuestionStatus.DONE:
            entry["good_questions"] = [
                {
                    "ori_question": q.question,
                    "question": n["question"],
                    "choices": n["choices"],
                    "ground_truth": n["choices"][n["answer"]],
                    "rate": n["rate"],
                }
                for n in good.get(q.id, [])
            ]
        out.append(entry)
    return out


def reference_text(store: RunStore) -> tuple[str, int]:
    """The ``reference`` export as text, and the number of questions with an example."""
    entries = reference_entries(store)
    with_examples = sum(
        1
        for e in entries
        if any(g["question"] != e["question"] for g in e.get("good_questions", []))
    )
    return json.dumps(entries, indent=4, ensure_ascii=False), with_examples


@exporter("reference", "reference.json", help="the reference implementation's JSON")
def export_reference(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text, with_examples = reference_text(store)
    p.write_text(text, encoding="utf-8")
    return ExportResult(p, with_examples, [p])


def task_slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    return slug if slug and not slug[0].isdigit() else f"cdv_{slug}"


def _mc_row(qid: str, source: str, question: str, choices: list[str], answer: int) -> dict:
    from cdvkit.data.question import LETTERS

    return {
        "id": qid,
        "source": source,
        "question": question,
        "choices": choices,
        "answer": answer,
        "labels": list(LETTERS[: len(choices)]),
        # The same lettered layout cdvkit shows its targets, scored by the letter's likelihood.
        "prompt": render_mcq(question, choices) + "\nAnswer:",
    }


def _task_yaml(task: str, tag: str, data_file: Path, description: str) -> dict[str, Any]:
    return {
        "task": task,
        "tag": [tag],
        "task_alias": description,
        "dataset_path": "json",
        # lm-eval hands data_files to datasets.load_dataset, which resolves a relative path
        # against the working directory, not this file: the path is absolute.
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "labels",
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


@exporter("lm-eval", "lm_eval_task", help="an lm-evaluation-harness task folder")
def export_lm_eval(
    store: RunStore,
    out_dir: str | Path,
    *,
    task: str | None = None,
    all_examples: bool = False,
) -> ExportResult:
    """Two paired multiple-choice tasks, ``<task>_original`` and ``<task>_distracted``, over the
    questions that have a CDV example, tagged ``<task>`` so ``--tasks <task>`` runs both.

    Use with ``lm_eval --include_path <dir> --tasks <task>``.
    """
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = task_slug(task or f"cdv_{store.run_dir.resolve().name}")
    rows = example_rows(store)
    original: dict[str, dict[str, Any]] = {}
    distracted: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ex in rows:
        qid = ex["question_id"]
        if qid not in original:
            original[qid] = _mc_row(
                qid,
                ex["source"],
                ex["original_question"],
                ex["original_choices"],
                ex["original_answer"],
            )
        if all_examples or qid not in seen:
            distracted.append(
                _mc_row(qid, ex["source"], ex["question"], ex["choices"], ex["answer"])
            )
        seen.add(qid)
    files: list[Path] = []
    for variant, data in (("original", list(original.values())), ("distracted", distracted)):
        data_file = out / f"{name}_{variant}.jsonl"
        with open(data_file, "w", encoding="utf-8") as f:
            for r in data:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        cfg = _task_yaml(
            f"{name}_{variant}", name, data_file, f"CDV {variant} ({store.run_dir.name})"
        )
        yaml_file = out / f"{name}_{variant}.yaml"
        yaml_file.write_text(
            yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        files += [yaml_file, data_file]
    return ExportResult(out, len(distracted), files)


def export_run(
    run_dir: str | Path,
    fmt: str,
    output: str | Path | None = None,
    *,
    task: str | None = None,
    all_examples: bool = False,
) -> ExportResult:
    """Export a run directory in ``fmt``; ``output`` defaults to a file or folder in the run."""
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r} (available: {', '.join(EXPORTERS)})")
    fmt_ = EXPORTERS.get(fmt)
    out = Path(output) if output else Path(run_dir) / fmt_.default_name
    if not output:
        check_writable_output(out, run_dir, "pass -o/--output to export elsewhere")
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return fmt_.write(store, out, task=task, all_examples=all_examples)


# Formats that are one text file, so `cdv export -o -` can write them to stdout.
TEXT_EXPORTS: dict[str, Callable[[RunStore], tuple[str, int]]] = {
    "jsonl": jsonl_text,
    "reference": reference_text,
}


def export_text(run_dir: str | Path, fmt: str) -> tuple[str, int]:
    """A run's export in a one-file format as text (what ``export_run`` would write), and its
    count: examples, or questions with one for ``reference``. Nothing is written anywhere."""
    if fmt not in TEXT_EXPORTS:
        raise ValueError(
            f"--format {fmt} cannot go to stdout (one that can: {', '.join(TEXT_EXPORTS)})"
        )
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return TEXT_EXPORTS[fmt](store)


def __getattr__(name: str) -> Any:
    # FORMATS and DEFAULT_NAMES read the registry when asked, so a format registered later
    # (a plugin) is listed too.
    if name == "FORMATS":
        return tuple(EXPORTERS)
    if name == "DEFAULT_NAMES":
        return {e.name: e.value.default_name for e in EXPORTERS.entries()}
    raise AttributeError(name)
