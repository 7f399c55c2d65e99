"""How a worker's writes travel to the driver, the single writer of the run store.

On a worker, an ``EventRecorder`` stands in for the run store: the search and the model clients
write to it exactly as they write to a ``RunStore``, and every write becomes an event on the
stream of the question it serves. A paid call is an event the moment it returns, so the driver
stores it before the search goes on, and a driver killed at any point keeps every call it has
received. Reads are answered from the calls the driver shipped with the question (and the calls
this worker paid since), so a replayed question pays for nothing it already paid for.

Events are plain tuples (cheap to pickle): the first item names the kind, the second the question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cdvkit.jobs import JobEnd
from cdvkit.models.budget import Budget
from cdvkit.models.client import current_question
from cdvkit.models.errors import BudgetExceeded
from cdvkit.store import RunStore

Event = tuple[Any, ...]
CALLS, SENT, UNANSWERED, NODE, CLEAR, STATUS, FAILURE, EVAL, END = (
    "calls",
    "sent",
    "unanswered",
    "node",
    "clear",
    "status",
    "failure",
    "eval",
    "end",
)


@dataclass
class _OpenQuestion:
    calls: dict[str, dict[str, Any]]  # key -> stored response, shipped or paid here
    evals: dict[str, dict[str, Any]]
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    inflight: int = 0  # paid calls sent and not yet recorded
    ending: bool = False  # the search returned: no new call may start for it
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class EventRecorder:
    """A worker's stand-in for the run store (the parts RoleClient, Searcher and Evaluator use)."""

    def __init__(self) -> None:
        self._open: dict[str, _OpenQuestion] = {}
        self._batch: list[dict[str, Any]] | None = None

    # --- one stream per question --------------------------------------------------------------
    def open(
        self,
        qid: str,
        calls: dict[str, dict[str, Any]] | None = None,
        evals: dict[str, dict[str, Any]] | None = None,
    ) -> asyncio.Queue[Event]:
        if qid in self._open:
            raise ValueError(f"question {qid} is already running on this worker")
        oq = self._open[qid] = _OpenQuestion(dict(calls or {}), dict(evals or {}))
        return oq.queue

    def close(self, qid: str) -> None:
        # The question's calls leave with it: a worker's memory stays bounded by what is running.
        self._open.pop(qid, None)

    def emit(self, qid: str | None, event: Event) -> None:
        oq = self._open.get(qid) if qid is not None else None
        if oq is None:
            # Only a question this worker runs sets current_question, so this is a bug, and a
            # lost paid call would be paid again: fail loudly instead.
            raise RuntimeError(f"event {event[0]!r} for question {qid!r}, which is not running")
        oq.queue.put_nowait(event)

    async def end(self, end: JobEnd) -> None:
        """Close the job's stream once every call it paid for is on it.

        A search can return while calls it started are still running (asyncio.gather leaves the
        siblings of a failed call running): locally they still reach the store, so here the END
        waits for them, and calls that have not started yet are refused.
        """
        oq = self._open[end.key]
        oq.ending = True
        while oq.inflight:
            oq.idle.clear()
            await oq.idle.wait()
        self.emit(end.key, (END, end.key, end))

    def track(self, budget: Budget) -> Budget:
        """``budget`` as the worker's clients should use it: counting each question's calls."""
        return _QuestionBudget(budget, self)

    # --- call cache (RoleClient) -----------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        qid = current_question.get()
        mine = self._open.get(qid) if qid is not None else None
        if mine is not None and key in mine.calls:
            return mine.calls[key]
        # Another question running here may have paid for the same request.
        for oq in self._open.values():
            if key in oq.calls:
                return oq.calls[key]
        return None

    def put_call(self, key: str, **fields: Any) -> None:
        qid = current_question.get()
        fields.pop("question_id", None)
        record = {"key": key, **fields}
        if qid is not None and qid in self._open:
            self._open[qid].calls[key] = fields["response"]
        if self._batch is not None:
            self._batch.append(record)
        else:
            self.emit(qid, (CALLS, qid, [record]))

    def mark_sent(self, keys: list[str], *, role: str, phase: str = "search") -> None:
        # The in-flight note travels ahead of the call's reply on the question's stream, so the
        # driver notes it before the reply can land: a driver killed between the two leaves the
        # note, and the resumed run counts the call it sends again as paid twice, as locally.
        qid = current_question.get()
        self.emit(qid, (SENT, qid, list(keys), role, phase))

    def mark_unanswered(self, keys: list[str]) -> None:
        qid = current_question.get()
        self.emit(qid, (UNANSWERED, qid, list(keys)))

    @contextmanager
    def transaction(self) -> Iterator[EventRecorder]:
        """The samples of one request travel as one event and land in one store transaction.

        RoleClient writes a batch without awaiting in between, so one buffer per worker is safe.
        """
        self._batch = []
        try:
            yield self
            batch, qid = self._batch, current_question.get()
        finally:
            self._batch = None
        if batch:
            self.emit(qid, (CALLS, qid, batch))

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
    ) -> None:
        self.emit(question_id, (FAILURE, question_id, role, model, error, kind, phase, stops_run))

    # --- search tree and question status (Searcher, search_question) -----------------------------
    def save_node(self, qid: str, node: dict[str, Any]) -> None:
        self.emit(qid, (NODE, qid, node))

    def clear_nodes(self, qid: str) -> None:
        self.emit(qid, (CLEAR, qid))

    def set_question_status(
        self,
        qid: str,
        status: str,
        *,
        original_rate: float | None = None,
        error: str | None = None,
    ) -> None:
        self.emit(qid, (STATUS, qid, status, original_rate, error))

    # --- evaluation answers (Evaluator) ------------------------------------------------------
    def get_eval(self, key: str) -> dict[str, Any] | None:
        qid = current_question.get()
        oq = self._open.get(qid) if qid is not None else None
        return None if oq is None else oq.evals.get(key)

    def put_eval(self, key: str, data: dict[str, Any]) -> None:
        qid = current_question.get()
        if qid is not None and qid in self._open:
            self._open[qid].evals[key] = data
        self.emit(qid, (EVAL, qid, key, data))


