"""The Ray actors that do the work: one searches questions, one scores evaluation answers.

A worker builds its backends once and serves every question sent to it; it never opens the run
store, streaming every write back to the driver instead (``cdvkit.executors.events``), so it can
run on a machine that does not see the run directory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from cdvkit.data.question import Question
from cdvkit.executors.base import QuestionEnd, search_question
from cdvkit.executors.events import END, RESULT, Event, EventRecorder
from cdvkit.executors.ray_actors import RemoteLimiter, budget_for, share_limits
from cdvkit.models.client import current_question
from cdvkit.models.errors import BudgetExceeded, ModelError

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.search.config import SearchConfig


async def _stream(queue: asyncio.Queue[Event], work: asyncio.Task[Any]) -> Any:
    """Yield the events a question's work puts on ``queue`` in batches, up to its END event."""
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            yield batch
            if batch[-1][0] == END:
                return
    finally:
        if not work.done():
            work.cancel()  # the driver went away: stop paying for a search nobody records


# --- the search worker ---------------------------------------------------------------------------
class SearchWorker:
    """Searches the questions sent to it with one set of backends, built once."""

    def __init__(
        self,
        cfg: SearchConfig,
        models: dict[str, Model] | None,
        budget: Any,
        limiter: Any,
    ) -> None:
        from cdvkit.search.build import build_roles, build_searcher

        self.error: str | None = None
        self.recorder = EventRecorder()
        self.roles: Any = None
        try:
            budget = self.recorder.track(budget_for(budget))
            self.roles = build_roles(cfg, self.recorder, budget, models)
            share_limits([r.model for r in self.roles.all()], RemoteLimiter(limiter))
            self.searcher = build_searcher(cfg, self.roles, self.recorder)
        except (ValueError, ModelError) as exc:
            self.error = str(exc)  # reported by ready(): the driver stops before paying

    async def ready(self) -> str | None:
        return self.error

    async def search(self, q: Question, cached: dict[str, dict[str, Any]]) -> Any:
        queue = self.recorder.open(q.id, cached)

        async def work() -> None:
            try:
                end = await search_question(self.searcher, q, self.recorder)
            except Exception as exc:  # a bug, not a model error: the run stops, resumably
                end = QuestionEnd(q.id, "fatal", "running", f"worker error: {exc!r}")
            await self.recorder.end(end)

        task = asyncio.create_task(work())
        try:
            async for batch in _stream(queue, task):
                yield batch
        finally:
            self.recorder.close(q.id)

    async def close(self) -> None:
        if self.roles is not None:
            for r in self.roles.all():
                await r.model.aclose()


# --- the evaluation worker -----------------------------------------------------------------------
class EvalWorker:
    """Scores (model, item, variant) jobs with one Evaluator (its backends built once)."""

    def __init__(self, models: list[str], kwargs: dict[str, Any], budget: Any, limiter: Any):
        from cdvkit.evaluation.evaluator import Evaluator

        self.error: str | None = None
        self.recorder = EventRecorder()
        self.ev: Any = None
        try:
            budget = self.recorder.track(budget_for(budget))
            self.ev = Evaluator(models, store=self.recorder, budget=budget, **kwargs)
            clients = [
                *self.ev.clients.values(),
                *([self.ev.extractor] if self.ev.extractor else []),
            ]
            share_limits([c.model for c in clients], RemoteLimiter(limiter))
            self.sem = asyncio.Semaphore(max(1, self.ev.settings.concurrency))
        except (ValueError, ModelError) as exc:
            self.error = str(exc)

    async def ready(self) -> str | None:
        return self.error

    async def score(
        self,
        item_id: str,
        jobs: list[tuple[int, str, Any, Any]],
        cached: dict[str, dict[str, Any]],
        evals: dict[str, dict[str, Any]],
    ) -> Any:
        queue = self.recorder.open(item_id, cached, evals)

        async def one(si: int, model: str, item: Any, v: Any) -> None:
            current_question.set(item_id)
            async with self.sem:
                try:
                    sc = await self.ev.score(model, item, v)
                    res: tuple[Any, ...] = ("ok", sc.accuracy, sc.mode, sc.cached)
                except BudgetExceeded as exc:
                    res = ("budget", str(exc))
                except ModelError as exc:
                    res = (type(exc).__name__, str(exc))
            self.recorder.emit(item_id, (RESULT, item_id, si, model, v.key, res))

        async def work() -> None:
            current_question.set(item_id)
            # Every job settles, as locally: answers paid for reach the store in any case.
            done = await asyncio.gather(*(one(*j) for j in jobs), return_exceptions=True)
            bug = next((r for r in done if isinstance(r, BaseException)), None)
            end = QuestionEnd(item_id, "ok", "done")
            if bug is not None:  # not a model error (those are results): the evaluation stops
                end = QuestionEnd(item_id, "fatal", "done", f"worker error: {bug!r}")
            await self.recorder.end(end)

        task = asyncio.create_task(work())
        try:
            async for batch in _stream(queue, task):
                yield batch
        finally:
            self.recorder.close(item_id)

    async def close(self) -> None:
        if self.ev is not None:
            await self.ev.aclose()
