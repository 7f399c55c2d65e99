"""The default executor: every job in this process's event loop, writing the store directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cdvkit.executors.base import Executor
from cdvkit.jobs import OnEnd, RunOutcome, run_here

if TYPE_CHECKING:
    from cdvkit.jobs import WorkSpec
    from cdvkit.models.budget import Budget
    from cdvkit.store import RunStore


class LocalExecutor(Executor):
    name = "local"

    async def map(
        self,
        spec: WorkSpec,
        jobs: Sequence[Any],
        store: RunStore | None,
        budget: Budget,
        *,
        concurrency: int,
        on_end: OnEnd | None = None,
    ) -> RunOutcome:
        return await run_here(spec, jobs, store, budget, concurrency=concurrency, on_end=on_end)
