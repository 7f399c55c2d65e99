"""Scripted models that know the answers, shared by search and resume tests."""

from __future__ import annotations

import json
from pathlib import Path

from cdvkit.data.question import LETTERS, Question
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import ScriptedModel

MARK = "DISTRACT"

SKY = Question(
    id="sky",
    question="What color is the sky on a clear day?",
    choices=("blue", "green", "red", "yellow"),
    answer=0,
    source="test",
)


def write_questions(path: Path, questions: list[Question]) -> Path:
    """``questions`` as a JSONL dataset file (question, choices, answer index), for `--data`."""
    path.write_text(
        "".join(
            json.dumps({"question": q.question, "choices": list(q.choices), "answer": q.answer})
            + "\n"
            for q in questions
        )
    )
    return path


def oracle_responder(questions: list[Question], *, fooled_at: int = 1, mark: str = MARK):
    """Answers right unless the question carries ``fooled_at`` or more distraction marks.

    The answer is found by the original question's text, which every distracted version contains,
    and reported by letter in the node's own (shuffled) choice order.
    """
    by_text = {q.question: q for q in questions}

    def respond(req: GenerateRequest, sample: int) -> str:
        mcq = req.mcq
        assert mcq is not None, "target prompts carry the structured question"
        original = next(q for t, q in by_text.items() if t in mcq.question)
        if mcq.question.count(mark) >= fooled_at:
            wrong = next(c for c in mcq.choices if c != original.answer_text)
            return f"I think so. Answer: {LETTERS[mcq.choices.index(wrong)]}"
        return f"Step by step... Answer: {LETTERS[mcq.choices.index(original.answer_text)]}"

    return respond


def wrong_options(req: GenerateRequest) -> dict[str, str]:
    """Letter -> text of the wrong options a proposer request asks about (one or all of them)."""
    user = req.messages[-1][1]
    if "Wrong options to make plausible:\n" in user:  # the batched proposer
        listed = user.split("Wrong options to make plausible:\n")[1].split("\n\n")[0]
        return {line[0]: line[3:] for line in listed.split("\n")}
    return {"": user.split("Wrong option to make plausible: ")[1].split("\n")[0]}


def per_option(sentence):
    """A proposer responder from ``sentence(wrong option text) -> str``, for either request form:
    the one-option request gets the sentence, the batched one a JSON object by letter."""

    def respond(req: GenerateRequest, sample: int) -> str:
        options = wrong_options(req)
        if "" in options:
            return sentence(options[""])
        return json.dumps({letter: sentence(text) for letter, text in options.items()})

    return respond


marking_proposer = per_option(lambda wrong: f"{MARK}: people often talk about {wrong} here.")


def judge_says(changes: bool):
    return lambda req, i: json.dumps({"changes_answer": changes, "reason": "scripted"})


def scripted(name: str, responder, **kw) -> ScriptedModel:
    return ScriptedModel(f"scripted/{name}", responder=responder, **kw)
