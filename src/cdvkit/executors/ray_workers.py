"""The Ray actor that does the work: builds it once from its recipe, then runs every job sent.

A worker never opens the run store: its work writes to an ``EventRecorder`` that streams every
write back to the driver (``cdvkit.executors.events``), so it can run on a machine that does not
see the run directory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from cdvkit.executors.events import END, Event, EventRecorder
from cdvkit.executors.ray_actors import RemoteLimiter, budget_for, share_limits
from cdvkit.jobs import JobEnd
from cdvkit.models.errors import ModelError

if TYPE_CHECKING:
    from cdvkit.jobs import Work, WorkSpec


async def _stream(queue: asyncio.Queue[Event], work: asyncio.Task[Any]) -> Any:
    """Yield the events a job puts on ``queue`` in batches, up to its END event."""
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
            work.cancel()  # the driver went away: stop paying for work nobody records


class Worker:
    """Runs the jobs sent to it with one built work (its backends built once)."""

    def __init__(self, spec: WorkSpec, budget: Any, limiter: Any) -> None:
        self.error: str | None = None
        self.recorder = EventRecorder()
        self.work: Work | None = None
        try:
            self.work = spec.build(self.recorder, self.recorder.track(budget_for(budget)))
            share_limits(self.work.backends(), RemoteLimiter(limiter))
        except (ValueError, ModelError) as exc:
            self.error = str(exc)  # reported by ready(): the driver stops before paying

    async def ready(self) -> str | None:
        return self.error

    async def run(self, job: Any, cached: dict[str, dict[str, Any]]) -> Any:
        assert self.work is not None, "ready() reported why the work could not be built"
        work = self.work
        queue = self.recorder.open(job.key, cached)

        async def go() -> None:
            try:
                end = await work.run(job)
            except Exception as exc:  # a bug, not a model error: the run stops, resumably
                end = JobEnd(job.key, "fatal", "running", f"worker error: {exc!r}")
            await self.recorder.end(end)

        task = asyncio.create_task(go())
        try:
            async for batch in _stream(queue, task):
                yield batch
        finally:
            self.recorder.close(job.key)

    async def close(self) -> None:
        if self.work is not None:
            await self.work.aclose()
