"""The goal: does the target fail a node? Scored cheaply to guide the search, confirmed under the
protocol before a node counts as an example.

The search's score (``scoring``) may be cheaper than the protocol users mean: one pass of choice
probabilities (``exact``) instead of several step-by-step answers. It only guides the search and
proposes *candidates*; :meth:`TargetGoal.verify` asks the target under the protocol
(:mod:`cdvkit.protocol`), and only a node that fools it there is an example. When the search
scores with the protocol itself, the verification is that same answer and costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol as Interface

from cdvkit.models.client import RoleClient
from cdvkit.models.errors import UnsupportedError
from cdvkit.outcome import AnswerRecord
from cdvkit.protocol import NEAR_GREEDY, Asker, Outcome, Protocol, exact_outcome
from cdvkit.search.node import Node, NodeOutputs

SEARCH_SCORINGS = ("auto", "sample", "exact")


@dataclass
class GoalResult:
    """The search's score of a node, with what it was computed from, each under its own name."""

    score: float  # orders the search: p_correct (exact scoring) or accuracy (sampled)
    candidate: bool  # the score says the target is fooled; only the protocol can confirm it
    mode: str  # "sample" | "exact"
    answers: list[AnswerRecord] = field(default_factory=list)  # the answers read (sampled)
    probs: list[float] | None = None  # every choice's probability (exact)
    p_correct: float | None = None  # the right choice's probability (exact)
    accuracy: float | None = None  # the share of right answers (sampled)
    outcome: Outcome | None = None  # set when the score is the protocol's own answer

    def to_outputs(self) -> NodeOutputs:
        out: NodeOutputs = {"mode": self.mode, "answers": self.answers}
        if self.probs is not None:
            out["probs"] = self.probs
        return out


class Goal(Interface):
    """What the engine asks of a goal: one target's (``TargetGoal``) or several targets' at once
    (``cdvkit.search.goals_multi.MultiTargetGoal``)."""

    def scores_apart(self, node: Node | None = None) -> bool: ...

    async def evaluate(self, node: Node) -> GoalResult: ...

    async def verify(self, node: Node, scored: GoalResult | None = None) -> Outcome: ...


class TargetGoal:
    """Scores nodes for the search (``evaluate``) and confirms candidates (``verify``).

    A candidate is a node whose most likely choice is wrong (exact scoring; below ``threshold``
    too when one is set), or whose samples are all wrong (sampled scoring, which asks exactly as
    the protocol does). Answers outside the choices, or unreadable, count as wrong and are
    recorded: the denominator is always the number of samples drawn (the reference dropped them).

    ``verifier`` is the client the confirmation is paid through (the same model under another
    role, so its cost shows on its own line); without one the target's client is used.
    """

    def __init__(
        self,
        client: RoleClient,
        *,
        protocol: Protocol | None = None,
        scoring: str = "auto",
        extractor: RoleClient | None = None,
        verifier: RoleClient | None = None,
        grader: RoleClient | None = None,
        # Shorthands for the protocol's fields, for callers that build a goal by hand.
        samples: int | None = None,
        temperature: float | None = None,
        threshold: float | None = None,
        defense: str = "",
        sequential: bool = False,
        always_extract: bool = False,
        batch_samples: bool = True,
    ) -> None:
        if scoring not in SEARCH_SCORINGS:
            raise ValueError(f"scoring must be auto, sample or exact, not {scoring!r}")
        if protocol is None:
            protocol = Protocol(
                samples=samples if samples is not None else 5,
                temperature=temperature if temperature is not None else NEAR_GREEDY,
                threshold=threshold,
                defense=defense,
                sequential=sequential,
                always_extract=always_extract,
                batch_samples=batch_samples,
            )
        self.client = client
        self.protocol = protocol
        self.scoring = scoring
        self.extractor = extractor
        self.asker = Asker(client, protocol, extractor=extractor, grader=grader)
        self.verifier = self.asker.with_client(verifier) if verifier is not None else self.asker

    @property
    def threshold(self) -> float | None:
        return self.protocol.threshold

    def scores_apart(self, node: Node | None = None) -> bool:
        """Whether the search's score is not itself the protocol's answer (so confirming a node
        is a call of its own); a free-form node is always scored by the protocol's samples."""
        if node is not None and node.key is not None:
            return False
        return self._exact() and self.protocol.scoring != "exact"

    def _exact(self) -> bool:
        return self.scoring == "exact" or (
            self.scoring == "auto" and self.client.supports_choice_probs
        )

    async def evaluate(self, node: Node) -> GoalResult:
        """The search's score of ``node``: cheap, and only a guide."""
        key = node.key
        if key is None and self._exact():
            try:
                probs = await self.asker.probs(node.question, node.choices)
            except UnsupportedError:
                if self.scoring == "exact":
                    raise
            else:
                out = exact_outcome(probs, node.answer, self.protocol.threshold)
                same = self.protocol.scoring == "exact"
                return GoalResult(
                    score=probs[node.answer],
                    candidate=out.fooled,
                    mode="exact",
                    probs=probs,
                    p_correct=probs[node.answer],
                    outcome=out if same else None,
                )
        if self.protocol.scoring == "exact" and key is None:
            # The protocol itself needs choice probabilities: no sampled stand-in can confirm it.
            raise UnsupportedError(
                "the protocol is exact (argmax of choice probabilities) but this model gives none; "
                "use --protocol sample",
                model=self.client.name,
            )
        if self.protocol.scoring == "exact":
            raise ValueError(
                f"a {node.task} question has no choices to score exactly; use --protocol sample"
            )
        out = await self.asker.sampled(node.question, node.choices, node.answer, key)
        return GoalResult(
            score=out.accuracy,
            candidate=out.fooled,
            mode="sample",
            answers=out.answer_records(),
            accuracy=out.accuracy,
            outcome=out,
        )

    async def verify(self, node: Node, scored: GoalResult | None = None) -> Outcome:
        """The target's answer to ``node`` under the protocol (free when ``scored`` is it)."""
        if scored is not None and scored.outcome is not None:
            return scored.outcome
        return await self.verifier.ask(node.question, node.choices, node.answer, node.key)
