"""Run a whole search: questions in parallel, every step in the run store, resumable.

The one place that ties a run's settings, its store and an executor together; the CLI and the
Python API call it.
"""

from __future__ import annotations

from collections.abc import Callable

from cdvkit.data.question import Question
from cdvkit.executors import LocalExecutor
from cdvkit.executors.base import Executor
from cdvkit.jobs import JobEnd, RunOutcome
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.search.config import SearchConfig
from cdvkit.search.work import SearchWork
from cdvkit.store import RunStore
from cdvkit.store.status import UNFINISHED


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
        return [d["question"] for d in store.questions()]
    questions = load()
    store.add_questions(questions)
    store.set_config(cfg.to_dict())
    return questions


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
        if cfg.prefilter:
            try:
                from cdvkit.prefilter import skip_in_store

                skip_in_store(store, cfg.prefilter, cfg.prefilter_threshold)
            except (ImportError, OSError, ValueError) as exc:
                return RunOutcome(fatal=f"prefilter: {exc}")
        todo = [d["question"] for d in store.questions() if d["status"] in UNFINISHED]
        # Calls paid by earlier sessions of this run count against its ceiling.
        budget = Budget(
            cfg.max_calls,
            cfg.max_cost,
            calls=store.paid_calls("search"),
            cost=store.total_cost("search"),
        )

        def ended(end: JobEnd) -> None:
            if on_question_done:
                on_question_done(end.key, end.status)

        return await executor.map(
            SearchWork(cfg, models), todo, store, budget, concurrency=cfg.concurrency, on_end=ended
        )
    finally:
        await executor.aclose()
