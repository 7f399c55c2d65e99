"""Constraints a distracted question must pass to count: an example is valid only if all pass.

Each returns a ``Verdict`` that is stored on the node, so a report can show why a child was dropped.
A constraint says whether it calls a model (``calls_model``): local checks run first, and with
``judge_last`` the ones that call a model are asked only about examples and nodes to expand.
Each registers a factory by name (``--constraint NAME:key=value``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from cdvkit.data.question import Question
from cdvkit.models.client import RoleClient
from cdvkit.models.errors import BackendUnavailableError
from cdvkit.prompts import (
    JUDGE_PROMPTS,
    MalformedJSON,
    judge_request,
    read_verdict,
)
from cdvkit.prompts.templates import DEFAULT_PROMPTS, PromptSet
from cdvkit.registry import Registry, factory, option
from cdvkit.search.context import BuildContext
from cdvkit.search.node import Node, token_length
from cdvkit.tasks import shape_of
from cdvkit.tasks.prompts import free_judge_request


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Constraint(Protocol):
    name: str
    calls_model: bool

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict: ...


class LengthRatio:
    """Drop a child much longer than its parent (the reference's 10x token limit)."""

    name = "length"
    calls_model = False

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


class LeakCheck:
    """The distraction must not state (or negate) the correct answer, nor label options."""

    name = "leak"
    calls_model = False

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        d = child.distraction or ""
        # What counts as stating the answer is the shape's: a number in any spelling, a choice's
        # or an alias's words.
        if shape_of(original).leaks(d, original):
            return Verdict(False, "the distraction names the correct answer")
        if _LABELLING.search(d):
            return Verdict(False, "the distraction labels an option as right or wrong")
        return Verdict(True)


class SemanticSimilarity:
    """Distracted and original question must stay close in embedding space (a meaning floor)."""

    name = "similarity"
    calls_model = False  # a local embedding model, no paid call

    def __init__(self, embedder: Any, floor: float = 0.5) -> None:
        self.embedder = embedder
        self.floor = floor

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        import asyncio

        sim = await asyncio.to_thread(self.embedder.similarity, original.question, child.question)
        ok = sim >= self.floor
        return Verdict(ok, "" if ok else f"similarity {sim:.2f} < {self.floor}", float(sim))


class LLMJudge:
    """Asks the judge model whether the added context changes the ORIGINAL question's answer.

    Runs on the judge model (the target's own only when the run says ``--judge target``, as the
    paper's code does). A malformed verdict is asked for again (a new sample) up to ``retries``
    times, then the child is dropped: unverified is not valid. ``prompt`` picks the template
    (``standard``, or ``paper``: only the two questions are shown); the template says which
    JSON key holds the verdict and which value lets the child pass.
    """

    name = "judge"
    calls_model = True

    def __init__(
        self,
        client: RoleClient,
        *,
        retries: int = 3,
        prompt: str = "standard",
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.client = client
        self.retries = retries
        self.prompt = prompt
        self.prompts = prompts

    async def check(self, original: Question, parent: Node, child: Node) -> Verdict:
        p, prompts = self.prompt, self.prompts
        shape = shape_of(original)
        if original.free_form:
            req = free_judge_request(
                original.question,
                original.answer_text,
                child.question,
                task=original.task,
                prompt=p,
                prompts=prompts,
            )
        else:
            req = judge_request(
                original.question,
                original.choices,
                original.answer,
                child.question,
                prompt=p,
                prompts=prompts,
            )
        spec = prompts[shape.template("judge", p)].reply
        last = ""
        for attempt in range(self.retries):
            reply = await self.client.complete(req, sample=attempt)
            try:
                unchanged, reason = read_verdict(spec, reply)
            except KeyError as exc:
                last = f"no {exc} in the reply"
                continue
            except (MalformedJSON, ValueError) as exc:
                last = str(exc)
                continue
            return Verdict(unchanged, reason)
        return Verdict(False, f"judge gave no valid verdict after {self.retries} tries ({last})")


ConstraintFactory = Callable[..., Constraint]  # factory(ctx: BuildContext, **options)
CONSTRAINTS: Registry[ConstraintFactory] = Registry(
    "constraint",
    "cdvkit.constraints",
    accept=factory(
        "a constraint factory (ctx, **options) -> constraint", "ctx", methods=("check",)
    ),
)


LENGTH_OPTIONS = {
    "max_ratio": option(
        10.0,
        "A distracted question is at most this x its parent",
        above=1,
        why="a child is its parent plus a distraction, so 1 or less rejects every child",
    )
}


@CONSTRAINTS.register(
    "length", help="at most max_ratio times the parent's length", options=LENGTH_OPTIONS
)
def _length(ctx: BuildContext, *, max_ratio: float = 10.0) -> Constraint:
    return LengthRatio(max_ratio)


@CONSTRAINTS.register(
    "leak", help="the distraction names no answer and labels no option", options={}
)
def _leak(ctx: BuildContext, **_: Any) -> Constraint:
    return LeakCheck()


SIMILARITY_OPTIONS = {
    "floor": option(0.5, "Embedding similarity floor; 0 turns it off", min=0, below=1)
}


@CONSTRAINTS.register(
    "similarity",
    help="embedding similarity to the original >= floor",
    options=SIMILARITY_OPTIONS,
)
def _similarity(ctx: BuildContext, *, floor: float = 0.5) -> Constraint:
    try:
        from cdvkit.models.embed_backend import get_embedder
    except ImportError as exc:
        raise BackendUnavailableError(
            "the similarity constraint needs sentence-transformers: "
            "pip install 'cdvkit[local]', or pass --similarity-floor 0"
        ) from exc
    return SemanticSimilarity(get_embedder(), floor)


JUDGE_OPTIONS = {
    "model": option(
        None,
        "provider/model of the judge; default the run's --judge ('target': the target's)",
        hint=str | None,
    ),
    "retries": option(3, "Asks for a readable verdict before dropping the child", min=1),
    "prompt": option(
        None,
        "Its template: standard | paper; default the run's --judge-prompt",
        hint=str | None,
        choices=JUDGE_PROMPTS,
    ),
}


@CONSTRAINTS.register(
    "judge", help="an LLM checks the answer is unchanged; model=...", options=JUDGE_OPTIONS
)
def _judge(
    ctx: BuildContext,
    *,
    model: str | None = None,
    retries: int = 3,
    prompt: str | None = None,
) -> Constraint:
    spec = model or ctx.cfg.judge_model
    if spec == "target":
        spec = ctx.cfg.targets[0]  # the first target (a run may have several)
    if not spec:
        raise ValueError("the judge constraint needs a model: judge:model=provider/model")
    return LLMJudge(
        ctx.client("judge", spec),
        retries=retries,
        prompt=ctx.cfg.judge_prompt if prompt is None else prompt,
        prompts=ctx.cfg.prompt_set(),
    )
