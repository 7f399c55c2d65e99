"""The ``lm-eval`` export: an lm-evaluation-harness task folder (YAML tasks, JSONL data, README).

Two paired tasks, ``<task>_original`` and ``<task>_distracted``, over the questions that have a
CDV example, tagged ``<task>`` so ``lm_eval --include_path <dir> --tasks <task>`` runs both. One
run has one shape; rows of several shapes (never written by one run) get one task pair per shape,
``<task>_<shape>_original`` and ``<task>_<shape>_distracted``, all tagged ``<task>``.

Two modes (``cdv export --lm-eval-mode``):

- ``protocol`` (the default): the run's protocol itself, so each task's ``acc`` reproduces a
  ``cdv evaluate`` number (:mod:`.lm_eval_protocol`; scored by cdvkit's readers through the
  folder's ``utils.py``, so cdvkit must be installed where lm_eval runs);
- ``loglik``: lm-eval's own conventions, comparable with its other tasks but not with cdvkit's
  numbers. Multiple choice: ``multiple_choice`` tasks, each choice's letter scored by its
  likelihood after the lettered question and "Answer:" (``acc``). Numeric: ``generate_until``
  tasks modelled on lm-eval's ``gsm8k``: the reply's final number (the one after "Answer:" or
  "####", else its last number) against the reference, by ``exact_match`` ignoring case, commas,
  "$", "%", a trailing "." and a zero fraction. Short answer: modelled on ``triviaqa``: the
  reply's first line against the reference and its aliases, by ``exact_match`` ignoring case and
  punctuation.

The folder's README.md says which ``cdv evaluate`` number each task reproduces.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS, MULTIPLE_CHOICE
from cdvkit.evaluation.example_rows import from_store
from cdvkit.evaluation.items import EvalItem, Variant
from cdvkit.export.base import ExportResult
from cdvkit.export.lm_eval_protocol import (
    PROTOCOL_FILE,
    UTILS_PY,
    Function,
    protocol_config,
    protocol_row,
    protocol_settings,
    reply_cap,
)
from cdvkit.export.lm_eval_readme import TaskInfo, task_readme
from cdvkit.prompts import render_mcq
from cdvkit.protocol import Protocol, protocol_from_config
from cdvkit.store import RunStore
from cdvkit.store.outputs import atomic_folder, jsonl_lines
from cdvkit.tasks import shape_of
from cdvkit.tasks.numeric_answer import FINAL_NUMBER, FREE_PROMPT, NUMBER_NOISE, NUMERIC_FILTER
from cdvkit.tasks.short_answer import SHORT_FILTER

__all__ = [
    "FINAL_NUMBER",
    "FREE_PROMPT",
    "LM_EVAL_MODES",
    "NUMBER_NOISE",
    "NUMERIC_FILTER",
    "SHORT_FILTER",
    "export_lm_eval",
    "task_slug",
]

LM_EVAL_MODES = ("protocol", "loglik")


# The loglik mode's parts of free-form shapes (lm-eval's gsm8k and triviaqa conventions) are the
# shapes' own (TaskShape.lm_eval); these names are kept for those who import them from here.
def task_slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    return slug if slug and not slug[0].isdigit() else f"cdv_{slug}"


def _doc(item: EvalItem, v: Variant) -> dict[str, Any]:
    """One question as a task document (what both modes share)."""
    row: dict[str, Any] = {"id": item.id, "source": item.dataset, "task": v.task}
    if v.choices:
        return row | {"question": v.question, "choices": list(v.choices), "answer": v.answer}
    # "answer" is the reference (the numeric tasks' target); "references" adds its aliases.
    refs = list(v.references)
    return row | {"question": v.question, "answer": refs[0], "references": refs}


def _loglik_row(row: dict[str, Any]) -> dict[str, Any]:
    if "choices" not in row:
        return row
    return row | {
        "labels": list(LETTERS[: len(row["choices"])]),
        # The same lettered layout cdvkit shows its targets, scored by the letter's likelihood.
        "prompt": render_mcq(row["question"], row["choices"]) + "\nAnswer:",
    }


def _task_yaml(
    task: str, tag: str, data_file: Path, description: str, shape_config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "task": task,
        "tag": [tag],
        "task_alias": description,
        "dataset_path": "json",
        # lm-eval hands data_files to datasets.load_dataset, which resolves a relative path
        # against the working directory, not this file: the path is absolute.
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        # A copy: yaml would write objects it meets twice as anchors and aliases.
        **copy.deepcopy(shape_config),
        "metadata": {"version": 1.0},
    }


def _yaml_text(cfg: dict[str, Any]) -> str:
    """``cfg`` as YAML, a text with line breaks double-quoted ("Question: ...\\nAnswer:") where
    plain PyYAML would fold it over lines, and :class:`Function` as lm-eval's ``!function``."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = '"' if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    def function(dumper: yaml.SafeDumper, data: Function) -> yaml.ScalarNode:
        return dumper.represent_scalar("!function", str(data))

    Dumper.add_representer(str, text)
    Dumper.add_representer(Function, function)
    return yaml.dump(cfg, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def _shapes(store: RunStore, items: list[EvalItem]) -> list[str]:
    """The task shapes to write tasks for: the examples', else (no example) the run's
    questions'."""
    shapes = list(dict.fromkeys(i.original.task for i in items))
    if not shapes:
        shapes = list(dict.fromkeys(d["question"].task for d in store.questions()))
    return shapes or [MULTIPLE_CHOICE]


def _pair(
    items: list[EvalItem], all_examples: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The original of each question with an example, and its first (or every) example: the
    questions and versions ``cdv evaluate`` asks (its own pairing of the run's rows, which skips
    a row identical to its original and reads a baseline run's rewrites)."""
    original = [_doc(i, i.original) for i in items if i.examples]
    distracted = [_doc(i, v) for i in items for v in i.variants(all_examples)[1:]]
    return original, distracted


def _check(shapes: list[str], mode: str, protocol: Protocol | None) -> None:
    """Refuse an export no task can hold, before anything is written."""
    if mode not in LM_EVAL_MODES:
        raise ValueError(f"unknown lm-eval mode {mode!r} (available: {', '.join(LM_EVAL_MODES)})")
    for shape in shapes:
        if protocol is not None and protocol.scoring == "exact" and not shape_of(shape).has_choices:
            raise ValueError(
                f"the run's exact protocol has no choices to score in {shape!r} questions"
            )


def export_lm_eval(
    store: RunStore,
    out_dir: str | Path,
    *,
    task: str | None = None,
    all_examples: bool = False,
    mode: str = "protocol",
) -> ExportResult:
    """Two paired tasks, ``<task>_original`` and ``<task>_distracted``, over the questions that
    have a CDV example, tagged ``<task>`` so ``--tasks <task>`` runs both, plus a README.md
    saying what each measures. ``mode``: ``protocol`` (the run's protocol, scored by cdvkit's
    readers: each task reproduces a ``cdv evaluate`` number) or ``loglik`` (lm-eval's own
    conventions; see the module docstring).

    Use with ``lm_eval --include_path <dir> --tasks <task> --apply_chat_template``.
    """
    out = Path(out_dir)
    name = task_slug(task or f"cdv_{store.run_dir.resolve().name}")
    items = from_store(store).items
    shapes = _shapes(store, items)
    settings = protocol_settings(store.get_config() or {})
    protocol = protocol_from_config(settings) if mode == "protocol" else None
    _check(shapes, mode, protocol)
    # Built in a temporary sibling folder, which becomes ``out`` at the end (whole or absent);
    # the tasks name their data files by their final, absolute path.
    with atomic_folder(out, run=store.run_dir) as tmp:
        files: list[Path] = []
        written: list[TaskInfo] = []
        count = 0
        for shape in shapes:
            base = f"{name}_{shape}" if len(shapes) > 1 else name
            of_shape = [i for i in items if i.original.task == shape]
            original, distracted = _pair(of_shape, all_examples)
            count += len(distracted)
            for variant, data in (("original", original), ("distracted", distracted)):
                # --all-examples: cdv evaluate weighs each question once, not each example.
                per_question = protocol is not None and all_examples and variant == "distracted"
                if protocol is None:
                    docs, config = [_loglik_row(r) for r in data], shape_of(shape).lm_eval()
                else:
                    docs = [protocol_row(protocol, r) for r in data]
                    if per_question:
                        docs = [d | {"per_question": True} for d in docs]
                    cap = reply_cap(protocol, shape)
                    config = protocol_config(protocol, shape, cap, per_question)
                data_file = out / f"{base}_{variant}.jsonl"
                jsonl_lines(tmp / data_file.name, docs)
                what = variant if len(shapes) == 1 else f"{shape} {variant}"
                cfg = _task_yaml(
                    f"{base}_{variant}",
                    name,
                    data_file,
                    f"CDV {what} ({store.run_dir.name})",
                    config,
                )
                yaml_file = out / f"{base}_{variant}.yaml"
                (tmp / yaml_file.name).write_text(_yaml_text(cfg), encoding="utf-8")
                files += [yaml_file, data_file]
                written.append(TaskInfo(f"{base}_{variant}", shape, variant, len(docs)))
        if protocol is not None:
            text = json.dumps(settings, indent=2) + "\n"
            (tmp / PROTOCOL_FILE).write_text(text, encoding="utf-8")
            (tmp / "utils.py").write_text(UTILS_PY, encoding="utf-8")
            files += [out / PROTOCOL_FILE, out / "utils.py"]
        run = str(store.run_dir)
        cap = max((reply_cap(protocol, s) for s in shapes), default=0) if protocol else 0
        text = task_readme(name, run, written, str(out.resolve()), protocol, all_examples, cap)
        (tmp / "README.md").write_text(text, encoding="utf-8")
        files.append(out / "README.md")
    return ExportResult(out, count, files)
