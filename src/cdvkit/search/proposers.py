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
    PROPOSER_PROMPTS,
    choice_values,
    parse_batch_proposals,
    proposer_batch_request,
    proposer_request,
    read_rewrite,
    read_sentence,
    render_request,
)
from cdvkit.prompts.templates import DEFAULT_PROMPTS, PromptSet
from cdvkit.registry import Registry, factory, option
from cdvkit.search.context import BuildContext
from cdvkit.search.node import Node
from cdvkit.search.setting import TEMPERATURE
from cdvkit.tasks import shape_of
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
        self,
        client: RoleClient,
        *,
        temperature: float = 0.7,
        batch: bool = False,
        prompt: str = "standard",
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.client = client
        self.temperature = temperature
        # The paper's template writes for one option at a time and shows no choices, so it
        # has no batched form.
        self.batch = batch and prompt != "paper"
        self.prompt = prompt
        self.prompts = prompts
        self.name = client.name

    async def wrong_answers(self, ctx: ProposalContext, k: int) -> list[str]:
        # Asked about the original question, so every node of a tree shares one paid call.
        q = ctx.original
        req = wrong_answers_request(
            q.question, q.task, q.answer_text, k, temperature=self.temperature, prompts=self.prompts
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
                prompts=self.prompts,
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
            prompt=self.prompt,
            prompts=self.prompts,
        )
        text = await self.client.complete(req, sample=ctx.attempt)
        name = "proposer.paper" if self.prompt == "paper" else "proposer.one"
        return read_sentence(self.prompts[name].reply, text)

    async def _propose_free(self, ctx: ProposalContext) -> str:
        node, reference = ctx.node, ctx.original.answer_text
        if self.batch and ctx.wrongs:
            req = free_proposer_batch_request(
                node.question,
                reference,
                list(ctx.wrongs),
                task=node.task,
                temperature=self.temperature,
                prompts=self.prompts,
            )
            text = await self.client.complete(req, sample=ctx.attempt)
            return parse_numbered_proposals(text).get(ctx.wrongs.index(ctx.wrong) + 1, "")
        req = free_proposer_request(
            node.question,
            reference,
            ctx.wrong,
            task=node.task,
            temperature=self.temperature,
            prompts=self.prompts,
        )
        text = await self.client.complete(req, sample=ctx.attempt)
        return read_sentence(self.prompts[shape_of(node.task).template("proposer")].reply, text)


class RewriteProposer:
    """The paper's lengthening baselines: a model rewrites the whole original question once
    (a ten-times-longer paraphrase, or background sentences and practical examples around it),
    with no search; the run's evaluation then compares that naive lengthening with CDV search."""

    rewrites = True

    def __init__(
        self,
        client: RoleClient,
        template: str,
        *,
        temperature: float = 0.7,
        prompts: PromptSet = DEFAULT_PROMPTS,
    ) -> None:
        self.client = client
        self.template = template
        self.temperature = temperature
        self.prompts = prompts
        self.name = template.split(".", 1)[1].replace("_", "-")

    async def propose(self, ctx: ProposalContext) -> str:
        q = ctx.original
        values = {
            "question": q.question.strip(),
            "answer": q.answer_text,
            **choice_values(q.choices),
        }
        req = render_request(
            self.prompts,
            self.template,
            values,
            temperature=self.temperature,
            first_sample=ctx.attempt,
        )
        text = await self.client.complete(req, sample=ctx.attempt)
        return read_rewrite(self.prompts[self.template].reply, text)


def near_misses(q: Question, k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` wrong answers a careless solver of ``q`` might give, as its shape finds them
    without a model (a number's slips; none for most shapes), in a seeded order."""
    out = shape_of(q).near_misses(q.answer_text)
    rng.shuffle(out)
    return out[:k]


# Proposers that rewrite a whole question once (the paper's lengthening baselines) instead of
# adding one sentence per wrong option: a run with one of them is a baseline, not a search, and
# its evaluation asks each question's rewrite whether or not it fooled the target.
REWRITE_PROPOSERS = frozenset({"paraphrase-long", "background"})


def rewrites(proposer: str | None) -> bool:
    """Whether a run's ``proposer`` setting names a rewrite baseline (see REWRITE_PROPOSERS)."""
    from cdvkit.registry import parse_spec

    return bool(proposer) and parse_spec(str(proposer))[0] in REWRITE_PROPOSERS


ProposerFactory = Callable[..., Proposer]  # factory(ctx: BuildContext, **options)
PROPOSERS: Registry[ProposerFactory] = Registry(
    "proposer",
    "cdvkit.proposers",
    accept=factory("a proposer factory (ctx, **options) -> proposer", "ctx", methods=("propose",)),
)


@PROPOSERS.register(
    "template", help="fixed phrasings naming the wrong option (offline, no model)", options={}
)
def _template(ctx: BuildContext, **_: Any) -> Proposer:
    return TemplateProposer()


# The options of the model-calling proposers, declared once (``cdv parts llm`` lists them).
MODEL_OPTION = option(None, "provider/model that writes the text", hint=str | None, required=True)
TEMPERATURE_OPTION = option(0.7, "Its sampling temperature", allowed=TEMPERATURE)
LLM_OPTIONS = {
    "model": MODEL_OPTION,
    "temperature": TEMPERATURE_OPTION,
    "batch": option(
        True, "One call per node for all wrong options (default), or one per option (false)"
    ),
    "prompt": option(
        None,
        "Its template: standard | paper; default the run's --proposer-prompt",
        hint=str | None,
        choices=PROPOSER_PROMPTS,
    ),
}
REWRITE_OPTIONS = {"model": MODEL_OPTION, "temperature": TEMPERATURE_OPTION}


@PROPOSERS.register(
    "llm",
    help="an LLM writes one subtle sentence per wrong option (the paper's); model=...",
    options=LLM_OPTIONS,
)
def _llm(
    ctx: BuildContext,
    *,
    model: str,
    temperature: float = 0.7,
    batch: bool = True,
    prompt: str | None = None,
) -> Proposer:
    return LLMProposer(
        ctx.client("proposer", model),
        temperature=temperature,
        batch=batch,
        prompt=ctx.cfg.proposer_prompt if prompt is None else prompt,
        prompts=ctx.cfg.prompt_set(),
    )


def _rewrite(template: str) -> Callable[..., Proposer]:
    def factory(
        ctx: BuildContext, *, model: str | None = None, temperature: float = 0.7
    ) -> Proposer:
        if not model:
            raise ValueError(f"the {template} baseline needs a model: NAME:model=provider/model")
        return RewriteProposer(
            ctx.client("proposer", model),
            f"rewrite.{template.replace('-', '_')}",
            temperature=temperature,
            prompts=ctx.cfg.prompt_set(),
        )

    return factory


PROPOSERS.add(
    "paraphrase-long",
    _rewrite("paraphrase-long"),
    help="the paper's baseline: one paraphrase ~10x longer per question, no search; model=...",
    options=REWRITE_OPTIONS,
)
PROPOSERS.add(
    "background",
    _rewrite("background"),
    help="the paper's baseline: background and examples around each question, no search; model=...",
    options=REWRITE_OPTIONS,
)
