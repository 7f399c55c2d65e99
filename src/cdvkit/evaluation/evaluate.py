"""Evaluate models on original vs. distracted questions: accuracy, drop, significance, transfer.

The entry points: check every model before anything is paid, then evaluate one defense: the
stored answers are reused, the others asked as one job per question on an executor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdvkit.evaluation.defenses import Defense, resolve_defense
from cdvkit.evaluation.items import ExampleSet
from cdvkit.evaluation.results import EvalProgress, ItemScore, Tally, assemble_results, eval_jobs
from cdvkit.evaluation.settings import EvalSettings, eval_key
from cdvkit.evaluation.work import Answer, EvalJob, EvalWork
from cdvkit.jobs import JobEnd, run_here
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.errors import BudgetExceeded, error_named
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.models.registry import load_backend
from cdvkit.protocol import Protocol, protocol_from_config
from cdvkit.store import RunStore
from cdvkit.store.records import EvaluationResult


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
    grader: str | Model | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
    executor: Any | None = None,
) -> EvaluationResult:
    """Evaluate ``models`` on every example set under one defense; returns the result entry.

    ``backends`` maps a model string to a ready backend (tests, the Python API); other strings
    are loaded with ``load_model``. ``executor`` (cdvkit.executors; default: this process) runs
    the questions' answers; this process tallies them and is the only writer of ``store``.
    Raises BudgetExceeded, or the ModelError that stopped every answer (a bad key...).
    """
    if not models:
        raise ValueError("give at least one model to evaluate (--models)")
    models = list(dict.fromkeys(models))
    d = defense if isinstance(defense, Defense) else resolve_defense(defense)
    settings = settings or EvalSettings()
    budget = budget or Budget()
    ext_name = getattr(extractor, "name", extractor)
    grader_name = getattr(grader, "name", grader)
    answers = eval_jobs(sets, models, settings)
    tally = Tally(models, EvalProgress(total=len(answers)), on_progress)

    # One answer per key: the same question asked the same way in two sets (a CDV run and a
    # baseline run of one dataset share their originals) is asked once and counted for both.
    by_key: dict[str, list[Answer]] = {}
    for a in answers:
        _, model, item, v = a
        key = eval_key(model, item.id, v, d, settings, ext_name, grader_name)
        by_key.setdefault(key, []).append(a)
    # Answers already stored cost nothing and need no job; the rest go out per question.
    todo: dict[str, list[Answer]] = {}
    shared: dict[tuple[int, str, str, str], list[Answer]] = {}
    for key, same in by_key.items():
        hit = store.get_eval(key) if store is not None else None
        if hit is not None:
            for si, model, item, v in same:
                sc = ItemScore(hit["accuracy"], hit["mode"], True)
                tally.record(si, model, item.id, v.key, sc)
            continue
        si, model, item, v = same[0]
        todo.setdefault(item.id, []).append(same[0])
        shared[(si, model, item.id, v.key)] = same[1:]

    def scored(end: JobEnd) -> None:
        for si, model, item_id, vkey, sc, error in end.value:
            if error:
                tally.progress.errors.append(error)
            tally.record(si, model, item_id, vkey, sc)
            for osi, omodel, item, v in shared.get((si, model, item_id, vkey), []):
                tally.record(osi, omodel, item.id, v.key, sc)

    work = EvalWork(models, d, settings, backends, extractor, base_url, grader)
    jobs = [EvalJob(k, tuple(a)) for k, a in todo.items()]
    if executor is None:
        outcome = await run_here(
            work, jobs, store, budget, concurrency=settings.concurrency, on_end=scored
        )
    else:
        outcome = await executor.map(
            work, jobs, store, budget, concurrency=settings.concurrency, on_end=scored
        )
    if outcome.stopped:
        raise BudgetExceeded(outcome.stopped)
    if outcome.fatal:
        raise error_named(outcome.fatal_error, outcome.fatal)
    entry = assemble_results(models, d, settings, sets, tally.scores, tally.modes, tally.progress)
    entry["settings"]["extractor"] = ext_name  # it can decide answers: say which one did
    return entry


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
    grader: str | None = None,
) -> tuple[dict[str, Model], Model | None, Model | None]:
    """Build and check every evaluated model (and the extractor and grader) before anything is
    written or paid; returns the backends by model string, the extractor's and the grader's.
    Raises PreflightError."""
    wanted = [
        Wanted(
            spec,
            "evaluated",
            spec,
            spec,
            lambda spec=spec: load_backend(spec, concurrency=concurrency, base_url=base_url),
        )
        for spec in dict.fromkeys(models)
    ]
    for role, spec in (("extractor", extractor), ("grader", grader)):
        if spec is not None:
            wanted.append(
                Wanted(
                    f"\0{role}",
                    role,
                    spec,
                    spec,
                    lambda spec=spec: load_backend(
                        spec, concurrency=concurrency, base_url=base_url
                    ),
                )
            )
    built = await preflight(wanted)
    return built, built.pop("\0extractor", None), built.pop("\0grader", None)
