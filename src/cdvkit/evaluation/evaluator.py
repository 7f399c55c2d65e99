"""The Evaluator: asks each model every question of an evaluation, once.

Every answer goes through a ``RoleClient`` (role ``eval``) bound to the run store, and each scored
item is written with ``put_eval`` as soon as it is known, so an interrupted evaluation resumes
where it stopped and a repeated one costs nothing.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import EvalItem, Variant
from cdvkit.evaluation.results import ItemScore
from cdvkit.evaluation.settings import EvalSettings, eval_key
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import RoleClient, current_question
from cdvkit.models.errors import (
    UnsupportedError,
)
from cdvkit.models.registry import load_backend
from cdvkit.protocol import Asker
from cdvkit.store import RunStore

# The paid requests made while one answer is asked (its extractor's and grader's included). An
# answer that needed none came from the store: its score was stored, or every call it needed was
# in the call cache. This is what "from the store" counts (ItemScore.cached, answers.cached).
_paid_for_answer: ContextVar[list[int] | None] = ContextVar("paid_for_answer", default=None)


class _AnswerBudget(Budget):
    """``inner``, also counting each request it lets out against the answer being asked."""

    def __init__(self, inner: Budget) -> None:
        super().__init__()
        self.inner = inner

    async def acquire(self) -> Any:
        token = await self.inner.acquire()
        paid = _paid_for_answer.get()
        if paid is not None:
            paid[0] += 1
        return token

    def release(self, token: Any, cost: float, *, sent: bool = True) -> None:
        self.inner.release(token, cost, sent=sent)


class Evaluator:
    """Scores items for several models under one defense; answers live in the run store."""

    def __init__(
        self,
        models: list[str],
        *,
        store: RunStore | None,
        defense: Defense,
        settings: EvalSettings,
        budget: Budget | None = None,
        backends: dict[str, Model] | None = None,
        extractor: str | Model | None = None,
        base_url: str | None = None,
        grader: str | Model | None = None,
    ) -> None:
        if not models:
            raise ValueError("give at least one model to evaluate (--models)")
        self.models = list(dict.fromkeys(models))
        self.store = store
        self.defense = defense
        self.settings = settings
        self.budget = _AnswerBudget(budget or Budget())
        self._memory: dict[str, dict[str, Any]] = {}  # answers when no store is attached
        self._owned: list[Model] = []
        backends = dict(backends or {})
        self.clients: dict[str, RoleClient] = {}
        for spec in self.models:
            model = backends.get(spec)
            if model is None:
                model = load_backend(spec, concurrency=settings.concurrency, base_url=base_url)
                self._owned.append(model)
            self.clients[spec] = RoleClient(
                model, "eval", store=store, budget=self.budget, phase="evaluate"
            )
        self.extractor = self._helper("extractor", extractor, base_url)
        self.grader = self._helper("grader", grader, base_url)
        protocol = settings.protocol(defense.text)
        self.askers = {
            spec: Asker(client, protocol, extractor=self.extractor, grader=self.grader)
            for spec, client in self.clients.items()
        }

    def _helper(self, role: str, model: str | Model | None, base_url: str | None) -> Any:
        """The client of a helping role (extractor, grader), or None without one."""
        if model is None:
            return None
        backend = (
            model
            if isinstance(model, Model)
            else load_backend(model, concurrency=self.settings.concurrency, base_url=base_url)
        )
        if not isinstance(model, Model):
            self._owned.append(backend)
        return RoleClient(backend, role, store=self.store, budget=self.budget, phase="evaluate")

    def backends(self) -> list[Model]:
        """Every model this evaluator asks: the evaluated ones, the extractor and the grader."""
        models = [c.model for c in self.clients.values()]
        return models + [h.model for h in (self.extractor, self.grader) if h is not None]

    async def aclose(self) -> None:
        # Every backend's clients belong to this event loop, lent ones included: closing them
        # here leaves nothing open when the loop ends (a later loop opens its own).
        for m in dict.fromkeys(self.backends() + self._owned):
            await m.aclose()

    def _get(self, key: str) -> dict[str, Any] | None:
        if self.store is not None:
            return self.store.get_eval(key)
        return self._memory.get(key)

    def _put(self, key: str, data: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.put_eval(key, data)
        else:
            self._memory[key] = data

    async def score(self, model: str, item: EvalItem, variant: Variant) -> ItemScore:
        ext = self.extractor.name if self.extractor else None
        grader = self.grader.name if self.grader else None
        key = eval_key(model, item.id, variant, self.defense, self.settings, ext, grader)
        hit = self._get(key)
        if hit is not None:
            return ItemScore(float(hit["accuracy"]), hit["mode"], True)
        current_question.set(item.id)
        paid = [0]
        _paid_for_answer.set(paid)  # this answer's own task: its siblings count apart
        try:
            out = await self.askers[model].ask(
                variant.question, variant.choices, variant.answer, variant.answer_key
            )
        except UnsupportedError as exc:
            raise UnsupportedError(
                f"cannot evaluate {model} with --protocol {self.settings.scoring} ({exc}); exact "
                "needs a backend with choice probabilities, sample one that generates text"
            ) from exc
        accuracy = 1.0 if out.correct else 0.0
        self._put(
            key,
            {
                "model": model,
                "item": item.id,
                "variant": variant.key,
                "defense": self.defense.label,
                "defense_sha": self.defense.sha,
                "protocol": self.askers[model].protocol.describe(variant.task),
                "samples": self.askers[model].protocol.samples,
                "temperature": self.askers[model].protocol.temperature,
                "scoring": self.settings.scoring,
                "mode": out.mode,
                "accuracy": accuracy,
                "correct": out.correct,
                "sample_accuracy": out.accuracy,
                "outputs": out.to_dict(),
                "created": time.time(),
            },
        )
        return ItemScore(accuracy, out.mode, paid[0] == 0)
