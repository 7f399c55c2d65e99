"""Built-in benchmarks, loaded from the Hugging Face Hub with ``datasets.load_dataset``.

Each built-in is registered as a dataset (``cdvkit.data.datasets.DATASETS``) and has a small
converter from one hub row to a Question (``cdvkit.data.hub_rows``), so the mapping can be tested
without a network. Questions get the same ``source`` names as the reference implementation's
files (MMLU, CommonsenseQA, OpenbookQA, TruthfulQA), and the hub's choice order is kept, so a
question without a hub id gets the same stable id whether it is read from the hub or from a
reference-format file.

Free-form built-ins (GSM8K: numeric, TriviaQA: short answers) are built like free-form file rows,
so a GSM8K row gets the same id from the hub as from a local file of its rows (source "GSM8K").
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.data.datasets import DATASETS, Dataset
from cdvkit.data.hub_rows import (
    convert_commonsense_qa,
    convert_gsm8k,
    convert_mmlu,
    convert_openbookqa,
    convert_trivia_qa,
    convert_truthfulqa_mc1,
)
from cdvkit.data.question import MULTIPLE_CHOICE, NUMERIC, SHORT_ANSWER, Question
from cdvkit.data.validation import (
    DatasetError,
    InvalidRow,
    LoadResult,
    RowProblem,
    RowShape,
    Shapes,
    resolve_task,
)

__all__ = [
    "BUILTINS",
    "BuiltinDataset",
    "convert_commonsense_qa",
    "convert_gsm8k",
    "convert_mmlu",
    "convert_openbookqa",
    "convert_trivia_qa",
    "convert_truthfulqa_mc1",
    "load_builtin",
]

_LOCAL_HINT = (
    "Pass a local file instead, e.g. --data path/to/file.json (JSON, JSONL or CSV with "
    "question and answer, plus choices for multiple choice), or --data sample for the bundled "
    "sample"
)


@dataclass(frozen=True)
class BuiltinDataset:
    """A benchmark cdvkit knows how to fetch from the Hugging Face Hub."""

    name: str
    path: str  # hub repository id
    config: str | None
    split: str  # default split: the labelled one the reference implementation sampled from
    description: str
    source: str  # Question.source for its rows
    # A hub row as a question of the dataset's shape (given: it validates the answer).
    convert: Callable[[Mapping[str, Any], RowShape], Question] = field(repr=False, compare=False)
    task: str = MULTIPLE_CHOICE  # the name of its questions' task shape (a cdvkit.tasks part)
    aliases: tuple[str, ...] = ()  # other names people type for it

    def dataset(self) -> Dataset:
        """This benchmark as a registered dataset: ``--data NAME`` loads it from the hub."""

        def load(
            *,
            split: str | None = None,
            data_dir: str | Path | None = None,
            task: Any = None,
            shapes: Shapes,
            **_: Any,
        ) -> LoadResult:
            return load_builtin(self.name, split=split, data_dir=data_dir, task=task, shapes=shapes)

        return Dataset(
            self.name, self.task, self.description, load, self.path, self.split, self.aliases
        )


BUILTINS: dict[str, BuiltinDataset] = {
    b.name: b
    for b in (
        BuiltinDataset(
            "mmlu",
            "cais/mmlu",
            "all",
            "test",
            "MMLU: 57 subjects of academic knowledge, 4 choices",
            "MMLU",
            convert_mmlu,
        ),
        BuiltinDataset(
            "commonsense_qa",
            "tau/commonsense_qa",
            None,
            "validation",
            "CommonsenseQA: everyday commonsense, 5 choices (test split has no answers)",
            "CommonsenseQA",
            convert_commonsense_qa,
        ),
        BuiltinDataset(
            "openbookqa",
            "allenai/openbookqa",
            "main",
            "test",
            "OpenBookQA: elementary science, 4 choices",
            "OpenbookQA",
            convert_openbookqa,
            aliases=("obqa",),
        ),
        BuiltinDataset(
            "truthfulqa_mc1",
            "truthfulqa/truthful_qa",
            "multiple_choice",
            "validation",
            "TruthfulQA MC1: questions that invite popular misconceptions, 2-13 choices",
            "TruthfulQA",
            convert_truthfulqa_mc1,
            aliases=("truthfulqa", "truthful_qa"),
        ),
        BuiltinDataset(
            "gsm8k",
            "openai/gsm8k",
            "main",
            "test",
            "GSM8K: grade-school math word problems, a numeric answer",
            "GSM8K",
            convert_gsm8k,
            task=NUMERIC,
            aliases=("gsm_8k",),
        ),
        BuiltinDataset(
            "trivia_qa",
            "mandarjoshi/trivia_qa",
            "rc.nocontext",
            "validation",
            "TriviaQA (rc.nocontext): trivia, a short answer and its aliases "
            "(test split has no answers)",
            "TriviaQA",
            convert_trivia_qa,
            task=SHORT_ANSWER,
            aliases=("triviaqa",),
        ),
    )
}
for _builtin in BUILTINS.values():
    DATASETS.add(_builtin.name, _builtin.dataset(), help=_builtin.description)


# ---------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------


def _unreachable_reason(exc: BaseException) -> str | None:
    """Why the hub could not be reached, if that is what ``exc`` (or its cause) means."""
    # Both ship with datasets (huggingface_hub talks to the hub through httpx).
    import httpx
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    network_errors = (ConnectionError, TimeoutError, socket.gaierror, httpx.TransportError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        # datasets reports offline mode and a dead network as a ConnectionError whose message
        # names the underlying huggingface_hub error; match both the type and that name.
        if isinstance(current, OfflineModeIsEnabled) or "OfflineModeIsEnabled" in text:
            return "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)"
        if isinstance(current, LocalEntryNotFoundError) or "LocalEntryNotFoundError" in text:
            return "no connection, and the dataset is not in the local cache"
        if isinstance(current, network_errors):
            return f"network error: {text or type(current).__name__}"
        current = current.__cause__ or current.__context__
    return None


def _readme_declares_configs(root: Path) -> bool:
    readme = root / "README.md"
    try:
        return "config_name:" in readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


_FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def _fetch(
    b: BuiltinDataset, split: str, data_dir: Path | None, cache_dir: str | None
) -> tuple[Any, str]:
    """Return the ``datasets.Dataset`` for one split and a label naming where it came from."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DatasetError(
            f"the 'datasets' package is needed for built-in dataset {b.name!r}. {_LOCAL_HINT}."
        ) from exc

    kwargs: dict[str, Any] = {"split": split, "cache_dir": cache_dir}
    if data_dir is None:
        label = f"{b.path} ({b.config + ', ' if b.config else ''}{split})"
        args: tuple[Any, ...] = (b.path, b.config)
    else:
        label = f"{data_dir} ({split})"
        if not data_dir.exists():
            raise DatasetError(f"{data_dir}: no such file or directory")
        if data_dir.is_file():
            builder = _FILE_BUILDERS.get(data_dir.suffix.lower())
            if builder is None:
                raise DatasetError(
                    f"{data_dir}: unsupported file type; use one of {', '.join(_FILE_BUILDERS)}"
                )
            args = (builder,)
            kwargs["data_files"] = {split: str(data_dir)}
        elif _readme_declares_configs(data_dir):
            # A snapshot of the hub repository: its README maps configs to files.
            args = (str(data_dir), b.config)
        elif b.config and (data_dir / b.config).is_dir():
            # Hub layout without the README: one folder per config, split names in file names.
            args = (str(data_dir),)
            kwargs["data_dir"] = b.config
        else:
            args = (str(data_dir),)

    try:
        return datasets.load_dataset(*args, **kwargs), label
    except Exception as exc:
        reason = _unreachable_reason(exc)
        if reason is not None:
            raise DatasetError(
                f"cannot load built-in dataset {b.name!r}: the Hugging Face Hub is unreachable "
                f"({reason}), so {b.path} cannot be downloaded. {_LOCAL_HINT}."
            ) from None
        from datasets.exceptions import DatasetNotFoundError

        if isinstance(exc, DatasetNotFoundError):
            raise DatasetError(
                f"cannot load built-in dataset {b.name!r}: {b.path} was not found on the "
                f"Hugging Face Hub ({exc}). {_LOCAL_HINT}."
            ) from None
        if isinstance(exc, ValueError | FileNotFoundError):
            # Unknown split or config, or no data files in a local override.
            raise DatasetError(
                f"cannot load built-in dataset {b.name!r} from {label}: {exc}"
            ) from exc
        raise


