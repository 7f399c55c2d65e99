"""State every Ray worker shares: the run-wide budget and the per-model concurrency limits.

Each lives in one actor, so N workers neither overspend ``--max-calls``/``--max-cost`` nor send N
times the requests a server can take; each worker sees it through an object that plugs in where
the local Budget or limiter would.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from cdvkit.models.budget import Budget
from cdvkit.models.errors import BudgetExceeded
from cdvkit.models.registry import PROVIDERS

if TYPE_CHECKING:
    from cdvkit.models.base import Model


class BudgetActor:
    """The run-wide budget; a sync actor, so one worker's reserve and settle run in order."""

    def __init__(self, max_calls: int | None, max_cost: float | None, calls: int, cost: float):
        self.budget = Budget(max_calls, max_cost, calls=calls, cost=cost)
        self.tickets: set[str] = set()

    def reserve(self, ticket: str) -> str | None:
        try:
            self.budget.reserve()
        except BudgetExceeded as exc:
            return str(exc)  # a plain value: exception types do not survive Ray's wrapping
        self.tickets.add(ticket)
        return None

    def settle(self, ticket: str, cost: float, sent: bool) -> None:
        # A ticket the budget refused, or one settled already, changes nothing.
        if ticket in self.tickets:
            self.tickets.remove(ticket)
            self.budget.settle(cost, sent=sent)

    def state(self) -> tuple[int, float]:
        return self.budget.calls, self.budget.cost


class RemoteBudget(Budget):
    """A worker's view of the BudgetActor, used by RoleClient like a local Budget."""

    def __init__(self, actor: Any) -> None:
        super().__init__()
        self.actor = actor

    async def acquire(self) -> Any:
        ticket = uuid.uuid4().hex
        try:
            refused = await self.actor.reserve.remote(ticket)
        except asyncio.CancelledError:
            # The reservation may have been made: give it back (a refused ticket is a no-op).
            self.actor.settle.remote(ticket, 0.0, False)
            raise
        if refused:
            raise BudgetExceeded(refused)
        return ticket

    def release(self, token: Any, cost: float, *, sent: bool = True) -> None:
        self.actor.settle.remote(token, cost, sent)  # fire and forget: ordered after reserve

    def reserve(self) -> None:  # pragma: no cover - RoleClient only uses acquire/release
        raise NotImplementedError("a remote budget reserves with `await acquire()`")


def budget_for(actor: Any | None) -> Budget:
    return Budget() if actor is None else RemoteBudget(actor)


class LimiterActor:
    """One semaphore per API model, shared by every worker (an async actor: waiters queue here)."""

    def __init__(self) -> None:
        self.sems: dict[str, asyncio.Semaphore] = {}
        self.held: set[str] = set()
        self.abandoned: set[str] = set()

    async def acquire(self, name: str, limit: int, ticket: str) -> None:
        sem = self.sems.setdefault(name, asyncio.Semaphore(max(1, limit)))
        await sem.acquire()
        if ticket in self.abandoned:
            # Its caller gave up while waiting (and calls to an async actor may run out of order).
            self.abandoned.discard(ticket)
            sem.release()
            return
        self.held.add(ticket)

    async def release(self, name: str, ticket: str) -> None:
        if ticket in self.held:
            self.held.discard(ticket)
            self.sems[name].release()
        else:
            self.abandoned.add(ticket)


class RemoteLimiter:
    """A worker's view of the LimiterActor; plugs into ``Model.limiter``."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self, name: str, limit: int) -> Any:
        ticket = uuid.uuid4().hex
        try:
            await self.actor.acquire.remote(name, limit, ticket)
        except asyncio.CancelledError:
            self.actor.release.remote(name, ticket)
            raise
        return ticket

    def release(self, name: str, token: Any) -> None:
        self.actor.release.remote(name, token)


def share_limits(models: list[Model], limiter: RemoteLimiter) -> None:
    """Put every API model behind the limit all workers share. A backend that computes on the
    worker itself (its provider is registered ``local``) has its own copy per actor: no limit."""
    for m in models:
        if not (m.provider in PROVIDERS and PROVIDERS.get(m.provider).local):
            m.limiter = limiter
