"""Proposers write one distracting sentence aimed at one wrong option (error-guided expansion).

Each registers a factory by name (``--proposer NAME:key=value``); a ``provider/model`` string is
the ``llm`` proposer with that model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cdvkit.data.question import LETTERS, Question
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


@dataclass(frozen=True)
class ProposalContext:
    original: Question
    node: Node
    target: int  # index, in node.choices, of the wrong option to make plausible
    rng: random.Random
    attempt: int = 0


class Proposer(Protocol):
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
        opt = ctx.node.choices[ctx.target].strip().rstrip(".")
        return ctx.rng.choice(self.templates).format(opt=opt)


class LLMProposer:
    """The paper's proposer: an LLM writes one subtle sentence for the targeted wrong option."""

    def __init__(
        self, client: RoleClient, *, temperature: float = 0.7, batch: bool = False
    ) -> None:
        self.client = client
        self.temperature = temperature
        self.batch = batch
        self.name = client.name

    async def propose(self, ctx: ProposalContext) -> str:
        node = ctx.node
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
