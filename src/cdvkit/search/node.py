"""A node of a question's search tree."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from cdvkit.data.question import MULTIPLE_CHOICE, Question
from cdvkit.outcome import AnswerRecord, OutcomeRecord
from cdvkit.tasks import AnswerKey


class NodeState(StrEnum):
    """A node's status; the value is what the store, the exports and the reports hold."""

    ROOT = "root"
    OPEN = "open"  # valid, target still right sometimes: may be expanded
    GOOD = "good"  # valid, and the target fails it under the protocol: a CDV example
    REJECTED = "rejected"  # a constraint said no
    DUPLICATE = "duplicate"  # same text as a node already in this tree
    ERROR = "error"  # a model call failed for good


ROOT, OPEN, GOOD, REJECTED, DUPLICATE, ERROR = NodeState


class NodeOutputs(TypedDict, total=False):
    """What a node keeps of how it was scored (stored as JSON with the node).

    ``mode``, ``answers`` and ``probs``: the search's score (GoalResult.to_outputs); ``verify``:
    the protocol's verdict when it was asked (an Outcome's record); ``required`` and ``targets``:
    a multi-target score, each target's under its name; ``error``: the call that failed."""

    mode: str
    answers: list[AnswerRecord]
    probs: list[float]
    verify: OutcomeRecord
    required: int
    targets: dict[str, Any]
    error: str


@dataclass
class Node:
    path: str
    depth: int
    question: str
    choices: tuple[str, ...]
    answer: int
    parent_path: str | None = None
    distraction: str | None = None
    placement: str | None = None
    target_option: str | None = None
    status: NodeState = NodeState.OPEN
    # The search's score (GoalResult.score: P(correct), or the share of right answers); stored
    # and exported under the name "rate", as the reference implementation called it.
    score: float | None = None
    # None: never a candidate; True: the protocol confirmed the target fails it; False: the
    # search's score said so but the protocol did not (the node stays open).
    verified: bool | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)
    outputs: NodeOutputs = field(default_factory=NodeOutputs)
    # A free-form question's shape and accepted answers (its choices are empty); kept with the
    # question in the store, so a node's record does not repeat them.
    task: str = MULTIPLE_CHOICE
    references: tuple[str, ...] = ()

    @classmethod
    def root(cls, q: Question) -> Node:
        # Root depth is 1 so the paper's priority exp(K/rate) * depth**-N is finite for it.
        return cls(
            path="r",
            depth=1,
            question=q.question,
            choices=q.choices,
            answer=q.answer,
            status=ROOT,
            task=q.task,
            references=q.references,
        )

    @property
    def key(self) -> AnswerKey | None:
        """What answers the node right when it is free-form; None for multiple choice."""
        return AnswerKey(self.task, self.references) if not self.choices else None

    @property
    def rate(self) -> float | None:
        """The node's score under the name the store, the exports and the paper give it."""
        return self.score

    @property
    def wrong_indices(self) -> list[int]:
        return [i for i in range(len(self.choices)) if i != self.answer]

    def rng(self, seed: int, question_id: str, salt: str = "") -> random.Random:
        """Randomness tied to the node's place in the tree, so a resumed run makes the same tree."""
        return random.Random(f"{seed}|{question_id}|{self.path}|{salt}")

    def to_record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "parent_path": self.parent_path,
            "depth": self.depth,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
            "distraction": self.distraction,
            "placement": self.placement,
            "target_option": self.target_option,
            "status": self.status,
            "rate": self.score,
            "verified": self.verified,
            "verdicts": self.verdicts,
            "outputs": self.outputs,
        }


def token_length(text: str) -> int:
    """Model-agnostic length: whitespace tokens. Good enough for a ratio limit between siblings."""
    return len(text.split())
