"""Small free-form (numeric) runs made by the real search with scripted models."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from cdvkit.data.question import NO_CHOICE, NUMERIC, Question
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import REGISTRY
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from scripted_helpers import MARK, scripted


def numeric(qid: str, text: str, answer: str, **kw) -> Question:
    return Question(qid, text, (), NO_CHOICE, task=NUMERIC, references=(answer,), **kw)


FREE_QUESTIONS = [
    numeric("eggs", "Janet's ducks lay 16 eggs a day. She eats 3. How many are left?", "13"),
    numeric("pens", "A box holds 12 pens. How many pens are in 5 boxes?", "60", source="math"),
    numeric("miles", "A car drives 45 miles an hour for 2 hours. How far does it go?", "90"),
]


def write_free_questions(path: Path, questions: list[Question] = FREE_QUESTIONS) -> Path:
    """``questions`` as a JSONL dataset file (question, answer), for `--data`."""
    path.write_text(
        "".join(
            json.dumps({"id": q.id, "question": q.question, "answer": q.references[0]}) + "\n"
            for q in questions
        )
    )
    return path


def free_oracle(questions: list[Question] = FREE_QUESTIONS, *, fooled_at: int = 1):
    """Answers right ("Answer: N") unless the question carries ``fooled_at`` or more distraction
    marks; fooled, it gives the number the last mark pushes ("... DISTRACT 14 ...")."""
    by_text = {q.question: q for q in questions}

    def respond(req: GenerateRequest, sample: int) -> str:
        user = req.messages[-1][1]
        original = next(q for t, q in by_text.items() if t in user)
        pushed = re.findall(rf"{MARK} (-?[\d.]+)", user)
        if len(pushed) >= fooled_at:
            return f"Let me see, with that in mind it is {pushed[-1]}.\nAnswer: {pushed[-1]}"
        return f"Step by step: the numbers give it.\nAnswer: {original.references[0]}"

    return respond


def free_proposer(req: GenerateRequest, sample: int) -> str:
    """Writes one marked sentence per wrong answer it is asked about; lists near misses."""
    user = req.messages[-1][1]
    if "List " in user and "wrong" in user:
        ref = float(user.split("Correct answer: ", 1)[1].split("\n")[0])
        return json.dumps({"wrong_answers": [f"{ref + 1:g}", f"{ref * 2:g}", f"{ref - 1:g}"]})
    if "Wrong answers to make plausible:\n" in user:
        listed = user.split("Wrong answers to make plausible:\n", 1)[1].split("\n\n")[0]
        rows = [re.match(r"(\d+)\. (.*)", line) for line in listed.split("\n")]
        return json.dumps({m.group(1): f"{MARK} {m.group(2)} came up." for m in rows if m})
    wrong = user.split("Wrong answer to make plausible: ", 1)[1].split("\n")[0]
    return f"{MARK} {wrong} came up."


def register_free_models(questions: list[Question] = FREE_QUESTIONS) -> None:
    """Make `scripted/free-oracle` and `scripted/free-prop` loadable by name (CLI)."""
    REGISTRY["free-oracle"] = free_oracle(questions)
    REGISTRY["free-prop"] = free_proposer


async def build_free_run(
    run_dir: Path, *, questions: list[Question] = FREE_QUESTIONS, samples: int = 2
) -> Path:
    cfg = SearchConfig(
        target="scripted/free-oracle",
        proposer="scripted/free-prop",
        similarity_floor=0,
        samples=samples,
        max_good=2,
        concurrency=4,
    )
    models = {
        "target": scripted("free-oracle", free_oracle(questions)),
        "proposer": scripted("free-prop", free_proposer),
    }
    with RunStore(run_dir) as store:
        prepare_store(store, cfg, lambda: questions)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None and outcome.errors == [], outcome
    return run_dir


def make_free_run(run_dir: Path, **kw) -> Path:
    """A finished numeric run: 3 questions, each with examples the scripted target fails."""
    return asyncio.run(build_free_run(run_dir, **kw))
