"""A search as jobs for an executor: one job per question, the same code wherever it runs.

``SearchWork`` is the picklable recipe an executor builds once per process (here, or on each Ray
worker); ``search_question`` searches one question and records its status through the recorder
the work was built on (the run store, or a worker's event stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cdvkit.data.question import Question
from cdvkit.jobs import JobEnd
from cdvkit.models.client import current_question
from cdvkit.models.errors import STOPS_RUN, BudgetExceeded, ModelError
from cdvkit.search.build import Roles, build_roles, build_searcher
from cdvkit.search.config import SearchConfig
from cdvkit.store.status import QuestionStatus

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.models.budget import Budget
    from cdvkit.search.engine import Searcher

INCOMPLETE = QuestionStatus.INCOMPLETE


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


async def search_question(searcher: Searcher, q: Question, rec: QuestionRecorder) -> JobEnd:
    """Search one question and record its status; the same code runs in every executor."""
    current_question.set(q.id)
    # A replay rewrites the tree whole; its calls come back from the cache for free.
    rec.clear_nodes(q.id)
    rec.set_question_status(q.id, QuestionStatus.RUNNING)
    try:
        result = await searcher.search(q)
    except BudgetExceeded as exc:
        rec.set_question_status(q.id, INCOMPLETE, error=str(exc))
        return JobEnd(q.id, "budget", INCOMPLETE, str(exc))
    except STOPS_RUN as exc:  # the whole run stops (cdvkit.models.errors)
        rec.set_question_status(q.id, INCOMPLETE)
        return JobEnd(q.id, "fatal", INCOMPLETE, str(exc), error=type(exc).__name__)
    except ModelError as exc:
        # A call the search could not do without (the original's answers): no result yet.
        rec.set_question_status(q.id, INCOMPLETE, error=str(exc))
        return JobEnd(q.id, "failed", INCOMPLETE, str(exc))
    error = None
    if result.status == INCOMPLETE:
        lost = [n for n in result.nodes if n.status == "error"]
        error = f"{len(lost)} node(s) lost a call: {lost[0].outputs.get('error')}"
    rec.set_question_status(q.id, result.status, original_rate=result.original_rate, error=error)
    return JobEnd(q.id, "failed" if error else "ok", result.status, error)


@dataclass
class SearchWork:
    """The recipe of a search's work: its settings, and ready backends by role when lent some."""

    cfg: SearchConfig
    models: dict[str, Model] | None = None

    def build(self, recorder: Any, budget: Budget) -> Searching:
        roles = build_roles(self.cfg, recorder, budget, self.models)
        return Searching(build_searcher(self.cfg, roles, recorder), roles, recorder)


class Searching:
    """A built search: searches each question (job) sent to it with the same backends."""

    def __init__(self, searcher: Searcher, roles: Roles, recorder: Any) -> None:
        self.searcher = searcher
        self.roles = roles
        self.recorder = recorder

    async def run(self, job: Question) -> JobEnd:
        return await search_question(self.searcher, job, self.recorder)

    def backends(self) -> list[Model]:
        return [r.model for r in self.roles.all()]

    async def aclose(self) -> None:
        for m in dict.fromkeys(self.backends()):
            await m.aclose()
