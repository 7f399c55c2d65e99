"""The ``lm-eval`` export: an lm-evaluation-harness task folder (YAML tasks + JSONL data).

Two paired tasks, ``<task>_original`` and ``<task>_distracted``, over the questions that have a
CDV example, tagged ``<task>`` so ``lm_eval --include_path <dir> --tasks <task>`` runs both. Their
kind follows the run's task shape:

- multiple choice: ``multiple_choice`` tasks, each choice's letter scored by its likelihood after
  the lettered prompt cdvkit shows its targets (``acc``);
- numeric: ``generate_until`` tasks modelled on lm-eval's ``gsm8k``: the reply's final number
  (the one after "Answer:" or "####", else its last number) against the reference, by
  ``exact_match`` ignoring case, commas, "$", "%", a trailing "." and a zero fraction;
- short answer: ``generate_until`` tasks modelled on lm-eval's ``triviaqa``: the reply's first
  line against the reference and its aliases, by ``exact_match`` ignoring case and punctuation.

One run has one shape. Rows of several shapes (never written by one run) get one task pair per
shape, ``<task>_<shape>_original`` and ``<task>_<shape>_distracted``, all tagged ``<task>``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS, MULTIPLE_CHOICE, NUMERIC, SHORT_ANSWER
from cdvkit.export.base import ExportResult, example_rows, row_task
from cdvkit.prompts import render_mcq
from cdvkit.store import RunStore

# gsm8k's and triviaqa's zero-shot prompt.
FREE_PROMPT = "Question: {{question}}\nAnswer:"

# A number as replies write it: "-5", "$1,080.50".
_NUM = r"-?\$?[0-9][0-9,]*(?:\.[0-9]+)?"
# What the final answer follows: cdvkit's targets end on "Answer: N", gsm8k's solutions "#### N".
_MARK = r"(?:####|(?i:answer)\s*:)"
# The number after the last "Answer:" (or "####") of a reply, markup between them skipped; in a
# reply without such a line, its last number. One pattern, two alternatives: the second matches
# from the start, and only where no marked number is, so lm-eval's regex filter (last match,
# first non-empty group) needs no fallback step.
FINAL_NUMBER = (
    rf"(?s){_MARK}[^0-9\n]*?({_NUM})|^(?!.*{_MARK}[^0-9\n]*[0-9])(?:.*[^0-9.,$-])?({_NUM})"
)
# Dropped from the extracted number and the reference before they are compared, in this order.
NUMBER_NOISE = [",", "\\$", "%", "\\.$", "\\.0+$"]

NUMERIC_FILTER = "final-number"
SHORT_FILTER = "remove_whitespace"

# What each shape's tasks add to the common part (dataset, split, tag).
SHAPE_CONFIG: dict[str, dict[str, Any]] = {
    MULTIPLE_CHOICE: {
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "labels",
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    },
    NUMERIC: {
        "output_type": "generate_until",
        "doc_to_text": FREE_PROMPT,
        "doc_to_target": "answer",
        "generation_kwargs": {
            "until": ["Question:", "</s>", "<|im_end|>"],
            "do_sample": False,
            "temperature": 0.0,
        },
        "filter_list": [
            {
                "name": NUMERIC_FILTER,
                "filter": [
                    {"function": "regex", "regex_pattern": FINAL_NUMBER, "group_select": -1},
                    {"function": "take_first"},
                ],
            }
        ],
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                # Not True: it would drop the minus sign and the decimal point (-1.5 == 15).
                "ignore_punctuation": False,
                "regexes_to_ignore": NUMBER_NOISE,
            }
        ],
    },
    SHORT_ANSWER: {
        "output_type": "generate_until",
        "doc_to_text": FREE_PROMPT,
        # A list: lm-eval counts a reply right when it matches any of them.
        "doc_to_target": "references",
        "target_delimiter": " ",
        "generation_kwargs": {"until": ["\n", ".", ","], "do_sample": False, "temperature": 0.0},
        "filter_list": [
            {
                "name": SHORT_FILTER,
                "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}],
            }
        ],
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": True,
            }
        ],
    },
}


def task_slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    return slug if slug and not slug[0].isdigit() else f"cdv_{slug}"


def _mc_row(qid: str, source: str, question: str, choices: list[str], answer: int) -> dict:
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


def _free_row(qid: str, source: str, task: str, question: str, references: list[str]) -> dict:
    return {
        "id": qid,
        "source": source,
        "task": task,
        "question": question,
        "answer": references[0],  # the reference: the numeric tasks' target
        "references": list(references),  # with its aliases: the short-answer tasks' targets
    }


def _doc_row(ex: dict[str, Any], distracted: bool) -> dict[str, Any]:
    """One variant of an example as a task document."""
    q = ex["question"] if distracted else ex["original_question"]
    task = row_task(ex)
    if task == MULTIPLE_CHOICE:
        if distracted:
            return _mc_row(ex["question_id"], ex["source"], q, ex["choices"], ex["answer"])
        choices, answer = ex["original_choices"], ex["original_answer"]
        return _mc_row(ex["question_id"], ex["source"], q, choices, answer)
    refs = ex.get("references") or [ex["answer_text"]]
    return _free_row(ex["question_id"], ex["source"], task, q, refs)


def _task_yaml(
    task: str, tag: str, data_file: Path, description: str, shape: str = MULTIPLE_CHOICE
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
        **copy.deepcopy(SHAPE_CONFIG[shape]),
        "metadata": {"version": 1.0},
    }


def _yaml_text(cfg: dict[str, Any]) -> str:
    """``cfg`` as YAML, a text with line breaks double-quoted ("Question: ...\\nAnswer:") where
    plain PyYAML would fold it over lines."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = '"' if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(cfg, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def _shapes(store: RunStore, rows: list[dict[str, Any]]) -> list[str]:
    """The task shapes to write tasks for: the rows', else (no example) the run's questions'."""
    shapes = list(dict.fromkeys(row_task(r) for r in rows))
    if not shapes:
        shapes = list(dict.fromkeys(d["question"].task for d in store.questions()))
    return shapes or [MULTIPLE_CHOICE]


