"""Export a run's CDV examples to the formats other tools read.

- ``jsonl``: one example per line (``RunStore.examples()`` rows plus the target they fool);
- ``hf``: a Hugging Face ``datasets.Dataset`` saved with ``save_to_disk``;
- ``reference``: the reference implementation's JSON (questions with ``good_questions``);
- ``lm-eval``: an lm-evaluation-harness task folder (YAML tasks + JSONL data; :mod:`.lm_eval`).

Every format takes multiple-choice and free-form (numeric, short-answer) runs alike. The training
data formats (``sft``, ``dpo``) are registered beside the training data (cdvkit.mitigation.formats).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.export import lm_eval
from cdvkit.export.base import (
    EXPORTERS,
    Exporter,
    ExportResult,
    FormatOption,
    example_rows,
    exporter,
    text_format,
)
from cdvkit.export.lm_eval import task_slug
from cdvkit.store import RunStore, check_writable_output
from cdvkit.store.outputs import atomic_folder, check_output, write_text
from cdvkit.store.status import QuestionStatus
from cdvkit.tasks import row_task

__all__ = [
    "EXPORTERS",
    "ExportResult",
    "Exporter",
    "FormatOption",
    "example_rows",
    "export_hf",
    "export_jsonl",
    "export_lm_eval",
    "export_reference",
    "export_run",
    "export_text",
    "exporter",
    "jsonl_text",
    "reference_entries",
    "reference_text",
    "task_slug",
    "text_format",
]


def jsonl_text(store: RunStore, **_: Any) -> tuple[str, int]:
    """The ``jsonl`` export as text, and the number of examples in it."""
    rows = example_rows(store)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), len(rows)


@exporter(
    "jsonl",
    "examples.jsonl",
    help="one example per line (cdv evaluate --examples reads it)",
    text=jsonl_text,
)
def export_jsonl(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    p = Path(path)
    text, count = jsonl_text(store)
    write_text(p, text, run=store.run_dir)
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
            # The task shape ("multiple_choice" for a multiple-choice row) and, for a free-form
            # one, its accepted answers (reference first): one schema holds both shapes.
            "task": s,
            "references": seq(s),
        }
    )


@exporter("hf", "hf_dataset", help="a Hugging Face dataset (datasets.load_from_disk)", folder=True)
def export_hf(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    """A dataset with a fixed schema, so even a run without examples exports a loadable one."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise RuntimeError("the hf format needs the datasets library") from exc
    features = _hf_features()
    rows = [
        {**row, "task": row_task(row), "references": row.get("references") or []}
        for row in example_rows(store)
    ]
    # Columns, not rows: from_list([]) would drop every column of an empty export.
    ds = datasets.Dataset.from_dict(
        {k: [row.get(k) for row in rows] for k in features}, features=features
    )
    p = Path(path)
    with atomic_folder(p, run=store.run_dir) as tmp:
        # An empty dataset saved with the default sharding writes no shard, which
        # load_from_disk then fails on; one explicit shard keeps an empty export loadable.
        ds.save_to_disk(str(tmp), num_shards=1 if len(ds) == 0 else None)
    return ExportResult(p, len(rows), [p])


