"""Search strategies: which node to expand next. Each registers by name (``--strategy NAME``)."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

from cdvkit.registry import Registry, factory, option
from cdvkit.search.node import Node


def log_priority(rate: float, depth: int, k: float = 2.0, n: float = 1.0) -> float:
    """log of the paper's priority exp(K / rate) * depth ** -N.

    Kept in log space because exp(K / rate) overflows a float for small rates (K=2, rate=0.001).
    Lower target accuracy and shallower depth come first. rate == 0 is a success and never queued.
    """
    rate = max(rate, 1e-9)
    return k / rate - n * math.log(max(depth, 1))


class Strategy(Protocol):
    name: str

    def push(self, node: Node) -> None: ...

    def pop(self) -> Node | None: ...

    def expanded(self, node: Node, children: list[Node]) -> None: ...


class BestFirst:
    """The paper's best-first search over every open node of the tree."""

    name = "best-first"

    def __init__(self, k: float = 2.0, n: float = 1.0) -> None:
        self.k, self.n = k, n
        self._heap: list[tuple[float, int, Node]] = []
        self._tie = itertools.count()  # equal priorities pop in insertion order: deterministic

    def push(self, node: Node) -> None:
        prio = log_priority(
            node.score if node.score is not None else 1.0, node.depth, self.k, self.n
        )
        heapq.heappush(self._heap, (-prio, next(self._tie), node))

    def pop(self) -> Node | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    def expanded(self, node: Node, children: list[Node]) -> None:
        pass


class Greedy(BestFirst):
    """Follow the best child of the last expansion only: no backtracking (an ablation baseline)."""

    name = "greedy"

    def expanded(self, node: Node, children: list[Node]) -> None:
        # Children were pushed already; forget everything older so only they compete.
        keep = {id(c) for c in children}
        self._heap = [e for e in self._heap if id(e[2]) in keep]
        heapq.heapify(self._heap)


class RandomShot:
    """One random distraction per wrong option of the original, no tree (an ablation baseline)."""

    name = "random"

    def __init__(self) -> None:
        self._root: Node | None = None
        self._done = False

    def push(self, node: Node) -> None:
        if self._root is None and not self._done:
            self._root = node

    def pop(self) -> Node | None:
        node, self._root = self._root, None
        self._done = True
        return node

    def expanded(self, node: Node, children: list[Node]) -> None:
        pass


StrategyFactory = Callable[..., Strategy]
STRATEGIES: Registry[StrategyFactory] = Registry(
    "strategy",
    "cdvkit.strategies",
    accept=factory(
        "a strategy factory (k=, n=, **options) -> strategy",
        k=2.0,
        n=1.0,
        methods=("push", "pop", "expanded"),
    ),
)


# The best-first priority's exponents; a run sets them with --k and --n (search-level settings:
# every strategy that orders by the priority reads them).
PRIORITY_OPTIONS = {
    "k": option(2.0, "Priority exp(K / score) * depth**-N: K (a run sets it with --k)", min=0),
    "n": option(1.0, "Priority exp(K / score) * depth**-N: N (a run sets it with --n)", min=0),
}


@STRATEGIES.register(
    "best-first",
    help="the paper's: highest exp(K/score) * depth**-N first",
    options=PRIORITY_OPTIONS,
)
def _best_first(*, k: float = 2.0, n: float = 1.0, **_: Any) -> Strategy:
    return BestFirst(k, n)


@STRATEGIES.register(
    "greedy",
    help="follow the best child of the last expansion (no backtracking)",
    options=PRIORITY_OPTIONS,
)
def _greedy(*, k: float = 2.0, n: float = 1.0, **_: Any) -> Strategy:
    return Greedy(k, n)


@STRATEGIES.register(
    "random", help="one random distraction per wrong option, no tree (a baseline)", options={}
)
def _random(**_: Any) -> Strategy:
    return RandomShot()


def make_strategy(name: str, *, k: float = 2.0, n: float = 1.0) -> Strategy:
    """A fresh strategy (one per question) by its registered name: given the priority's K and N
    where it declares them (or declares nothing, as a plugin written before declarations)."""
    entry = STRATEGIES.entry(name)
    knobs = {"k": k, "n": n}
    options = knobs if entry.options is None else STRATEGIES.settings(name, {}, over=knobs)
    return entry.value(**options)
