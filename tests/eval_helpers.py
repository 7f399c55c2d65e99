"""Small finished runs made by the real search with scripted models, for evaluation and reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cdvkit.data.question import LETTERS, Question
from cdvkit.models.base import MCQ, GenerateRequest, Message
from cdvkit.models.scripted import REGISTRY
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from scripted_helpers import MARK, SKY, marking_proposer, oracle_responder, per_option, scripted

QUESTIONS = [
    SKY,
    Question("grass", "What color is fresh grass?", ("purple", "green", "black"), 1, source="bio"),
    Question("snow", "What color is fresh snow?", ("white", "blue", "orange"), 0, source="bio"),
]

# Model text that must never reach a report as markup.
XSS_REPLY = '<script>alert("reply")</script>'
XSS_DISTRACTION = "</script><script>alert('distraction')</script>"


def xss_target(questions: list[Question]):
    """The oracle, but every reply carries a script tag before its final answer line."""
    inner = oracle_responder(questions)

    def respond(req: GenerateRequest, sample: int) -> str:
        return f"{XSS_REPLY} <b>bold</b>\n{inner(req, sample)}"

    return respond


xss_proposer = per_option(
    lambda wrong: f"{MARK}: people often talk about {wrong} here. {XSS_DISTRACTION}"
)


def defended_responder(questions: list[Question], marker: str):
    """Fooled by distractions unless the system prompt carries ``marker`` (a working defense)."""
    fooled = oracle_responder(questions)
    robust = oracle_responder(questions, fooled_at=99)

    def respond(req: GenerateRequest, sample: int) -> str:
        system = req.messages[0][1]
        return (robust if marker in system else fooled)(req, sample)

    return respond


def oracle_probs(questions: list[Question]):
    """Exact choice probabilities: confident and right, wrong once a distraction is present."""
    by_text = {q.question: q for q in questions}

    def probs(messages: list[Message], mcq: MCQ) -> list[float]:
        original = next(q for t, q in by_text.items() if t in mcq.question)
        right = mcq.choices.index(original.answer_text)
        fooled = MARK in mcq.question
        wrong = next(i for i in range(len(mcq.choices)) if i != right)
        out = [0.05] * len(mcq.choices)
        out[wrong if fooled else right] = 0.9
        return out

    return probs


def register_models(questions: list[Question] = QUESTIONS) -> None:
    """Make `scripted/oracle`, `scripted/robust` and `scripted/prop` loadable by name (CLI)."""
    REGISTRY["oracle"] = oracle_responder(questions)
    REGISTRY["robust"] = oracle_responder(questions, fooled_at=99)
    REGISTRY["prop"] = marking_proposer


async def build_run(
    run_dir: Path,
    *,
    questions: list[Question] = QUESTIONS,
    target=None,
    proposer=None,
    samples: int = 2,
) -> Path:
    cfg = SearchConfig(
        target="scripted/oracle",
        proposer="scripted/prop",
        similarity_floor=0,
        samples=samples,
        max_good=2,
        concurrency=4,
    )
    models = {
        "target": scripted("oracle", target or oracle_responder(questions)),
        "proposer": scripted("prop", proposer or marking_proposer),
    }
    with RunStore(run_dir) as store:
        prepare_store(store, cfg, lambda: questions)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None and outcome.errors == [], outcome
    return run_dir


def make_run(run_dir: Path, **kw) -> Path:
    """Synchronous wrapper for fixtures and CLI tests."""
    return asyncio.run(build_run(run_dir, **kw))


def letter(q: Question, choices: tuple[str, ...]) -> str:
    return LETTERS[choices.index(q.answer_text)]