class _QuestionBudget(Budget):
    """Counts the calls in flight per question for ``EventRecorder.end``; the ceiling itself is
    the wrapped budget's (the run-wide one on Ray)."""

    def __init__(self, inner: Budget, recorder: EventRecorder) -> None:
        super().__init__()
        self.inner = inner
        self.recorder = recorder

    async def acquire(self) -> Any:
        qid = current_question.get()
        token = await self.inner.acquire()
        oq = self.recorder._open.get(qid) if qid is not None else None
        if oq is None or oq.ending:
            self.inner.release(token, 0.0, sent=False)
            raise BudgetExceeded(f"question {qid} has finished; its late calls are not sent")
        oq.inflight += 1
        return (token, oq)

    def release(self, token: Any, cost: float, *, sent: bool = True) -> None:
        inner, oq = token
        self.inner.release(inner, cost, sent=sent)
        oq.inflight -= 1
        if not oq.inflight:
            # RoleClient records a call right after release, in the same step of the event
            # loop, so the waiter in end() runs only once the call is on the stream.
            oq.idle.set()


def apply_event(store: RunStore, event: Event) -> JobEnd | None:
    """Write one worker event to the run store; returns the job's end when it is one."""
    kind, qid = event[0], event[1]
    if kind == CALLS:
        # One request's samples together, as RoleClient writes them locally.
        with store.transaction():
            for rec in event[2]:
                store.put_call(**rec, question_id=qid)
    elif kind == SENT:
        store.mark_sent(event[2], role=event[3], phase=event[4])
    elif kind == UNANSWERED:
        store.mark_unanswered(event[2])
    elif kind == NODE:
        store.save_node(qid, event[2])
    elif kind == CLEAR:
        store.clear_nodes(qid)
    elif kind == STATUS:
        store.set_question_status(qid, event[2], original_rate=event[3], error=event[4])
    elif kind == FAILURE:
        store.record_failure(
            role=event[2],
            model=event[3],
            error=event[4],
            question_id=qid,
            kind=event[5],
            phase=event[6],
            stops_run=event[7],
        )
    elif kind == EVAL:
        store.put_eval(event[2], event[3])
    elif kind == END:
        end: JobEnd = event[2]
        return end
    else:
        raise ValueError(f"unknown worker event {kind!r}")
    return None
