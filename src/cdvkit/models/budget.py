"""Run-level ceilings on paid calls and cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdvkit.models.errors import BudgetExceeded


@dataclass
class Budget:
    """Hard ceiling on paid model requests and on money.

    A call reserves its slot just before it is sent (once it holds its backend's concurrency
    slot), so the call ceiling is never overshot however many calls are in flight. Cost is only
    known after a call returns, so the cost ceiling can be overshot by at most the cost of the
    calls in flight when it was reached: never more than the backends' concurrency limits.
    """

    max_calls: int | None = None
    max_cost: float | None = None
    calls: int = 0
    cost: float = 0.0
    in_flight: int = 0

    def reserve(self) -> None:
        if self.max_calls is not None and self.calls + self.in_flight >= self.max_calls:
            raise BudgetExceeded(f"call budget reached ({self.max_calls} paid calls)")
        if self.max_cost is not None and self.cost >= self.max_cost:
            raise BudgetExceeded(f"cost budget reached (${self.cost:.4f} of ${self.max_cost})")
        self.in_flight += 1

    def settle(self, cost: float, *, sent: bool = True) -> None:
        self.in_flight -= 1
        if sent:
            self.calls += 1
            self.cost += cost

    # The async pair is what RoleClient uses: a budget shared by several processes (a Ray actor,
    # see cdvkit.executors.ray_actors) has to await its reservation and tie its settlement to it.
    async def acquire(self) -> Any:
        """Reserve one call; the returned token goes back to ``release``."""
        self.reserve()
        return None

    def release(self, token: Any, cost: float, *, sent: bool = True) -> None:
        self.settle(cost, sent=sent)

    @property
    def exhausted(self) -> bool:
        return (self.max_calls is not None and self.calls >= self.max_calls) or (
            self.max_cost is not None and self.cost >= self.max_cost
        )
