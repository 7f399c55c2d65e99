"""What every executor shares: the per-question search step and the executor interface.

The search of one question (``search_question``) is the same code whichever executor runs it; an
executor only decides where it runs and how its writes reach the run store.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cdvkit.data.question import Question
from cdvkit.models.client import current_question
from cdvkit.models.errors import (
    AuthenticationError,
    BackendUnavailableError,
    BudgetExceeded,
    ModelError,
    OutageError,
)
from cdvkit.store.status import QuestionStatus

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.search.config import SearchConfig
    from cdvkit.search.engine import Searcher
    from cdvkit.store import RunStore

INCOMPLETE = QuestionStatus.INCOMPLETE

# Errors no other question would escape: the whole run stops.
FATAL = (AuthenticationError, BackendUnavailableError, OutageError)

OnQuestionDone = Callable[[str, str], None]


class ExecutorUnavailableError(RuntimeError):
    """The executor asked for cannot run here (its optional dependency is missing)."""


class QuestionRecorder(Protocol):
    """Where a question's progress goes: the run store itself, or a worker's event stream."""

    def clear_nodes(self, qid: str) -> None: ...

    def set_question_status(
        self,
        qid: str,
        status: str,
        *,
        original_rate: float | None = None,
        error: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class QuestionEnd:
    """How one question's search ended, in plain values so it crosses process boundaries."""

    question_id: str
    kind: str  # "ok" | "failed" (a call failed for good) | "budget" | "fatal"
    status: str  # the question's stored status
    message: str | None = None


async def search_question(searcher: Searcher, q: Question, rec: QuestionRecorder) -> QuestionEnd:
    """Search one question and record its status; the same code runs in every executor."""
    current_question.set(q.id)
    # A replay rewrites the tree whole; its calls come back from the cache for free.
    rec.clear_nodes(q.id)
    rec.set_question_status(q.id, QuestionStatus.RUNNING)
    try:
        result = await searcher.search(q)
    except BudgetExceeded as exc:
        rec.set_question_status(q.id, INCOMPLETE, error=str(exc))
        return QuestionEnd(q.id, "budget", INCOMPLETE, str(exc))
    except FATAL as exc:
        rec.set_question_status(q.id, INCOMPLETE)
        return QuestionEnd(q.id, "fatal", INCOMPLETE, str(exc))
    except ModelError as exc:
        # A call the search could not do without (the original's answers): no result yet.
        rec.set_question_status(q.id, INCOMPLETE, error=str(exc))
        return QuestionEnd(q.id, "failed", INCOMPLETE, str(exc))
    error = None
    if result.status == INCOMPLETE:
        lost = [n for n in result.nodes if n.status == "error"]
        error = f"{len(lost)} node(s) lost a call: {lost[0].outputs.get('error')}"
    rec.set_question_status(q.id, result.status, original_rate=result.original_rate, error=error)
    return QuestionEnd(q.id, "failed" if error else "ok", result.status, error)


@dataclass
class RunOutcome:
    stopped: str | None = None  # why the run ended early, if it did
    fatal: str | None = None
    errors: list[str] = field(default_factory=list)


class RunStopped(Exception):
    """Raised by a question's search step when the whole run must stop (bad key, lost worker)."""


async def search_all(
    todo: list[Question],
    concurrency: int,
    search_one: Callable[[Question], Awaitable[QuestionEnd]],
    outcome: RunOutcome,
    on_question_done: OnQuestionDone | None = None,
) -> None:
    """Search ``todo``, ``concurrency`` questions at a time, wherever ``search_one`` runs them.

    Every executor schedules the same way: an exhausted budget lets the questions in flight end
    and starts no new one; a fatal error stops them all where they are (a rerun resumes them from
    the stored calls); a question whose model failed is counted and the others go on.
    """
    stop = asyncio.Event()
    sem = asyncio.Semaphore(max(concurrency, 1))

    async def one(q: Question) -> None:
        async with sem:
            if stop.is_set():
                return
            end = await search_one(q)
        if end.kind == "budget":
            outcome.stopped = end.message
            stop.set()
            return
        if end.kind == "fatal":
            raise RunStopped(end.message or "fatal error")
        if end.kind == "failed":
            outcome.errors.append(f"question {q.id}: {end.message}")
        if on_question_done:
            on_question_done(q.id, end.status)

    tasks = [asyncio.create_task(one(q)) for q in todo]
    try:
        await asyncio.gather(*tasks)
    except RunStopped as exc:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        outcome.fatal = str(exc)


class Executor(ABC):
    """Runs a run's questions somewhere; the driver process always owns the run store."""

    name: str = ""
    distributed: bool = False  # True: work runs in other processes, the store stays here

    @abstractmethod
    async def open(
        self, cfg: SearchConfig, store: RunStore, models: dict[str, Model] | None
    ) -> None:
        """Build the model backends; errors here (ValueError, ModelError) stop the run unpaid."""

    @abstractmethod
    async def run(
        self,
        todo: list[Question],
        store: RunStore,
        outcome: RunOutcome,
        on_question_done: OnQuestionDone | None = None,
    ) -> None:
        """Search ``todo``, recording everything in ``store`` as it happens."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release backends and workers."""

    async def evaluate(self, sets: list[Any], models: list[str], **kwargs: Any) -> dict[str, Any]:
        """Distributed `cdv evaluate`; the local path lives in cdvkit.evaluation itself."""
        raise NotImplementedError(f"the {self.name} executor does not evaluate")
