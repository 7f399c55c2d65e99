"""Datasets: the bundled sample, built-in hub benchmarks and local files, behind one call."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from cdvkit.data.datasets import DATASETS, SAMPLE, Dataset, dataset, find_dataset
from cdvkit.data.hub import BUILTINS, BuiltinDataset, load_builtin
from cdvkit.data.loaders import SUPPORTED_SUFFIXES, load_file
from cdvkit.data.question import Question
from cdvkit.data.validation import (
    DatasetError,
    LoadResult,
    RowProblem,
    RowShape,
    Shapes,
    resolve_task,
)

__all__ = [
    "BUILTINS",
    "DATASETS",
    "SAMPLE",
    "BuiltinDataset",
    "Dataset",
    "DatasetError",
    "LoadResult",
    "Question",
    "RowProblem",
    "RowShape",
    "Shapes",
    "dataset",
    "find_dataset",
    "load_builtin",
    "load_file",
    "load_questions",
    "resolve_task",
    "sample_questions",
]


def sample_questions(
    questions: Sequence[Question], limit: int | None, seed: int = 0
) -> list[Question]:
    """A seeded sample of ``limit`` questions, in their original order.

    Each question is ranked by a hash of (seed, id), so the choice depends only on the seed and
    the ids: it is the same on every Python version, it survives rows being reordered or
    appended, and a larger limit keeps every question a smaller one chose (a run can grow).
    """
    if limit is None or limit >= len(questions):
        return list(questions)

    def rank(i: int) -> tuple[bytes, int]:
        digest = hashlib.sha256(f"{seed}\0{questions[i].id}".encode()).digest()
        return digest, i

    chosen = sorted(sorted(range(len(questions)), key=rank)[:limit])
    return [questions[i] for i in chosen]


def load_questions(
    spec: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    skip_invalid: bool = False,
    data_dir: str | Path | None = None,
    strict: bool = False,
    task: str | None = None,
    shapes: Shapes,
) -> LoadResult:
    """Load questions from ``spec``: a registered dataset's name (``"sample"``, a hub built-in,
    a plugin's: see DATASETS) or a file path.

    ``split`` and ``data_dir`` (a local copy of the hub data, see ``load_builtin``) apply to
    datasets with splits only. ``limit`` keeps a seeded sample of that many questions (see
    ``sample_questions``). ``skip_invalid`` skips bad rows of a file and reports them in
    ``skipped``; built-ins always skip and report rows their converter rejects. Files with
    repeated choices load with the repeats collapsed and listed in ``warnings``, unless
    ``strict``, which makes them a defect like any other.

    ``task`` (a name among ``shapes``: multiple_choice, numeric, short_answer, a plugin's) sets
    the shape a file's rows must have; left out, it is inferred from the rows (see
    ``load_file``). A built-in has its own shape (``BuiltinDataset.task``), which ``task`` may
    only repeat. ``shapes`` are the task shapes by name: ``cdvkit.tasks.load_questions`` passes
    every registered one.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DatasetError(f"limit must be a positive whole number, got {limit!r}")
    task = resolve_task(task, shapes)

    named = find_dataset(spec)
    if named is not None:
        if named.split is None:
            _only_for_builtins(spec, split, data_dir)
        result = named.load(
            split=split,
            data_dir=data_dir,
            task=task,
            skip_invalid=skip_invalid,
            strict=strict,
            shapes=shapes,
        )
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                raise DatasetError(f"{spec}: no such file")
            raise DatasetError(
                f"unknown dataset {spec!r}: not a registered dataset "
                f"({', '.join(DATASETS)}; cdv datasets lists them) and not an existing "
                f"{'/'.join(SUPPORTED_SUFFIXES)} file"
            )
        _only_for_builtins(spec, split, data_dir)
        result = load_file(path, skip_invalid=skip_invalid, strict=strict, task=task, shapes=shapes)

    result.questions = sample_questions(result.questions, limit, seed)
    return result


def _only_for_builtins(spec: str, split: str | None, data_dir: str | Path | None) -> None:
    # Silently ignoring --split on a file would let a user believe they chose a split.
    if split is not None:
        raise DatasetError(f"--split {split!r} applies to built-in datasets only, not {spec!r}")
    if data_dir is not None:
        raise DatasetError(f"data_dir applies to built-in datasets only, not {spec!r}")
