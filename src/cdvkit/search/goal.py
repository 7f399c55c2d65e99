"""The goal: how often the target answers a node correctly, measured on that node's own text."""

from __future__ import annotations

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
            replies: list[str] = []
            answers: list[dict[str, Any]] = []
            for i in range(self.samples):
                reply = (await self.client.samples(req, i, 1))[0]
                replies.append(reply)
                answers.append(await self._read(node, reply))
                if answers[-1]["correct"]:
                    # One right answer already rules out rate == 0; the posterior mean keeps the
                    # priority informative without paying for the remaining samples.
                    correct = sum(a["correct"] for a in answers)
                    rate = (correct + 1) / (len(answers) + 2)
                    return GoalResult(rate, False, "sample", answers)
        else:
            replies = await self.client.samples(req, 0, self.samples)
            answers = [await self._read(node, r) for r in replies]
        correct = sum(a["correct"] for a in answers)
        rate = correct / len(answers)
        return GoalResult(rate, correct == 0, "sample", answers)

    async def _read(self, node: Node, reply: str) -> dict[str, Any]:
        parsed = parse_answer(reply, node.choices)
        index, status = parsed.index, parsed.status
        if index is None and status == "unparsed" and self.extractor is not None:
            ext = await self.extractor.complete(
                extractor_request(node.question, node.choices, reply)
            )
            via = parse_answer(ext, node.choices)
            if via.index is not None:
                index, status = via.index, "extracted"
        return {
            "choice": index,
            "status": status,
            "correct": index == node.answer,
            "reply": reply[-300:],
        }
