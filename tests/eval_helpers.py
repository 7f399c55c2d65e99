"""Small finished runs made by the real search with scripted models, for evaluation and reports."""

from __future__ import annotations

import asyncio
import json
import re
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
    choice_order: str = "keep",
) -> Path:
    cfg = SearchConfig(
        target="scripted/oracle",
        proposer="scripted/prop",
        similarity_floor=0,
        samples=samples,
        max_good=2,
        concurrency=4,
        choice_order=choice_order,
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


# --- a hand-built world with hand-computed numbers ----------------------------------------------
# Six questions of one dataset: three with an example (their choices reversed), one searched
# without one, one the target failed undistracted (its root node stored), one a prefilter skipped.
WORLD = [
    Question("w1", "Which planet is called the red planet?", ("Venus", "Mars", "Jupiter"), 1,
             source="quiz", subject="space"),
    Question("w2", "How many legs does a spider have?", ("six", "eight", "ten"), 1,
             source="quiz", subject="nature"),
    Question("w3", "What gas do plants take in?", ("oxygen", "nitrogen", "carbon dioxide"), 2,
             source="quiz", subject="nature"),
    Question("w4", "Which metal is liquid at room temperature?", ("iron", "mercury", "tin"), 1,
             source="quiz", subject="space"),
    Question("w5", "What is the largest ocean?", ("Pacific", "Atlantic", "Indian"), 0,
             source="quiz", subject="nature"),
    Question("w6", "Which star is closest to Earth?", ("Sirius", "the Sun", "Vega"), 1,
             source="quiz", subject="space"),
]  # fmt: skip
WITH_EXAMPLE = ("w1", "w2", "w3")

# The evaluated model's outcomes per question: right (True) or wrong on the original, on the
# original with the example's choice order, and on the example. Hand-computed from these:
#   every question: w1 w2 w3 w5 w6 right, w4 wrong               -> original 5/6
#   with an example: original 3/3, distracted 1/3 (w3)            -> drop 2/3
#   order control: reordered 2/3 (w2 wrong)                        -> order part 1/3, rest 1/3
#   the paper: enhanced over w1 w2 w3 + w5 as itself = 2/4 (w3, w5) -> drop 5/6 - 1/2 = 1/3
#   by subject: space (w1 w4 w6) all 2/3, nature (w2 w3 w5) all 3/3
EVALUATED = {
    "w1": (True, True, False),
    "w2": (True, False, False),
    "w3": (True, True, True),
    "w4": (False, None, None),
    "w5": (True, None, None),
    "w6": (True, None, None),
}


def world_node(q: Question, path: str, depth: int, status: str, text: str, choices) -> dict:
    return {
        "path": path,
        "parent_path": None if depth == 1 else "r",
        "depth": depth,
        "question": text,
        "choices": list(choices),
        "answer": list(choices).index(q.answer_text),
        "distraction": None if depth == 1 else f"{MARK}: a sentence.",
        "placement": None if depth == 1 else "prefix",
        "target_option": None,
        "status": status,
        "rate": 0.0,
        "verified": True,
        "verdicts": {},
        "outputs": {},
    }


def build_world(run_dir: Path, *, proposer: str = "scripted/prop", status: str = "good") -> Path:
    """The six questions as a finished run of target `scripted/wtarget` (2 samples, letter
    prompt, extractor `scripted/wext`), written straight into the store: the search is not what
    is tested here. ``proposer`` and ``status`` make it a rewrite baseline's run."""
    from cdvkit.store.status import QuestionStatus as S

    with RunStore(run_dir) as store:
        store.add_questions(WORLD)
        store.set_config(
            {
                "data": "world.jsonl",
                "target": "scripted/wtarget",
                "proposer": proposer,
                "extractor": "scripted/wext",
                "protocol": "sample",
                "samples": 2,
                "temperature": 0.01,
                "target_prompt": "letter",
            }
        )
        for q in WORLD:
            root = world_node(q, "r", 1, "root", q.question, q.choices)
            store.save_node(q.id, root)
            if q.id in WITH_EXAMPLE:
                text = f"{MARK}: a sentence. {q.question}"
                store.save_node(
                    q.id, world_node(q, "r.0", 2, status, text, tuple(reversed(q.choices)))
                )
        for q in WORLD:
            state = {"w5": S.ORIGINAL_FAILED, "w6": S.SKIPPED}.get(q.id, S.DONE)
            store.set_question_status(q.id, state, original_rate=0.0 if q.id == "w5" else 1.0)
    return run_dir


def world_responder(outcomes: dict[str, tuple]):
    """Answers each form of a WORLD question right or wrong as ``outcomes`` says (original,
    reordered original, example), giving the choice by its text as the paper's format does."""
    by_text = {q.question: q for q in WORLD}

    def respond(req: GenerateRequest, sample: int) -> str:
        mcq = req.mcq
        q = next(q for t, q in by_text.items() if t in mcq.question)
        if MARK in mcq.question:
            right = outcomes[q.id][2]
        elif tuple(mcq.choices) != q.choices:
            right = outcomes[q.id][1]
        else:
            right = outcomes[q.id][0]
        pick = q.answer_text if right else next(c for c in q.choices if c != q.answer_text)
        return f"Let me think step by step.\n\nThe final answer is: **'{pick}'**"

    return respond


# The run's target: right on every original but w5's (it failed it), wrong on every example.
TARGET_OUTCOMES = {q.id: (q.id != "w5", True, False) for q in WORLD}


def world_extractor(req: GenerateRequest, sample: int) -> str:
    """Names the choice the reply gave, as JSON (the paper's extractor reply)."""
    text = req.messages[-1][1]
    picked = re.findall(r"\*\*'(.+?)'\*\*", text)
    return json.dumps({"final_answer": picked[-1] if picked else ""})


def register_world() -> None:
    REGISTRY["weval"] = world_responder(EVALUATED)
    REGISTRY["wtarget"] = world_responder(TARGET_OUTCOMES)
    REGISTRY["wext"] = world_extractor
