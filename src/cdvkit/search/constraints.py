"""Constraints a distracted question must pass to count: an example is valid only if all pass.

Each returns a ``Verdict`` that is stored on the node, so a report can show why a child was dropped.
Cheap local checks carry a lower ``cost`` and run before model-based ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from cdvkit.data.question import Question
from cdvkit.models.client import RoleClient
from cdvkit.prompts import MalformedJSON, judge_request, parse_json_object
from cdvkit.search.node import Node, token_length


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Constraint(Protocol):
    name: str
    cost: int

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict: ...


class LengthRatio:
    """Drop a child much longer than its parent (the reference's 10x token limit)."""

    name = "length"
    cost = 0

    def __init__(self, max_ratio: float = 10.0) -> None:
        self.max_ratio = max_ratio

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        ratio = token_length(child.question) / max(token_length(parent.question), 1)
        ok = ratio <= self.max_ratio
        return Verdict(ok, "" if ok else f"{ratio:.1f}x the parent's length", ratio)


_LABELLING = re.compile(
    r"\b(correct|incorrect|wrong|right) (answer|option|choice)\b|\bthe answer is\b|"
    r"\boption [A-Z]\b|\b(choice|answer) [A-Z]\b",
    re.IGNORECASE,
)


def _mentions(text: str, phrase: str) -> bool:
    phrase = phrase.strip().rstrip(".").lower()
    if len(phrase) < 3:  # one- or two-letter choices match everywhere; nothing to check
        return False
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text.lower()) is not None


class LeakCheck:
    """The distraction must not state (or negate) the correct answer, nor label options."""

    name = "leak"
    cost = 0

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        d = child.distraction or ""
        answer = original.answer_text
        if _mentions(d, answer) and not _mentions(original.question, answer):
            return Verdict(False, "the distraction names the correct answer")
        if _LABELLING.search(d):
            return Verdict(False, "the distraction labels an option as right or wrong")
        return Verdict(True)


class SemanticSimilarity:
    """Distracted and original question must stay close in embedding space (a meaning floor)."""

    name = "similarity"
    cost = 1

    def __init__(self, embedder: Any, floor: float = 0.5) -> None:
        self.embedder = embedder
        self.floor = floor

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        import asyncio

        sim = await asyncio.to_thread(self.embedder.similarity, original.question, child.question)
        ok = sim >= self.floor
        return Verdict(ok, "" if ok else f"similarity {sim:.2f} < {self.floor}", float(sim))


def _yes_no(value: Any) -> bool:
    """A verdict's true/false; anything else (null, "maybe", a list) is no verdict at all."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().strip(".").lower()
        if word in ("true", "yes"):
            return True
        if word in ("false", "no"):
            return False
    raise ValueError(f"changes_answer is not true or false: {str(value)[:40]!r}")


class LLMJudge:
    """Asks the judge model whether the added context changes the ORIGINAL question's answer.

    Runs on the judge model, never implicitly on the target. A malformed verdict is asked for again
    (a new sample) up to ``retries`` times, then the child is dropped: unverified is not valid.
    """

    name = "judge"
    cost = 2

    def __init__(self, client: RoleClient, *, retries: int = 3) -> None:
        self.client = client
        self.retries = retries

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        req = judge_request(original.question, original.choices, original.answer, child.question)
        last = ""
        for attempt in range(self.retries):
            reply = await self.client.complete(req, sample=attempt)
            try:
                obj = parse_json_object(reply)
                changes = _yes_no(obj["changes_answer"])
                reason = str(obj.get("reason", ""))
            except (MalformedJSON, KeyError, ValueError) as exc:
                last = str(exc)
                continue
            return Verdict(not changes, reason)
        return Verdict(False, f"judge gave no valid verdict after {self.retries} tries ({last})")
