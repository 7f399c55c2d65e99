"""The goal: how often the target answers a node correctly, measured on that node's own text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cdvkit.models.base import MCQ
from cdvkit.models.client import RoleClient
from cdvkit.models.errors import UnsupportedError
from cdvkit.prompts import extractor_request, parse_answer, target_messages, target_request
from cdvkit.search.node import Node


@dataclass
class GoalResult:
    rate: float
    success: bool
    mode: str  # "sample" | "exact"
    answers: list[dict[str, Any]] = field(default_factory=list)
    probs: list[float] | None = None

    def to_outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "answers": self.answers}
        if self.probs is not None:
            out["probs"] = self.probs
        return out


class TargetGoal:
    """Success is rate == 0 over ``samples`` parsed answers, or with exact scoring
    P(correct) < ``threshold`` with the argmax on a wrong choice.

    An answer outside the choices, or one that cannot be read, counts as wrong and is recorded:
    the denominator is always the number of samples drawn (the reference dropped them).

    ``sequential`` stops sampling at the first correct answer (a node answered right once cannot
    be a success): the first sample goes alone, the rest follow in one request, or one by one
    with ``batch_samples=False``. ``batch_samples=False`` without ``sequential`` sends each
    sample as its own request, and ``always_extract`` sends every answer to the extractor,
    parseable or not: together they reproduce the reference implementation's call pattern.
    """

    def __init__(
        self,
        client: RoleClient,
        *,
        samples: int = 5,
        temperature: float = 0.7,
        scoring: str = "auto",
        threshold: float = 0.2,
        extractor: RoleClient | None = None,
        defense: str = "",
        sequential: bool = False,
        always_extract: bool = False,
        batch_samples: bool = True,
    ) -> None:
        if scoring not in ("auto", "sample", "exact"):
            raise ValueError(f"scoring must be auto, sample or exact, not {scoring!r}")
        self.client = client
        self.samples = samples
        self.temperature = temperature
        self.scoring = scoring
        self.threshold = threshold
        self.extractor = extractor
        self.defense = defense
        self.sequential = sequential
        self.always_extract = always_extract
        self.batch_samples = batch_samples

    def _exact(self) -> bool:
        return self.scoring == "exact" or (
            self.scoring == "auto" and self.client.supports_choice_probs
        )

    async def evaluate(self, node: Node) -> GoalResult:
        if self._exact():
            try:
                return await self._evaluate_exact(node)
            except UnsupportedError:
                if self.scoring == "exact":
                    raise
        return await self._evaluate_sampled(node)

    async def _evaluate_exact(self, node: Node) -> GoalResult:
        msgs = target_messages(node.question, node.choices, defense=self.defense)
        probs = await self.client.choice_probs(msgs, MCQ(node.question, tuple(node.choices)))
        p = probs[node.answer]
        argmax = max(range(len(probs)), key=probs.__getitem__)
        success = p < self.threshold and argmax != node.answer
        return GoalResult(p, success, "exact", probs=probs)

    async def _evaluate_sampled(self, node: Node) -> GoalResult:
        req = target_request(
            node.question, node.choices, temperature=self.temperature, defense=self.defense
        )
        if self.sequential:
            answers: list[dict[str, Any]] = []
            for start, count in self._stages():
                replies = await self._replies(req, start, count)
                answers += await asyncio.gather(
                    *(self._read(node, r, start + i) for i, r in enumerate(replies))
                )
                correct = sum(a["correct"] for a in answers)
                if correct:
                    # One right answer already rules out rate == 0; the posterior mean keeps the
                    # priority informative without paying for the remaining samples.
                    rate = (correct + 1) / (len(answers) + 2)
                    return GoalResult(rate, False, "sample", answers)
        else:
            replies = await self._replies(req, 0, self.samples)
            answers = list(
                await asyncio.gather(*(self._read(node, r, i) for i, r in enumerate(replies)))
            )
        correct = sum(a["correct"] for a in answers)
        rate = correct / len(answers)
        return GoalResult(rate, correct == 0, "sample", answers)

    def _stages(self) -> list[tuple[int, int]]:
        """(first sample, count) of each request of a sequential evaluation.

        Most nodes are answered right at once, so the first sample goes alone. If it is wrong,
        the rest come in one request when batching is on (one more call, not n - 1 more), or one
        at a time, stopping at the first right answer, when it is off (backends without n).
        """
        if self.samples == 1:
            return [(0, 1)]
        if self.batch_samples:
            return [(0, 1), (1, self.samples - 1)]
        return [(i, 1) for i in range(self.samples)]

    async def _replies(self, req: Any, start: int, count: int) -> list[str]:
        if self.batch_samples or count == 1:
            return await self.client.samples(req, start, count)
        # One request per sample, all in flight together (the reference's pattern).
        batches = await asyncio.gather(
            *(self.client.samples(req, start + i, 1) for i in range(count))
        )
        return [b[0] for b in batches]

    async def _read(self, node: Node, reply: str, sample: int = 0) -> dict[str, Any]:
        parsed = parse_answer(reply, node.choices)
        index, status = parsed.index, parsed.status
        if self.extractor is not None and (self.always_extract or status == "unparsed"):
            # Identical unreadable replies share one extraction (sample 0), so none is paid twice;
            # the reference pays one extraction per answer even when answers repeat, which the
            # sample index reproduces.
            ext = await self.extractor.complete(
                extractor_request(node.question, node.choices, reply),
                sample=sample if self.always_extract else 0,
            )
            via = parse_answer(ext, node.choices)
            if via.index is not None and via.index != index:
                index, status = via.index, "extracted"
        return {
            "choice": index,
            "status": status,
            "correct": index == node.answer,
            "reply": reply[-300:],
        }
