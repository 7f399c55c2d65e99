"""Scale-out on Ray: questions partitioned over a pool of actors, the driver the single writer.

Design:

- A pool of ``SearchWorker`` actors (``ray_workers``), each building its own model backends from
  the run's config once (a local ``hf/`` or ``embed/`` model is loaded once per actor and serves
  every question sent to it). Each question is one streaming call on an actor.
- The driver ships a question's cached calls with it, and the worker streams every write back as
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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cdvkit.data.question import Question
from cdvkit.executors.base import (
    Executor,
    ExecutorUnavailableError,
    OnQuestionDone,
    QuestionEnd,
    RunOutcome,
    RunStopped,
    search_all,
)
from cdvkit.executors.events import RESULT, Event, apply_event
from cdvkit.executors.ray_actors import BudgetActor, LimiterActor
from cdvkit.executors.ray_workers import EvalWorker, SearchWorker
from cdvkit.models.budget import Budget
from cdvkit.models.errors import (
    AuthenticationError,
    BackendUnavailableError,
    BudgetExceeded,
    UnsupportedError,
)

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.search.config import SearchConfig
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
    """Runs a search (or an evaluation) on a pool of Ray actors; this process writes the store."""

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

    async def _start_pool(self, cls: type, budget: Budget, *args: Any) -> None:
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
        remote_cls = ray.remote(cls).options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_concurrency=10_000,  # questions at once are bounded by the driver
        )
        try:
            self._actors = [
                remote_cls.remote(*args, self.budget_actor, limiter)
                for _ in range(self._pool_size(ray))
            ]
            errors = await asyncio.gather(*(a.ready.remote() for a in self._actors))
        except (ray.exceptions.RayError, TypeError) as exc:
            # E.g. ready-made backends (models=...) that cannot be pickled to the workers.
            raise ExecutorUnavailableError(f"the Ray workers could not start: {exc}") from exc
        problem = next((e for e in errors if e), None)
        if problem:
            raise ValueError(problem)

    async def _stream(
        self, store: RunStore, actor_call: Callable[[Any], Any], on_event: Callable[[Event], None]
    ) -> QuestionEnd:
        """Run one streaming call on the least busy actor and store its events as they come."""
        i = min(range(len(self._actors)), key=self._load.__getitem__)
        self._load[i] += 1
        end: QuestionEnd | None = None
        try:
            gen = actor_call(self._actors[i])
            async for ref in gen:
                for ev in await ref:
                    end = apply_event(store, ev) or end
                    on_event(ev)
        finally:
            self._load[i] -= 1
        if end is None:
            raise RuntimeError("a Ray worker's stream ended without its result")
        return end

    # --- search ---------------------------------------------------------------------------------
    async def open(
        self, cfg: SearchConfig, store: RunStore, models: dict[str, Model] | None
    ) -> None:
        self.cfg = cfg
        budget = Budget(
            cfg.max_calls,
            cfg.max_cost,
            calls=store.paid_calls("search"),
            cost=store.total_cost("search"),
        )
        await self._start_pool(SearchWorker, budget, cfg, models)
        self._load = [0] * len(self._actors)

    async def run(
        self,
        todo: list[Question],
        store: RunStore,
        outcome: RunOutcome,
        on_question_done: OnQuestionDone | None = None,
    ) -> None:
        ray = import_ray()

        async def one(q: Question) -> QuestionEnd:
            cached = store.calls_for_question(q.id)
            try:
                return await self._stream(
                    store,
                    lambda a: a.search.options(num_returns="streaming").remote(q, cached),
                    lambda ev: None,
                )
            except ray.exceptions.RayError as exc:
                # The question stays "running": a rerun replays it from the stored calls.
                raise RunStopped(f"Ray worker lost on question {q.id}: {exc}") from exc

        await search_all(todo, self.cfg.concurrency, one, outcome, on_question_done)

    # --- evaluation -----------------------------------------------------------------------------
    async def evaluate(self, sets: list[Any], models: list[str], **kwargs: Any) -> dict[str, Any]:
        """`cdv evaluate` on the pool: one streaming call per question id, the driver storing
        every answer and paid call as it arrives; statistics are computed here as locally."""
        from cdvkit.evaluation.defenses import resolve_defense
        from cdvkit.evaluation.results import (
            EvalProgress,
            ItemScore,
            Tally,
            assemble_results,
            eval_jobs,
        )
        from cdvkit.evaluation.settings import EvalSettings, eval_key

        store: RunStore | None = kwargs.pop("store")
        if store is None:
            raise ValueError("the ray executor evaluates into a run store (store=None given)")
        on_progress = kwargs.pop("on_progress", None)
        budget: Budget = kwargs.pop("budget", None) or Budget()
        defense = kwargs["defense"]
        kwargs["defense"] = defense = (
            defense if not isinstance(defense, str) else resolve_defense(defense)
        )
        settings: EvalSettings = kwargs.setdefault("settings", None) or EvalSettings()
        kwargs["settings"] = settings
        models = list(dict.fromkeys(models))
        extractor = kwargs.get("extractor")
        ext_name = getattr(extractor, "name", extractor)

        jobs = eval_jobs(sets, models, settings.all_examples)
        tally = Tally(models, EvalProgress(total=len(jobs)), on_progress)
        record, progress = tally.record, tally.progress
        failures: list[tuple[str, str]] = []

        # Answers already stored cost nothing and need no worker; the rest go out per question.
        remote: dict[str, list[tuple[int, str, Any, Any]]] = {}
        for si, model, item, v in jobs:
            hit = store.get_eval(eval_key(model, item.id, v, defense, settings, ext_name))
            if hit is not None:
                record(si, model, item.id, v.key, ItemScore(hit["accuracy"], hit["mode"], True))
            else:
                remote.setdefault(item.id, []).append((si, model, item, v))
        if remote:
            ray = import_ray()
            await self._start_pool(EvalWorker, budget, models, kwargs)
            self._load = [0] * len(self._actors)
            sem = asyncio.Semaphore(max(1, settings.concurrency))

            def on_event(ev: Event) -> None:
                if ev[0] != RESULT:
                    return
                _, item_id, si, model, vkey, res = ev
                if res[0] == "ok":
                    record(si, model, item_id, vkey, ItemScore(res[1], res[2], res[3]))
                    return
                if res[0] not in ("budget", *_FATAL_EVAL):
                    # One failed answer drops the question for this model (pairs must be whole).
                    progress.errors.append(f"{model} on {item_id} ({vkey}): {res[1]}")
                else:
                    failures.append(res)
                record(si, model, item_id, vkey, None)

            async def one(item_id: str, group: list[tuple[int, str, Any, Any]]) -> None:
                async with sem:
                    try:
                        end = await self._stream(
                            store,
                            lambda a: a.score.options(num_returns="streaming").remote(
                                item_id, group, store.calls_for_question(item_id), {}
                            ),
                            on_event,
                        )
                    except ray.exceptions.RayError as exc:
                        failures.append(("RuntimeError", f"Ray worker lost on {item_id}: {exc}"))
                        return
                if end.kind == "fatal":
                    failures.append(("RuntimeError", end.message or "worker error"))

            try:
                await asyncio.gather(*(one(i, g) for i, g in remote.items()))
            finally:
                if self.budget_actor is not None:
                    budget.calls, budget.cost = await self.budget_actor.state.remote()
                # Ray stays connected for the next defense; it shuts down when this process ends.
                await self._close_pool()
        for kind, message in failures:
            if kind == "budget":
                raise BudgetExceeded(message)
        for kind, message in failures:
            raise _FATAL_EVAL.get(kind, RuntimeError)(message)
        return assemble_results(
            models, defense, settings, sets, tally.scores, tally.modes, tally.progress
        )

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


# Errors that stop an evaluation at once, rebuilt on the driver from their names.
_FATAL_EVAL: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (AuthenticationError, BackendUnavailableError, UnsupportedError)
}
