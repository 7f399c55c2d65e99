"""What an executor runs: jobs, the work that runs them, and the one schedule they all follow.

A search and an evaluation are both a list of jobs (a question to search; one question's answers
to score) and a picklable recipe (``WorkSpec``) that builds, once per process, the ``Work`` that
runs them: its model backends, writing to a recorder (the run store here, an event stream on a Ray
worker). An executor only decides where ``Work.run`` happens; what a job does, and what its end
means, belongs to the search and evaluation packages that define it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.models.budget import Budget


class Job(Protocol):
    """One unit of work; ``key`` is the question it serves (its calls are cached under it)."""

    @property
    def key(self) -> str: ...


@dataclass(frozen=True)
class JobEnd:
    """How one job ended, in plain values so it crosses process boundaries.

    ``kind``: ``ok``; ``failed`` (a call failed for good, the other jobs go on); ``budget`` (the
    run's ceiling is reached: no new job starts); ``fatal`` (no other job would escape it: the
    run stops). ``error`` names the exception class of a fatal end, so a caller can raise it again.
    """

    key: str
    kind: str
    status: str = ""  # the question's stored status, for a search
    message: str | None = None
    value: Any = None  # what the job hands back to the caller (an evaluation's scores)
    error: str | None = None


class Work(Protocol):
    """Runs jobs of one kind with backends built once; writes go to the recorder it was built on."""

    async def run(self, job: Any) -> JobEnd: ...

    def backends(self) -> list[Model]: ...

    async def aclose(self) -> None: ...


class WorkSpec(Protocol):
    """A picklable recipe for ``Work``: an executor builds it where the jobs run.

    ``build`` raises ValueError or ModelError when a backend cannot be made: nothing is paid then.
    """

    def build(self, recorder: Any, budget: Budget) -> Work: ...


@dataclass
class RunOutcome:
    """How a list of jobs ended as a whole."""

    stopped: str | None = None  # why no new job started (the budget), if so
    fatal: str | None = None  # why the jobs stopped where they were, if so
    fatal_error: str | None = None  # the exception class behind ``fatal``, when known
    errors: list[str] = field(default_factory=list)  # jobs that failed while the others went on


class RunStopped(Exception):
    """Raised by a job's runner when everything must stop (a bad key, a lost worker)."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


OnEnd = Callable[[JobEnd], None]


async def schedule(
    jobs: Sequence[Any],
    concurrency: int,
    run_one: Callable[[Any], Awaitable[JobEnd]],
    outcome: RunOutcome,
    on_end: OnEnd | None = None,
) -> None:
    """Run ``jobs``, ``concurrency`` at a time, wherever ``run_one`` runs them.

    Every executor schedules the same way: an exhausted budget lets the jobs in flight end and
    starts no new one; a fatal end stops them all where they are (a rerun resumes them from the
    stored calls); a failed job is counted and the others go on. ``on_end`` hears every job that
    ended ``ok`` or ``failed``.
    """
    stop = asyncio.Event()
    sem = asyncio.Semaphore(max(concurrency, 1))

    async def one(job: Any) -> None:
        async with sem:
            if stop.is_set():
                return
            end = await run_one(job)
        if end.kind == "budget":
            outcome.stopped = end.message
            stop.set()
            return
        if end.kind == "fatal":
            raise RunStopped(end.message or "fatal error", end.error)
        if end.kind == "failed":
            outcome.errors.append(f"question {end.key}: {end.message}")
        if on_end:
            on_end(end)

    tasks = [asyncio.create_task(one(job)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except RunStopped as exc:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        outcome.fatal, outcome.fatal_error = str(exc), exc.error
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def run_here(
    spec: WorkSpec,
    jobs: Sequence[Any],
    recorder: Any,
    budget: Budget,
    *,
    concurrency: int,
    on_end: OnEnd | None = None,
) -> RunOutcome:
    """Run ``jobs`` in this process's event loop, writing straight to ``recorder``."""
    from cdvkit.models.errors import ModelError

    outcome = RunOutcome()
    if not jobs:
        return outcome
    try:
        work = spec.build(recorder, budget)
    except (ValueError, ModelError) as exc:
        # A backend that cannot be built stops the jobs before anything is paid.
        outcome.fatal, outcome.fatal_error = str(exc), type(exc).__name__
        return outcome
    try:
        await schedule(jobs, concurrency, work.run, outcome, on_end)
    finally:
        await work.aclose()
    return outcome
