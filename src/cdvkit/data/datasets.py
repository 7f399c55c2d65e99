"""Datasets chosen by name (``--data NAME``): the bundled sample, the hub benchmarks, plugins'.

A dataset is registered with its name, the task shape of its questions, a description and a
loader; ``cdv datasets`` lists the registry and ``load_questions`` looks names up in it before
reading a file. Another package adds one through the entry point group ``cdvkit.datasets``::

    from cdvkit.data import LoadResult, dataset

    @dataset("my-bench", task="multiple_choice", description="...", where="https://...")
    def my_bench(*, split=None, data_dir=None, task=None, skip_invalid=False, strict=False):
        return LoadResult(questions, [])  # or just the list of Question

The loader is called with those five keywords (``split`` already defaulted to the dataset's
own); one that has no use for some may take ``**_``. A dataset without splits (``split=None``)
is never handed ``split`` nor ``data_dir``: asking for either is refused before it is called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cdvkit.data.loaders import load_file
from cdvkit.data.question import MULTIPLE_CHOICE, Question
from cdvkit.data.validation import DatasetError, LoadResult, Shapes
from cdvkit.registry import Registry, describe, instance_of

SAMPLE = "sample"

Loader = Callable[..., LoadResult | Iterable[Question]]


@dataclass(frozen=True)
class Dataset:
    """A dataset cdvkit can load by name."""

    name: str
    task: str  # the name of its questions' task shape (a cdvkit.tasks part)
    description: str
    loader: Loader = field(repr=False, compare=False)
    where: str = ""  # where its rows come from: a hub id, a URL, "bundled with cdvkit"
    split: str | None = None  # its default split; None: it has none
    aliases: tuple[str, ...] = ()  # other names people type for it

    def load(
        self,
        *,
        split: str | None = None,
        data_dir: str | Path | None = None,
        task: str | None = None,
        skip_invalid: bool = False,
        strict: bool = False,
        shapes: Shapes,
    ) -> LoadResult:
        """Its questions (``split`` defaults to the dataset's own); a loader that returns bare
        questions gets an empty ``skipped``. Questions of another shape than ``task`` asks for
        are refused, whatever the loader did with it. ``shapes`` (the task shapes by name) go to
        a loader that takes them (one that reads files needs them; ``**kwargs`` takes them)."""
        options: dict[str, Any] = {
            "split": split or self.split,
            "data_dir": data_dir,
            "task": task,
            "skip_invalid": skip_invalid,
            "strict": strict,
        }
        if _takes(self.loader, "shapes"):
            options["shapes"] = shapes
        result = self.loader(**options)
        if not isinstance(result, LoadResult):
            result = LoadResult(list(result), [])
        for q in result.questions:
            if not isinstance(q, Question):
                raise DatasetError(f"dataset {self.name!r} gave {describe(q)}, not a Question")
            if task is not None and q.task != task:
                raise DatasetError(
                    f"dataset {self.name!r} holds {q.task} questions, so --task {task} does "
                    "not apply to it; leave --task out"
                )
        return result


DATASETS: Registry[Dataset] = Registry(
    "dataset",
    "cdvkit.datasets",
    accept=instance_of(Dataset, "a cdvkit.data.Dataset (register one with cdvkit.data.dataset)"),
)


def dataset(
    name: str,
    *,
    task: str,
    description: str,
    where: str = "",
    split: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Callable[[Loader], Loader]:
    """Register ``loader`` as the dataset ``name`` (see the module's docstring)."""

    def add(loader: Loader) -> Loader:
        DATASETS.add(
            name,
            Dataset(name, task, description, loader, where, split, tuple(aliases)),
            help=description,
        )
        return loader

    return add


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def find_dataset(spec: str) -> Dataset | None:
    """The registered dataset ``spec`` names (any case, ``-`` or ``_``, or an alias), if any."""
    key = _key(spec)
    for entry in DATASETS.entries():
        d = entry.value
        if key == _key(d.name) or key in {_key(a) for a in d.aliases}:
            return d
    return None


@dataset(
    SAMPLE,
    task=MULTIPLE_CHOICE,
    description="offline demo",
    where="bundled with cdvkit",
)
def _sample(
    *,
    task: str | None = None,
    skip_invalid: bool = False,
    strict: bool = False,
    shapes: Shapes,
    **_: Any,
) -> LoadResult:
    sample = resources.files("cdvkit.data").joinpath("sample", "sample.jsonl")
    with resources.as_file(sample) as path:
        return load_file(
            path,
            skip_invalid=skip_invalid,
            source="cdvkit-sample",
            strict=strict,
            task=task,
            shapes=shapes,
        )


def _takes(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` accepts the keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)
