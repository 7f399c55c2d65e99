"""The default executor: every question in this process's event loop, writing the store directly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdvkit.data.question import Question
from cdvkit.executors.base import Executor, OnQuestionDone, search_all, search_question
from cdvkit.models.budget import Budget

if TYPE_CHECKING:
    from cdvkit.executors.base import RunOutcome
    from cdvkit.models.base import Model
    from cdvkit.search.build import Roles
    from cdvkit.search.config import SearchConfig
    from cdvkit.search.engine import Searcher
    from cdvkit.store import RunStore


class LocalExecutor(Executor):
    name = "local"

    def __init__(self) -> None:
        self.cfg: SearchConfig | None = None
        self.roles: Roles | None = None
        self.searcher: Searcher | None = None

    async def open(
        self, cfg: SearchConfig, store: RunStore, models: dict[str, Model] | None
    ) -> None:
        from cdvkit.search.build import build_roles, build_searcher

        budget = Budget(
            cfg.max_calls,
            cfg.max_cost,
            calls=store.paid_calls("search"),
            cost=store.total_cost("search"),
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
        await search_all(
            todo,
            self.cfg.concurrency,
            lambda q: search_question(searcher, q, store),
            outcome,
            on_question_done,
        )

    async def aclose(self) -> None:
        if self.roles is not None:
            for r in self.roles.all():
                await r.model.aclose()