def reference_entries(store: RunStore) -> list[dict[str, Any]]:
    """Questions in the reference's output layout.

    Follows its conventions so its own evaluation scripts read the file unchanged: ``answer`` and
    ``ground_truth`` are choice texts; a question the target already failed carries the original
    itself as its only ``good_questions`` entry (rate 0); a question not (fully) searched has no
    ``good_questions`` key, which the reference reads as "still to do".

    A free-form question has no choices (``choices`` is ``[]``); its ``answer`` and every
    ``ground_truth`` are its reference answer, and it carries ``task`` and ``references`` (the
    accepted answers, reference first) besides, as ``Question.to_dict`` does.
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
        if q.free_form:
            entry |= {"task": q.task, "references": list(q.references)}
        if d["status"] == QuestionStatus.ORIGINAL_FAILED:
            entry["good_questions"] = [
                {
                    "ori_question": q.question,
                    "question": q.question,
                    "choices": list(q.choices),
                    "ground_truth": q.answer_text,
                    "rate": 0,
                    # As the reference stores it; not a CDV example (nothing was added).
                    "originally_failed": True,
                }
            ]
        elif d["status"] == QuestionStatus.DONE:
            entry["good_questions"] = [
                {
                    "ori_question": q.question,
                    "question": n["question"],
                    "choices": n["choices"],
                    "ground_truth": _ground_truth(q, n),
                    "rate": n["rate"],
                }
                for n in good.get(q.id, [])
            ]
        out.append(entry)
    return out


def _ground_truth(q: Question, node: dict[str, Any]) -> str:
    """A node's right answer as text: its right choice, or the question's reference."""
    return q.answer_text if q.free_form else node["choices"][node["answer"]]


def reference_text(store: RunStore, **_: Any) -> tuple[str, int]:
    """The ``reference`` export as text, and the number of questions with an example."""
    entries = reference_entries(store)
    with_examples = sum(
        1
        for e in entries
        if any(g["question"] != e["question"] for g in e.get("good_questions", []))
    )
    return json.dumps(entries, indent=4, ensure_ascii=False), with_examples


@exporter(
    "reference",
    "reference.json",
    help="the reference implementation's JSON",
    text=reference_text,
    counts="questions with examples",
)
def export_reference(store: RunStore, path: str | Path, **_: Any) -> ExportResult:
    p = Path(path)
    text, with_examples = reference_text(store)
    write_text(p, text, run=store.run_dir)
    return ExportResult(p, with_examples, [p])


# Defined in .lm_eval; registered here, so the formats keep their order (jsonl, hf, reference,
# lm-eval) wherever the export package is first imported from.
export_lm_eval = lm_eval.export_lm_eval
LM_EVAL_OPTIONS = {
    "task": FormatOption(None, "task name (default cdv_<run dir name>)", str | None),
    "all_examples": FormatOption(False, "every example, not the first per question"),
    "mode": FormatOption(
        "protocol",
        "protocol (the run's protocol, reproduces cdv evaluate's numbers) | loglik (lm-eval's "
        "own: letters by likelihood, gsm8k/triviaqa-style generation)",
    ),
}


@exporter(
    "lm-eval",
    "lm_eval_task",
    help="an lm-evaluation-harness task folder",
    folder=True,
    options=LM_EVAL_OPTIONS,
)
def _lm_eval_task(store: RunStore, path: str | Path, **options: Any) -> ExportResult:
    res = export_lm_eval(store, path, **options)
    task = res.files[0].stem.rsplit("_", 1)[0] if res.files else "?"
    as_chat = " --apply_chat_template" if options.get("mode") == "protocol" else ""
    res.notes.append(f"what each task measures: {res.path / 'README.md'}")
    res.commands.append(
        (
            "run it with",
            f"lm_eval --include_path {shlex.quote(str(res.path))} --tasks {task} "
            f"--model ...{as_chat}",
        )
    )
    return res


def export_run(
    run_dir: str | Path,
    fmt: str,
    output: str | Path | None = None,
    *,
    task: str | None = None,
    all_examples: bool = False,
    **options: Any,
) -> ExportResult:
    """Export a run directory in ``fmt``; ``output`` defaults to a file or folder in the run.
    ``options`` are the format's own (``mode=`` for ``lm-eval``, ``chat=`` for ``sft``...),
    checked against what it declares before anything is read; ``task`` and ``all_examples``
    are lm-eval's, kept as keywords for older callers.

    An output on a run store, or inside another run, is refused before anything is read or
    written (OutputError; see ``cdvkit.store.outputs``)."""
    fmt_ = _format(fmt)
    given = {**({"task": task} if task is not None else {}), **options}
    if all_examples:
        given["all_examples"] = True
    settings = fmt_.settings(fmt, given)
    out = Path(output) if output else Path(run_dir) / fmt_.default_name
    if not output:
        check_writable_output(out, run_dir, "pass -o/--output to export elsewhere")
    check_output(out, run=run_dir, folder=fmt_.folder)
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return fmt_.write(store, out, **settings)


def _format(fmt: str) -> Exporter:
    if fmt not in EXPORTERS:
        # A plugin meant to provide it that could not says so; else the formats there are.
        raise ValueError(
            EXPORTERS.problem(fmt)
            or f"unknown export format {fmt!r} (available: {', '.join(EXPORTERS)})"
        )
    return EXPORTERS.get(fmt)


def export_text(run_dir: str | Path, fmt: str, **options: Any) -> tuple[str, int]:
    """A run's export in a one-file format as text (what ``export_run`` would write), and its
    count: examples, or questions with one for ``reference``. Nothing is written anywhere."""
    fmt_ = _format(fmt)
    if fmt_.text is None:
        raise ValueError(
            f"--format {fmt} cannot go to stdout (one that can: {', '.join(_text_formats())})"
        )
    settings = fmt_.settings(fmt, options)
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return fmt_.text(store, **settings)


def _text_formats() -> dict[str, Callable[..., tuple[str, int]]]:
    return {e.name: e.value.text for e in EXPORTERS.entries() if e.value.text is not None}


def __getattr__(name: str) -> Any:
    # FORMATS, DEFAULT_NAMES and TEXT_EXPORTS read the registry when asked, so a format
    # registered later (a plugin) is listed too.
    if name == "FORMATS":
        return tuple(EXPORTERS)
    if name == "DEFAULT_NAMES":
        return {e.name: e.value.default_name for e in EXPORTERS.entries()}
    if name == "TEXT_EXPORTS":  # formats that are one text file, so -o - can write them
        return _text_formats()
    raise AttributeError(name)
