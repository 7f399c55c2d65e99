"""The default executor: every question in this process's event loop, writing the store directly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from cdvkit.data.question import Question
from cdvkit.executors.base import Executor, OnQuestionDone, search_question
from cdvkit.models.budget import Budget

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.search.config import GenerateConfig
    from cdvkit.search.engine import Searcher
    from cdvkit.search.runner import Roles, RunOutcome
    from cdvkit.store import RunStore


class _Fatal(Exception):
    pass


class LocalExecutor(Executor):
    name = "local"

    def __init__(self) -> None:
        self.cfg: GenerateConfig | None = None
        self.roles: Roles | None = None
        self.searcher: Searcher | None = None

    async def open(
        self, cfg: GenerateConfig, store: RunStore, models: dict[str, Model] | None
    ) -> None:
        from cdvkit.search.runner import build_roles, build_searcher

        budget = Budget(
            cfg.max_calls, cfg.max_cost, calls=store.paid_calls(), cost=store.total_cost()
        )
        self.cfg = cfg
        self.roles = build_roles(cfg, store, budget, models)
        self.searcher = build_searcher(cfg, self.roles, store)

    async def run(
        self,
        todo: list[Question],
        store: RunStore,
        outcome: RunOutcome,
        on_question_done: OnQuestionDone | None = None,
    ) -> None:
        assert self.cfg is not None and self.searcher is not None, "open() first"
        searcher = self.searcher
        stop = asyncio.Event()
        sem = asyncio.Semaphore(max(self.cfg.concurrency, 1))

        async def one(q: Question) -> None:
            async with sem:
                if stop.is_set():
                    return
                end = await search_question(searcher, q, store)
            if end.kind == "budget":
                outcome.stopped = end.message
                stop.set()
                return
            if end.kind == "fatal":
                raise _Fatal(end.message)
            if end.kind == "failed":
                outcome.errors.append(f"question {q.id}: {end.message}")
            if on_question_done:
                on_question_done(q.id, end.status)

        tasks = [asyncio.create_task(one(q)) for q in todo]
        try:
            await asyncio.gather(*tasks)
        except _Fatal as exc:
            # The other questions stop where they are; a rerun resumes them from the cache.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            outcome.fatal = str(exc)

    async def aclose(self) -> None:
        if self.roles is not None:
            for r in self.roles.all():
                await r.model.aclose()
