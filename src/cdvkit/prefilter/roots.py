"""The target's answers to each undistracted question, as jobs for an executor: what
``--prefilter auto`` ranks questions by before it searches them.

It is the search's own first step (``Searcher.search`` with no expansion allowed), so the calls
are the very ones the search makes: paid once, cached in the run store, and free when the
question is searched afterwards. Nothing else is written: no node, no question status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cdvkit.data.question import Question
from cdvkit.jobs import JobEnd
from cdvkit.models.client import current_question
from cdvkit.models.errors import STOPS_RUN, BudgetExceeded, ModelError
from cdvkit.search.build import Roles, build_roles, build_searcher
from cdvkit.search.config import SearchConfig

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.models.budget import Budget
    from cdvkit.search.engine import Searcher


@dataclass
class RootWork:
    """The recipe of the root evaluations: the run's settings, and ready backends when lent."""

    cfg: SearchConfig
    models: dict[str, Model] | None = None

    def build(self, recorder: Any, budget: Budget) -> RootEvaluation:
        roles = build_roles(self.cfg, recorder, budget, self.models)
        searcher = build_searcher(self.cfg, roles, None)  # no store: no node is written
        searcher.limits = replace(searcher.limits, max_expansions=0)
        return RootEvaluation(searcher, roles)


class RootEvaluation:
    """Evaluates the root of each question sent to it; its end's ``value`` holds the answers."""

    def __init__(self, searcher: Searcher, roles: Roles) -> None:
        self.searcher = searcher
        self.roles = roles

    async def run(self, job: Question) -> JobEnd:
        current_question.set(job.id)  # the calls are this question's (a Ray worker ships them)
        try:
            result = await self.searcher.search(job)
        except BudgetExceeded as exc:
            return JobEnd(job.id, "budget", "", str(exc))
        except STOPS_RUN as exc:
            return JobEnd(job.id, "fatal", "", str(exc), error=type(exc).__name__)
        except ModelError as exc:
            return JobEnd(job.id, "failed", "", str(exc))
        root = result.nodes[0]
        info = {"status": result.status, "accuracy": result.original_rate, "outputs": root.outputs}
        return JobEnd(job.id, "ok", result.status, value=info)

    def backends(self) -> list[Model]:
        return [r.model for r in self.roles.all()]

    async def aclose(self) -> None:
        for m in dict.fromkeys(self.backends()):
            await m.aclose()
