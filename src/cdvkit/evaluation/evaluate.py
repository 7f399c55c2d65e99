"""Evaluate models on original vs. distracted questions: accuracy, drop, significance, transfer.

The entry points: check every model before anything is paid, then evaluate one defense, here or
on a distributed executor's workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdvkit.evaluation.defenses import Defense, resolve_defense
from cdvkit.evaluation.evaluator import Evaluator, load_backend
from cdvkit.evaluation.items import ExampleSet
from cdvkit.evaluation.results import EvalProgress
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.protocol import Protocol, protocol_from_config
from cdvkit.store import RunStore


async def evaluate(
    sets: list[ExampleSet],
    models: list[str],
    *,
    store: RunStore | None,
    defense: str | Defense = "none",
    settings: EvalSettings | None = None,
    budget: Budget | None = None,
    backends: dict[str, Model] | None = None,
    extractor: str | Model | None = None,
    base_url: str | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
    executor: Any | None = None,
) -> dict[str, Any]:
    """Evaluate ``models`` on every example set under one defense; returns the result entry.

    ``backends`` maps a model string to a ready backend (tests, the Python API); other strings
    are loaded with ``load_model``. A distributed ``executor`` (cdvkit.executors) scores on its
    workers, this process still the only writer of ``store``.
    """
    d = defense if isinstance(defense, Defense) else resolve_defense(defense)
    options: dict[str, Any] = {
        "store": store,
        "defense": d,
        "settings": settings or EvalSettings(),
        "budget": budget,
        "backends": backends,
        "extractor": extractor,
        "base_url": base_url,
    }
    if executor is not None and executor.distributed:
        return await executor.evaluate(sets, models, **options, on_progress=on_progress)
    ev = Evaluator(models, **options)
    try:
        return await ev.run(sets, on_progress=on_progress)
    finally:
        await ev.aclose()


def run_protocol(run_dir: str | Path) -> Protocol:
    """The protocol a run was searched under, so evaluating its examples asks the same way."""
    with RunStore(run_dir, lock=False, readonly=True) as store:
        config = store.get_config() or {}
    try:
        return protocol_from_config(config)
    except (TypeError, ValueError):  # a config this version cannot read: the defaults
        return Protocol()


async def check_eval_models(
    models: list[str],
    extractor: str | None = None,
    base_url: str | None = None,
    concurrency: int = 16,
) -> tuple[dict[str, Model], Model | None]:
    """Build and check every evaluated model (and the extractor) before anything is written or
    paid; returns the backends by model string, and the extractor's. Raises PreflightError."""
    wanted = [
        Wanted(
            spec,
            "evaluated",
            spec,
            spec,
            lambda spec=spec: load_backend(spec, concurrency, base_url),
        )
        for spec in dict.fromkeys(models)
    ]
    if extractor is not None:
        wanted.append(
            Wanted(
                "\0extractor",
                "extractor",
                extractor,
                extractor,
                lambda: load_backend(extractor, concurrency, base_url),
            )
        )
    built = await preflight(wanted)
    ext = built.pop("\0extractor", None)
    return built, ext
