"""The caching, budgeted, recorded view of a model that search and evaluation talk to.

Each role (target, proposer, judge, extractor, eval) gets a ``RoleClient``. It answers from the run
store's call cache when it can, deduplicates identical calls that are in flight together, reserves
budget before paying for a call, and writes every paid call to the store as soon as it returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from dataclasses import asdict, replace
from typing import Any, Protocol

from cdvkit.models.base import (
    MCQ,
    GenerateRequest,
    Message,
    Model,
    Usage,
    before_send,
    choice_cache_key,
    on_retry,
)
from cdvkit.models.budget import Budget
from cdvkit.models.errors import STOPS_RUN, ModelError, UnsupportedError


class CallStore(Protocol):
    """What a RoleClient needs of a store: the run store, or a worker's streaming stand-in for it
    (cdvkit.executors.events.EventRecorder) that the driver turns back into run-store rows."""

    def get_call(self, key: str) -> dict[str, Any] | None: ...

    def put_call(self, key: str, **fields: Any) -> None: ...

    def transaction(self) -> Any: ...

    def record_failure(
        self,
        *,
        role: str,
        model: str,
        error: str,
        question_id: str | None,
        kind: str = "lost",
        phase: str = "search",
        stops_run: bool = False,
    ) -> None: ...


# Which question a call serves, so failures can be recorded against it without threading ids around.
current_question: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_question", default=None
)


class RoleClient:
    def __init__(
        self,
        model: Model,
        role: str,
        *,
        store: CallStore | None = None,
        budget: Budget | None = None,
        phase: str = "search",
    ) -> None:
        self.model = model
        self.role = role
        self.phase = phase  # "search" or "evaluate": whose calls these are in the run's counts
        self.store = store
        self.budget = budget or Budget()
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._memory: dict[str, Any] = {}  # cache when no store is attached
        self.cache_hits = 0
        self.paid = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def supports_choice_probs(self) -> bool:
        return self.model.supports_choice_probs

    # --- cache helpers ------------------------------------------------------------------------
    def _lookup(self, key: str) -> Any | None:
        if self.store is not None:
            hit = self.store.get_call(key)
            return None if hit is None else hit["value"]
        return self._memory.get(key)

    def _lookup_many(self, keys: list[str]) -> list[Any | None]:
        # One query for a request's n samples (a store without the batch form asks per key).
        many = getattr(self.store, "get_calls", None)
        if many is None:
            return [self._lookup(k) for k in keys]
        hits = many(keys)
        return [hits[k]["value"] if k in hits else None for k in keys]

    def _save(self, rows: list[tuple[str, dict[str, Any], Any, Usage]], batch: str | None) -> None:
        """Store one request's samples (key, request, value, usage) together."""
        if self.store is None:
            for key, _, value, _ in rows:
                self._memory[key] = value
            return
        records = [
            {
                "key": key,
                "model": self.model.name,
                "role": self.role,
                "request": request,
                "response": {"value": value},
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost": self.model.cost(usage),
                "batch": batch,
                "question_id": current_question.get(),
                "phase": self.phase,
            }
            for key, request, value, usage in rows
        ]
        many = getattr(self.store, "put_calls", None)
        if many is not None:
            many(records)
            return
        # All samples of one request land together: a crash between them would make the
        # resumed run pay again for the missing ones.
        with self.store.transaction():
            for r in records:
                self.store.put_call(**r)

    async def _paid(self, coro_fn: Any, keys: list[str]) -> Any:
        """Pay for one request (the samples ``keys``): budget, in-flight note, failures."""
        reserved: list[Any] = []  # the budget token, once the call is about to be sent

        async def reserve() -> None:
            # Runs inside the model's concurrency slot (see models.base.before_send); raises
            # BudgetExceeded there, before anything is sent.
            reserved.append(await self.budget.acquire())
            # Noted as sent before it goes out: a crash before its reply is stored leaves the
            # note, so the rerun that sends it again counts it as paid twice (store.calls).
            self._note("mark_sent", keys, role=self.role, phase=self.phase)

        def release(cost: float, sent: bool = True) -> None:
            if reserved:
                self.budget.release(reserved.pop(), cost, sent=sent)

        context = before_send.set(reserve)
        retry_context = on_retry.set(lambda exc: self._failed(exc, "retried"))
        try:
            result = await coro_fn()
        except UnsupportedError as exc:
            # A capability probe (e.g. log-probs on a server without them): the caller falls
            # back to another method, so it is no failure of the run, but a request was refused.
            release(0.0)
            self._note("mark_unanswered", keys)
            if exc.status is not None:
                self._failed(exc, "refused")
            raise
        except ModelError as exc:
            release(0.0)
            self._note("mark_unanswered", keys)
            if getattr(exc, "sent", True):  # not a call an outage stopped before it was sent
                self._failed(exc, "lost")
            raise
        except BaseException:
            release(0.0, sent=False)
            raise
        finally:
            on_retry.reset(retry_context)
            before_send.reset(context)
        if not reserved:
            raise AssertionError(f"{self.model.name} answered without passing Model._call")
        release(self.model.cost(result.usage))
        self.paid += 1
        return result

    def _note(self, method: str, keys: list[str], **fields: Any) -> None:
        # A run store keeps these notes; a worker's stand-in for it (Ray) does not.
        note = getattr(self.store, method, None)
        if note is not None:
            note(keys, **fields)

    def _failed(self, exc: BaseException, kind: str) -> None:
        if self.store is not None:
            self.store.record_failure(
                role=self.role,
                model=self.model.name,
                error=str(exc),
                question_id=current_question.get(),
                kind=kind,
                phase=self.phase,
                # A missing capability is often a probe its caller recovers from (a server
                # without log-probs: the search falls back to sampled answers), so it is shown
                # as it happens; when nobody recovers, the run's stop names it as well.
                stops_run=isinstance(exc, STOPS_RUN) and not isinstance(exc, UnsupportedError),
            )

    # --- generation ----------------------------------------------------------------------------
    async def samples(self, request: GenerateRequest, start: int = 0, count: int = 1) -> list[str]:
        """Samples ``start .. start+count-1`` of ``request``; each is paid for at most once."""
        keys = request.cache_keys(self.model.name, range(start, start + count))
        out: list[str | None] = self._lookup_many(keys)
        self.cache_hits += sum(v is not None for v in out)
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            # Join a call already under way for the same samples instead of paying twice.
            waiting = {i: self._inflight[keys[i]] for i in missing if keys[i] in self._inflight}
            todo = [i for i in missing if i not in waiting]
            fetched = await self._fetch(request, start, todo, keys) if todo else {}
            for i in missing:
                out[i] = await waiting[i] if i in waiting else fetched[i]
        return [str(v) for v in out]

    async def _fetch(
        self, request: GenerateRequest, start: int, todo: list[int], keys: list[str]
    ) -> dict[int, str]:
        """Pay for samples ``todo`` (indices into ``keys``); their texts by index."""
        loop = asyncio.get_running_loop()
        futures = {i: loop.create_future() for i in todo}
        for i, fut in futures.items():
            self._inflight[keys[i]] = fut
        try:
            # Contiguous runs of missing samples go out as one request with n samples.
            for run in _runs(todo):
                req = replace(request, first_sample=start + run[0])
                completion = await self._paid(
                    lambda req=req, run=run: self.model.generate(req, len(run)),
                    [keys[i] for i in run],
                )
                if len(completion.texts) != len(run):
                    raise ModelError(
                        f"asked for {len(run)} samples, got {len(completion.texts)}",
                        model=self.model.name,
                    )
                batch = uuid.uuid4().hex if len(run) > 1 else None
                self._save(
                    [
                        # The request's usage (and cost) is counted once, on its first sample.
                        (
                            keys[i],
                            _describe(req, start + i),
                            text,
                            Usage() if j else completion.usage,
                        )
                        for j, (i, text) in enumerate(zip(run, completion.texts, strict=True))
                    ],
                    batch,
                )
                for i, text in zip(run, completion.texts, strict=True):
                    futures[i].set_result(text)
            return {i: fut.result() for i, fut in futures.items()}
        except BaseException as exc:
            for fut in futures.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # mark retrieved: the caller sees exc directly
            raise
        finally:
            for i in todo:
                self._inflight.pop(keys[i], None)

    async def complete(self, request: GenerateRequest, sample: int = 0) -> str:
        return (await self.samples(request, sample, 1))[0]

    # --- exact choice probabilities ---------------------------------------------------------------
    async def choice_probs(self, messages: list[Message], mcq: MCQ) -> list[float]:
        msgs = tuple((m["role"], m["content"]) for m in messages)
        key = choice_cache_key(self.model.name, msgs, mcq)
        hit = self._lookup(key)
        if hit is not None:
            self.cache_hits += 1
            return list(hit)
        if key in self._inflight:
            return list(await self._inflight[key])
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            scores = await self._paid(lambda: self.model.choice_probs(messages, mcq), [key])
            probs = [float(p) for p in scores.probs]
            self._save(
                [(key, {"messages": messages, "mcq": asdict(mcq)}, probs, scores.usage)], None
            )
            fut.set_result(probs)
            return probs
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        finally:
            self._inflight.pop(key, None)


def _runs(indices: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _describe(req: GenerateRequest, sample: int) -> dict[str, Any]:
    return {
        "messages": req.message_dicts,
        "temperature": req.temperature,
        "max_tokens": req.max_tokens,
        "stop": list(req.stop),
        "seed": req.seed,
        "json_mode": req.json_mode,
        "sample": sample,
    }
