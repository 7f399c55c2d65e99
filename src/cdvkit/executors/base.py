"""The executor interface: run a list of jobs somewhere, the run store staying in this process.

An executor knows nothing of searching or evaluating: it receives jobs and the recipe of the work
that runs them (``cdvkit.jobs``), builds that work where the jobs run, and follows the one schedule
every executor shares (``cdvkit.jobs.schedule``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cdvkit.jobs import OnEnd, RunOutcome

if TYPE_CHECKING:
    from cdvkit.jobs import WorkSpec
    from cdvkit.models.budget import Budget
    from cdvkit.store import RunStore


class ExecutorUnavailableError(RuntimeError):
    """The executor asked for cannot run here (its optional dependency is missing)."""


class Executor(ABC):
    """Runs jobs somewhere; the calling process always owns the run store."""

    name: str = ""
    # True: the work runs in other processes, so backends built here cannot be lent to it.
    distributed: bool = False

    @abstractmethod
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
        """Run every job with work built from ``spec``, recording its writes in ``store`` as
        they happen; ``budget`` is the ceiling over all of them. A backend that cannot be built
        ends the map at once (``fatal``), before anything is paid."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release whatever outlives one map (a cluster connection)."""
