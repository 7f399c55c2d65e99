"""Scale-out on Ray: questions partitioned over a pool of actors, the driver the single writer.

Design:

- A pool of ``SearchWorker`` actors, each building its own model backends from the run's config
  once (a local ``hf/`` or ``embed/`` model is loaded once per actor and serves every question
  sent to it). Each question is one streaming call on an actor.
- The driver ships a question's cached calls with it, and the worker streams every write back as
  it happens (``cdvkit.executors.events``): a paid call is stored by the driver before the search
  goes on, so a killed driver resumes without paying again for anything it received. Workers never
  open the SQLite file, so they can run on machines that do not see it.
- One ``BudgetActor`` holds the run-wide ``--max-calls``/``--max-cost`` ceiling: every paid call
  reserves through it before it is sent, as it reserves through the local Budget otherwise.
- One ``LimiterActor`` holds a concurrency limit per API model shared by all workers, on top of
  each worker's own limit, so N workers do not send N times the requests a server can take.

Ray is an optional extra and is imported only when this executor is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
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
    search_question,
)
from cdvkit.executors.events import END, RESULT, Event, EventRecorder, apply_event
from cdvkit.models.budget import Budget
from cdvkit.models.client import current_question
from cdvkit.models.errors import (
    AuthenticationError,
    BackendUnavailableError,
    BudgetExceeded,
    ModelError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.search.config import GenerateConfig
    from cdvkit.store import RunStore

# Backends that compute on the worker itself: each actor has its own copy, so no shared limit.
LOCAL_PROVIDERS = frozenset({"hf", "embed"})
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


# --- shared state: budget and concurrency --------------------------------------------------------
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


def _budget(actor: Any | None) -> Budget:
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


def _share_limits(models: list[Model], limiter: RemoteLimiter) -> None:
    for m in models:
        if m.provider not in LOCAL_PROVIDERS:
            m.limiter = limiter


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
        cfg: GenerateConfig,
        models: dict[str, Model] | None,
        budget: Any,
        limiter: Any,
    ) -> None:
        from cdvkit.search.build import build_roles, build_searcher

        self.error: str | None = None
        self.recorder = EventRecorder()
        self.roles: Any = None
        try:
            budget = self.recorder.track(_budget(budget))
            self.roles = build_roles(cfg, self.recorder, budget, models)
            _share_limits([r.model for r in self.roles.all()], RemoteLimiter(limiter))
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
        from cdvkit.evaluation.evaluate import Evaluator

        self.error: str | None = None
        self.recorder = EventRecorder()
        self.ev: Any = None
        try:
            budget = self.recorder.track(_budget(budget))
            self.ev = Evaluator(models, store=self.recorder, budget=budget, **kwargs)
            clients = [
                *self.ev.clients.values(),
                *([self.ev.extractor] if self.ev.extractor else []),
            ]
            _share_limits([c.model for c in clients], RemoteLimiter(limiter))
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
        self, cfg: GenerateConfig, store: RunStore, models: dict[str, Model] | None
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
        from cdvkit.evaluation.evaluate import (
            EvalProgress,
            EvalSettings,
            ItemScore,
            Tally,
            assemble_results,
            eval_jobs,
            eval_key,
            resolve_defense,
        )

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
