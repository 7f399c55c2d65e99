"""Scale-out on Ray: jobs partitioned over a pool of actors, the driver the single writer.

Design:

- A pool of ``Worker`` actors (``ray_workers``), each building the work (a search's or an
  evaluation's, from its picklable recipe) once, with its own model backends (a local ``hf/`` or
  ``embed/`` model is loaded once per actor and serves every job sent to it). Each job (one
  question) is one streaming call on an actor.
- The driver ships a job's cached calls with it, and the worker streams every write back as
  it happens (``cdvkit.executors.events``): a paid call is stored by the driver before the search
  goes on, so a killed driver resumes without paying again for anything it received. Workers never
  open the SQLite file, so they can run on machines that do not see it.
- One ``BudgetActor`` (``ray_actors``) holds the run-wide ``--max-calls``/``--max-cost`` ceiling:
  every paid call reserves through it before it is sent, as through the local Budget otherwise.
- One ``LimiterActor`` holds a concurrency limit per API model shared by all workers, on top of
  each worker's own limit, so N workers do not send N times the requests a server can take.

Ray is an optional extra and is imported only when this executor is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cdvkit.executors.base import Executor, ExecutorUnavailableError
from cdvkit.executors.events import apply_event
from cdvkit.executors.ray_actors import BudgetActor, LimiterActor
from cdvkit.executors.ray_workers import Worker
from cdvkit.jobs import JobEnd, OnEnd, RunOutcome, RunStopped, schedule
from cdvkit.models.budget import Budget

if TYPE_CHECKING:
    from cdvkit.jobs import WorkSpec
    from cdvkit.store import RunStore

INSTALL_HINT = "pip install 'cdvkit[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorUnavailableError(
            f"the ray executor needs Ray, which is not installed: {INSTALL_HINT}"
        ) from exc
    return ray


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` runs here), or start a
    local one when None. Returns whether this call started Ray, so the caller shuts it down."""
    ray = import_ray()
    if ray.is_initialized():
        return False  # a caller (a test, a notebook) connected already: use that cluster
    opts: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
    if address is None:
        opts["include_dashboard"] = False
    ray.init(address=address, **opts)
    return True


# --- the driver ----------------------------------------------------------------------------------
class RayExecutor(Executor):
    """Runs jobs on a pool of Ray actors, one streaming call each; this process writes the store."""

    name = "ray"
    distributed = True

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
    ) -> None:
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self._started = False
        self._actors: list[Any] = []
        self._shared: list[Any] = []
        self.budget_actor: Any = None
        self._load: list[int] = []

    # --- pool ---------------------------------------------------------------------------------
    def _pool_size(self, ray: Any) -> int:
        if self.workers is not None:
            if self.workers < 1:
                raise ValueError("--ray-workers must be at least 1")
            return self.workers
        res = ray.cluster_resources()
        n = int(res.get("CPU", 1) // self.cpus_per_worker) if self.cpus_per_worker > 0 else 1
        if self.gpus_per_worker > 0:
            n = min(n, int(res.get("GPU", 0) // self.gpus_per_worker))
        return max(1, n)

    async def _start_pool(self, spec: WorkSpec, budget: Budget) -> None:
        ray = import_ray()
        self._started = connect(self.address) or self._started
        if self.gpus_per_worker > ray.cluster_resources().get("GPU", 0):
            raise ValueError(
                f"each worker asks for {self.gpus_per_worker} GPU(s) but the Ray cluster has "
                f"{ray.cluster_resources().get('GPU', 0):g}"
            )
        self.budget_actor = None
        if budget.max_calls is not None or budget.max_cost is not None:
            # Without a ceiling each worker counts for itself: no round trip per call.
            self.budget_actor = (
                ray.remote(BudgetActor)
                .options(num_cpus=0)
                .remote(budget.max_calls, budget.max_cost, budget.calls, budget.cost)
            )
        limiter = ray.remote(LimiterActor).options(num_cpus=0, max_concurrency=100_000).remote()
        self._shared = [a for a in (self.budget_actor, limiter) if a is not None]
        remote_cls = ray.remote(Worker).options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_concurrency=10_000,  # jobs at once are bounded by the driver
        )
        try:
            self._actors = [
                remote_cls.remote(spec, self.budget_actor, limiter)
                for _ in range(self._pool_size(ray))
            ]
            errors = await asyncio.gather(*(a.ready.remote() for a in self._actors))
        except (ray.exceptions.RayError, TypeError) as exc:
            # E.g. ready-made backends (models=...) that cannot be pickled to the workers.
            raise ExecutorUnavailableError(f"the Ray workers could not start: {exc}") from exc
        problem = next((e for e in errors if e), None)
        if problem:
            raise ValueError(problem)
        self._load = [0] * len(self._actors)

    async def _stream(self, store: RunStore, job: Any) -> JobEnd:
        """Run one job on the least busy actor and store its events as they come."""
        i = min(range(len(self._actors)), key=self._load.__getitem__)
        self._load[i] += 1
        end: JobEnd | None = None
        try:
            # The job travels with the calls stored under its key: a replay pays for none of them.
            gen = (
                self._actors[i]
                .run.options(num_returns="streaming")
                .remote(job, store.calls_for_question(job.key))
            )
            async for ref in gen:
                for ev in await ref:
                    end = apply_event(store, ev) or end
        finally:
            self._load[i] -= 1
        if end is None:
            raise RuntimeError("a Ray worker's stream ended without its job's end")
        return end

    # --- the map --------------------------------------------------------------------------------
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
        outcome = RunOutcome()
        if not jobs:
            return outcome
        if store is None:
            outcome.fatal = "the ray executor records into a run store (store=None given)"
            return outcome
        try:
            try:
                await self._start_pool(spec, budget)
            except (ValueError, ExecutorUnavailableError) as exc:
                # Workers that cannot build their backends stop the map before anything is paid.
                outcome.fatal, outcome.fatal_error = str(exc), type(exc).__name__
                return outcome
            ray = import_ray()

            async def one(job: Any) -> JobEnd:
                try:
                    return await self._stream(store, job)
                except ray.exceptions.RayError as exc:
                    # The job's question stays "running": a rerun replays it from stored calls.
                    raise RunStopped(f"Ray worker lost on question {job.key}: {exc}") from exc

            await schedule(jobs, concurrency, one, outcome, on_end)
        finally:
            if self.budget_actor is not None:
                with contextlib.suppress(Exception):
                    budget.calls, budget.cost = await self.budget_actor.state.remote()
            # Ray stays connected for the next map; it shuts down with aclose().
            await self._close_pool()
        return outcome

    # --- shutdown -------------------------------------------------------------------------------
    async def aclose(self) -> None:
        await self._close_pool()
        if self._started:
            import_ray().shutdown()
            self._started = False

    async def _close_pool(self) -> None:
        if not self._actors and not self._shared:
            return
        ray = import_ray()
        # Let backends close their clients; a worker that does not answer is killed anyway.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(a.close.remote() for a in self._actors), return_exceptions=True),
                timeout=30,
            )
        for a in [*self._actors, *self._shared]:
            ray.kill(a)
        self._actors, self._shared = [], []