def _pair(
    rows: list[dict[str, Any]], all_examples: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The original of each question, and its first (or every) distracted example."""
    original: dict[str, dict[str, Any]] = {}
    distracted: list[dict[str, Any]] = []
    for ex in rows:
        qid = ex["question_id"]
        first = qid not in original
        if first:
            original[qid] = _doc_row(ex, distracted=False)
        if all_examples or first:
            distracted.append(_doc_row(ex, distracted=True))
    return list(original.values()), distracted


def export_lm_eval(
    store: RunStore,
    out_dir: str | Path,
    *,
    task: str | None = None,
    all_examples: bool = False,
) -> ExportResult:
    """Two paired tasks, ``<task>_original`` and ``<task>_distracted``, over the questions that
    have a CDV example, tagged ``<task>`` so ``--tasks <task>`` runs both: ``multiple_choice``
    tasks for a multiple-choice run, ``generate_until`` ones for a free-form run.

    Use with ``lm_eval --include_path <dir> --tasks <task>``.
    """
    out = Path(out_dir)
    name = task_slug(task or f"cdv_{store.run_dir.resolve().name}")
    rows = example_rows(store)
    shapes = _shapes(store, rows)
    for shape in shapes:  # refused before anything is written
        if shape not in SHAPE_CONFIG:
            raise ValueError(f"the lm-eval export has no task for {shape!r} questions")
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    count = 0
    for shape in shapes:
        base = f"{name}_{shape}" if len(shapes) > 1 else name
        original, distracted = _pair([r for r in rows if row_task(r) == shape], all_examples)
        count += len(distracted)
        for variant, data in (("original", original), ("distracted", distracted)):
            data_file = out / f"{base}_{variant}.jsonl"
            with open(data_file, "w", encoding="utf-8") as f:
                for r in data:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            what = variant if len(shapes) == 1 else f"{shape} {variant}"
            cfg = _task_yaml(
                f"{base}_{variant}", name, data_file, f"CDV {what} ({store.run_dir.name})", shape
            )
            yaml_file = out / f"{base}_{variant}.yaml"
            yaml_file.write_text(_yaml_text(cfg), encoding="utf-8")
            files += [yaml_file, data_file]
    return ExportResult(out, count, files)