def load_builtin(
    name: str,
    *,
    split: str | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    task: str | None = None,
    shapes: Shapes,
) -> LoadResult:
    """Load one split of a built-in benchmark as questions (``shapes``: the task shapes by
    name, as cdvkit.tasks passes them).

    ``task`` may only confirm the built-in's own shape (``BuiltinDataset.task``): a built-in's
    questions cannot be read as another shape.

    ``data_dir`` reads the data from a local path instead of the hub: a snapshot of the hub
    repository (README with configs), a folder laid out like one (``<config>/<split>-*.parquet``
    or ``data/<split>-*.parquet``), or a single parquet/json/jsonl/csv file for ``split``.
    ``cache_dir`` is handed to ``datasets`` (default: its own cache).

    Rows the converter rejects (e.g. duplicate choices) are always skipped and listed in
    ``skipped``: the public data cannot be fixed by the user, and stopping on a handful of
    odd rows would make the benchmark unusable. Only a split with no usable row raises.
    """
    b = BUILTINS.get(name)
    if b is None:
        raise DatasetError(
            f"unknown built-in dataset {name!r}; choose one of {', '.join(sorted(BUILTINS))}"
        )
    task = resolve_task(task, shapes)
    if task is not None and task != b.task:
        raise DatasetError(
            f"built-in dataset {name!r} holds {b.task} questions, so --task {task} does not "
            "apply to it; leave --task out"
        )
    split = split or b.split
    ds, label = _fetch(
        b,
        split,
        Path(data_dir) if data_dir is not None else None,
        str(cache_dir) if cache_dir is not None else None,
    )

    questions: list[Question] = []
    skipped: list[RowProblem] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(ds, start=1):
        try:
            q = b.convert(row, shapes[b.task])
            if q.id in seen:
                raise InvalidRow(f"duplicate question: same id {q.id!r} as row {seen[q.id]}")
        except InvalidRow as exc:
            skipped.append(RowProblem(label, i, str(exc)))
            continue
        seen[q.id] = i
        questions.append(q)
    if not questions:
        detail = f"; first problem: {skipped[0]}" if skipped else ""
        raise DatasetError(
            f"built-in dataset {name!r} has no usable questions in split {split!r} "
            f"({len(skipped)} rows rejected{detail}); the default split is {b.split!r}"
        )
    return LoadResult(questions, skipped)
