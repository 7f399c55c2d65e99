"""Proposers write one distracting sentence aimed at one wrong option (error-guided expansion).

Each registers a factory by name (``--proposer NAME:key=value``); a ``provider/model`` string is
the ``llm`` proposer with that model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cdvkit.data.question import LETTERS, NUMERIC, Question
from cdvkit.models.client import RoleClient
from cdvkit.prompts import (
    clean_proposal,
    parse_batch_proposals,
    proposer_batch_request,
    proposer_request,
)
from cdvkit.registry import Registry
from cdvkit.search.context import BuildContext
from cdvkit.search.node import Node
from cdvkit.tasks.numeric import reference_number
from cdvkit.tasks.prompts import (
    free_proposer_batch_request,
    free_proposer_request,
    parse_numbered_proposals,
    parse_wrong_answers,
    wrong_answers_request,
)


@dataclass(frozen=True)
class ProposalContext:
    original: Question
    node: Node
    target: int  # index, in node.choices, of the wrong option to make plausible (NO_CHOICE: free)
    rng: random.Random
    attempt: int = 0
    wrong: str = ""  # the wrong answer to make plausible, as text (an option's, or a free one)
    wrongs: tuple[str, ...] = ()  # every wrong answer aimed at from this node, in order

    @property
    def wrong_text(self) -> str:
        return self.wrong or self.node.choices[self.target]


class Proposer(Protocol):
    """Writes the distracting sentences. A proposer for free-form questions may also offer
    ``async wrong_answers(ctx, k) -> list[str]``: plausible wrong answers to aim at when the
    target's own wrong answers are too few."""

    name: str

    async def propose(self, ctx: ProposalContext) -> str:
        """One sentence of context; empty string when nothing usable came back."""
        ...


TEMPLATES: tuple[str, ...] = (
    "A friend recently brought up {opt} while we were talking about something similar.",
    "Many discussions of this topic end up mentioning {opt}.",
    "It is worth noting that {opt} often comes up in conversations like this one.",
    "An article I read last week was all about {opt}.",
    "In a related conversation, someone kept coming back to {opt}.",
    "People who think about this kind of situation frequently picture {opt}.",
    "My notes from a lecture on a nearby subject have a whole page on {opt}.",
    "A colleague mentioned {opt} this morning, which got me thinking.",
)


class TemplateProposer:
    """Needs no model: a seeded choice among fixed phrasings that mention the wrong option.

    It is the offline default and a baseline: an LLM proposer should beat it.
    """

    name = "template"

    def __init__(self, templates: tuple[str, ...] = TEMPLATES) -> None:
        self.templates = templates

    async def propose(self, ctx: ProposalContext) -> str:
        opt = ctx.wrong_text.strip().rstrip(".")
        return ctx.rng.choice(self.templates).format(opt=opt)

    async def wrong_answers(self, ctx: ProposalContext, k: int) -> list[str]:
        """Near misses of a numeric reference from common slips (off by one, doubled, halved,
        a factor of ten); nothing for short answers, which need a model to invent."""
        return near_misses(ctx.original, k, ctx.rng)


class LLMProposer:
    """The paper's proposer: an LLM writes one subtle sentence for the targeted wrong option."""

    def __init__(
        self, client: RoleClient, *, temperature: float = 0.7, batch: bool = False
    ) -> None:
        self.client = client
        self.temperature = temperature
        self.batch = batch
        self.name = client.name

    async def wrong_answers(self, ctx: ProposalContext, k: int) -> list[str]:
        # Asked about the original question, so every node of a tree shares one paid call.
        q = ctx.original
        req = wrong_answers_request(
            q.question, q.task, q.answer_text, k, temperature=self.temperature
        )
        return parse_wrong_answers(await self.client.complete(req))

    async def propose(self, ctx: ProposalContext) -> str:
        node = ctx.node
        if node.key is not None:
            return await self._propose_free(ctx)
        if self.batch:
            # Every wrong option of the node builds the same request, so the options' concurrent
            # propose() calls share one paid call (the client deduplicates requests in flight and
            # caches the reply); each reads its own sentence from the JSON.
            req = proposer_batch_request(
                node.question,
                node.choices,
                node.answer,
                node.wrong_indices,
                temperature=self.temperature,
            )
            text = await self.client.complete(req, sample=ctx.attempt)
            return parse_batch_proposals(text).get(LETTERS[ctx.target], "")
        # Same node text and target give the same request: served from the cache, never paid twice.
        req = proposer_request(
            node.question,
            node.choices,
            node.answer,
            ctx.target,
            temperature=self.temperature,
        )
        text = await self.client.complete(req, sample=ctx.attempt)
        return clean_proposal(text)

    async def _propose_free(self, ctx: ProposalContext) -> str:
        node, reference = ctx.node, ctx.original.answer_text
        if self.batch and ctx.wrongs:
            req = free_proposer_batch_request(
                node.question, reference, list(ctx.wrongs), temperature=self.temperature
            )
            text = await self.client.complete(req, sample=ctx.attempt)
            return parse_numbered_proposals(text).get(ctx.wrongs.index(ctx.wrong) + 1, "")
        req = free_proposer_request(
            node.question, reference, ctx.wrong, temperature=self.temperature
        )
        return clean_proposal(await self.client.complete(req, sample=ctx.attempt))


def near_misses(q: Question, k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` wrong numbers a careless solver of ``q`` might give (numeric questions only)."""
    if q.task != NUMERIC:
        return []
    value = reference_number(q.answer_text)
    if value is None:
        return []
    slips = [value + 1, value - 1, value * 2, value / 2, value + 10, value * 10, value - 10]
    out: list[str] = []
    for v in slips:
        if value >= 0 > v or v == value:
            continue  # a negative count or the answer itself is no plausible slip
        text = f"{v:.4f}".rstrip("0").rstrip(".")
        if text not in out:
            out.append(text)
    rng.shuffle(out)
    return out[:k]


ProposerFactory = Callable[..., Proposer]  # factory(ctx: BuildContext, **options)
PROPOSERS: Registry[ProposerFactory] = Registry("proposer", "cdvkit.proposers")


@PROPOSERS.register("template", help="fixed phrasings naming the wrong option (offline, no model)")
def _template(ctx: BuildContext, **_: Any) -> Proposer:
    return TemplateProposer()


@PROPOSERS.register(
    "llm", help="an LLM writes one subtle sentence per wrong option (the paper's); model=..."
)
def _llm(
    ctx: BuildContext,
    *,
    model: str,
    temperature: float | None = None,
    batch: bool | None = None,
) -> Proposer:
    return LLMProposer(
        ctx.client("proposer", model),
        temperature=ctx.cfg.proposer_temperature if temperature is None else temperature,
        batch=ctx.cfg.proposer_batch if batch is None else batch,
    )
