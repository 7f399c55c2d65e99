"""An evaluation as jobs for an executor: one job per question, holding every answer it needs.

Grouping a question's answers (every model, original and distracted) in one job keeps its calls
under one key, so a Ray worker is shipped that question's cached calls and nothing else. The job
hands its scores back in its end; the caller tallies them, wherever they were computed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.evaluator import Evaluator
from cdvkit.evaluation.items import EvalItem, Variant
from cdvkit.evaluation.results import ItemScore
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.jobs import JobEnd
from cdvkit.models.client import current_question
from cdvkit.models.errors import STOPS_RUN, BudgetExceeded, ModelError

if TYPE_CHECKING:
    from cdvkit.models.base import Model
    from cdvkit.models.budget import Budget

Answer = tuple[int, str, EvalItem, Variant]  # (example set, model, item, variant)
# What a job hands back per answer: its score, or None and why it failed.
Scored = tuple[int, str, str, str, ItemScore | None, str | None]


@dataclass(frozen=True)
class EvalJob:
    key: str  # the question id: every answer below asks a form of it
    answers: tuple[Answer, ...]


@dataclass
class EvalWork:
    """The recipe of an evaluation's work; ``backends`` are lent ready (this process only)."""

    models: list[str]
    defense: Defense
    settings: EvalSettings
    backends: dict[str, Model] | None = None
    extractor: str | Model | None = None
    base_url: str | None = None
    grader: str | Model | None = None

    def build(self, recorder: Any, budget: Budget) -> Scoring:
        ev = Evaluator(
            self.models,
            store=recorder,
            defense=self.defense,
            settings=self.settings,
            budget=budget,
            backends=self.backends,
            extractor=self.extractor,
            base_url=self.base_url,
            grader=self.grader,
        )
        return Scoring(ev)


class Scoring:
    """A built evaluation: scores each job's answers with the same Evaluator."""

    def __init__(self, ev: Evaluator) -> None:
        self.ev = ev
        # Jobs run several at a time and each asks several answers: this bounds the answers.
        self.sem = asyncio.Semaphore(max(1, ev.settings.concurrency))

    async def run(self, job: EvalJob) -> JobEnd:
        current_question.set(job.key)

        async def one(si: int, model: str, item: EvalItem, v: Variant) -> Scored:
            async with self.sem:
                try:
                    sc = await self.ev.score(model, item, v)
                except STOPS_RUN:  # stops the evaluation (cdvkit.models.errors)
                    raise
                except ModelError as exc:
                    # One failed answer drops the question for this model (pairs must be whole).
                    return (
                        si,
                        model,
                        item.id,
                        v.key,
                        None,
                        f"{model} on {item.id} ({v.key}): {exc}",
                    )
            return (si, model, item.id, v.key, sc, None)

        # Every answer settles before the job ends: answers paid for reach the store in any case.
        done = await asyncio.gather(*(one(*a) for a in job.answers), return_exceptions=True)
        for r in done:
            if isinstance(r, BudgetExceeded):
                return JobEnd(job.key, "budget", message=str(r))
        for r in done:
            if isinstance(r, STOPS_RUN):
                return JobEnd(job.key, "fatal", message=str(r), error=type(r).__name__)
        bug = next((r for r in done if isinstance(r, BaseException)), None)
        if bug is not None:
            raise bug
        return JobEnd(job.key, "ok", value=done)

    def backends(self) -> list[Model]:
        return self.ev.backends()

    async def aclose(self) -> None:
        await self.ev.aclose()
