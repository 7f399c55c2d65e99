"""Run a whole search: questions in parallel, every step in the run store, resumable.

The one place that ties a run's settings, its store and an executor together; the CLI and the
Python API call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdvkit.data.question import Question
from cdvkit.executors import LocalExecutor
from cdvkit.executors.base import Executor
from cdvkit.jobs import JobEnd, OnEnd, RunOutcome, WorkSpec
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.search.config import SearchConfig
from cdvkit.search.work import SearchWork
from cdvkit.store import RunStore
from cdvkit.store.status import UNFINISHED

AUTO = "auto"  # --prefilter auto: learn which questions to skip from this run's own outcomes


class ConfigMismatchError(ValueError):
    pass


def prepare_store(
    store: RunStore, cfg: SearchConfig, load: Callable[[], list[Question]]
) -> list[Question]:
    """Record config and questions on a new run; on an existing one, check it is the same run."""
    stored = store.get_config()
    if stored is not None:
        diff = cfg.differences(stored)
        if diff:
            detail = ", ".join(f"{k}: stored {stored[k]!r}, now {getattr(cfg, k)!r}" for k in diff)
            raise ConfigMismatchError(
                f"{store.run_dir} holds a run with other settings ({detail}); "
                "use a new --run-dir, or the same settings to resume"
            )
        questions = [d["question"] for d in store.questions()]
        cfg.as_recorded_before(stored, any(q.free_form for q in questions))
        return questions
    questions = load()
    store.add_questions(questions)
    store.set_config(cfg.to_dict())
    return questions


def settle_skips(cfg: SearchConfig, store: RunStore) -> str | None:
    """Decide, before any call is paid, what this start of the run leaves out: with
    ``--include-skipped`` nothing (what a prefilter skipped is pending again); with a saved
    prefilter (``--prefilter MODEL_FILE``) the pending questions it rejects. Returns the problem
    in one line when the model cannot be used, else None. The prefilter runs locally and stores
    each P, so settling twice (the forecast, then the run) costs nothing more."""
    if cfg.include_skipped:
        store.reopen_skipped()
        return None
    if not cfg.prefilter or cfg.prefilter == AUTO:
        return None
    try:
        from cdvkit.prefilter import skip_in_store

        skip_in_store(store, cfg.prefilter, cfg.prefilter_threshold)
    except (ImportError, OSError, ValueError) as exc:
        return f"prefilter: {exc}"
    return None


async def run_search(
    cfg: SearchConfig,
    store: RunStore,
    *,
    models: dict[str, Model] | None = None,
    on_question_done: Callable[[str, str], None] | None = None,
    executor: Executor | None = None,
) -> RunOutcome:
    """Search every unfinished question of ``store``; ``executor`` decides where (default: here).

    Whatever the executor, this process is the only writer of ``store``.
    """
    executor = executor or LocalExecutor()
    try:
        # What a prefilter skipped and --include-skipped reopens is searched now; its paid
        # calls come from the cache.
        problem = settle_skips(cfg, store)
        if problem is not None:
            return RunOutcome(fatal=problem)
        # Calls paid by earlier sessions of this run count against its ceiling.
        budget = Budget(
            cfg.max_calls,
            cfg.max_cost,
            calls=store.paid_calls("search"),
            cost=store.total_cost("search"),
        )

        async def run_map(spec: WorkSpec, jobs: Sequence[Any], on_end: OnEnd | None) -> RunOutcome:
            return await executor.map(
                spec, jobs, store, budget, concurrency=cfg.concurrency, on_end=on_end
            )

        if cfg.prefilter == AUTO and not cfg.include_skipped:
            try:
                import sklearn  # noqa: F401 - needed once the warm-up is over: checked first

                from cdvkit.prefilter.auto import AutoPrefilter
            except ImportError as exc:
                return RunOutcome(
                    fatal=f"prefilter: --prefilter auto needs {exc.name or exc}: "
                    "pip install 'cdvkit[prefilter]'"
                )
            auto = AutoPrefilter(
                cfg, store, run_map, models=models, on_question_done=on_question_done
            )
            return await auto.run()

        def ended(end: JobEnd) -> None:
            if on_question_done:
                on_question_done(end.key, end.status)

        todo = [d["question"] for d in store.questions() if d["status"] in UNFINISHED]
        return await run_map(SearchWork(cfg, models), todo, ended)
    finally:
        await executor.aclose()
