"""Requests of every role for free-form questions (numeric, short answers, a plugin's shape).

They mirror :mod:`cdvkit.prompts` (multiple choice) with the answer given as a number or a short
text instead of a letter, and with the wrong answers to aim at named by their text. Each asks
the question's shape which template its role uses (a shape's own, else the shared free-form
one); the templates live with every other in :mod:`cdvkit.prompts.templates`. The simulated
server (bench/_fakeserver.py) reads the default system prompts' wording to tell the roles apart.
"""

from __future__ import annotations

import json
from typing import Any

from cdvkit.models.base import GenerateRequest
from cdvkit.prompts import (
    MalformedJSON,
    clean_proposal,
    parse_json_object,
    render_request,
    with_defense,
)
from cdvkit.prompts.templates import DEFAULT_PROMPTS, PromptSet
from cdvkit.tasks.base import shape_of


def free_target_system(task: str, prompts: PromptSet = DEFAULT_PROMPTS) -> str:
    return prompts[shape_of(task).template("target")].system.format()


def free_target_request(
    question: str,
    task: str,
    *,
    temperature: float,
    defense: str = "",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    name = shape_of(task).template("target")
    return GenerateRequest.make(
        with_defense(prompts.render(name, question=question.strip()), defense),
        temperature=temperature,
        max_tokens=prompts.tokens(name),
    )


def free_extractor_request(
    question: str, task: str, reply: str, *, prompts: PromptSet = DEFAULT_PROMPTS
) -> GenerateRequest:
    values = {"question": question.strip(), "reply": reply[-4000:]}
    return render_request(prompts, shape_of(task).template("extractor"), values, temperature=0.0)


def grader_request(
    question: str,
    references: tuple[str, ...],
    reply: str,
    *,
    task: str = "short_answer",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    aliases = f" (also accepted: {'; '.join(references[1:6])})" if len(references) > 1 else ""
    values = {
        "question": question.strip(),
        "answer": references[0],
        "aliases": aliases,
        "reply": reply[-4000:],
    }
    return render_request(prompts, shape_of(task).template("grader"), values, temperature=0.0)


def wrong_answers_request(
    question: str,
    task: str,
    reference: str,
    k: int,
    *,
    temperature: float = 0.7,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {
        "question": question.strip(),
        "answer": reference,
        "k": k,
        "kind": shape_of(task).wrong_kind,
    }
    name = shape_of(task).template("wrong_answers")
    return render_request(prompts, name, values, temperature=temperature, sized=40 + 20 * k)


def parse_wrong_answers(text: str) -> list[str]:
    """The wrong answers of a reply ([] when it holds none): JSON first, else one per line."""
    try:
        obj: Any = parse_json_object(text).get("wrong_answers")
    except MalformedJSON:
        start, end = text.find("["), text.rfind("]")
        try:
            obj = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            obj = None
    if not isinstance(obj, list):
        return []
    return [str(a).strip() for a in obj if isinstance(a, str | int | float) and str(a).strip()]


def free_proposer_request(
    question: str,
    reference: str,
    wrong: str,
    *,
    task: str = "short_answer",
    temperature: float = 0.7,
    sample: int = 0,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {"question": question.strip(), "answer": reference, "wrong": wrong, "wrongs": wrong}
    name = shape_of(task).template("proposer")
    return render_request(prompts, name, values, temperature=temperature, first_sample=sample)


def free_proposer_batch_request(
    question: str,
    reference: str,
    wrongs: list[str],
    *,
    task: str = "short_answer",
    temperature: float = 0.7,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {
        "question": question.strip(),
        "answer": reference,
        "wrong": wrongs[0] if wrongs else "",
        "wrongs": "\n".join(f"{i}. {w}" for i, w in enumerate(wrongs, start=1)),
    }
    return render_request(
        prompts,
        shape_of(task).template("proposer_batch"),
        values,
        temperature=temperature,
        sized=60 + 80 * len(wrongs),
    )


def parse_numbered_proposals(text: str) -> dict[int, str]:
    """Number -> sentence from a batched reply; {} when it holds no JSON object."""
    try:
        obj = parse_json_object(text)
    except MalformedJSON:
        return {}
    out: dict[int, str] = {}
    for k, v in obj.items():
        key = str(k).strip().rstrip(".")
        if isinstance(v, str) and key.isdigit():
            out[int(key)] = clean_proposal(v)
    return out


def free_judge_request(
    original_question: str,
    reference: str,
    distracted_question: str,
    *,
    task: str = "short_answer",
    prompt: str = "standard",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {
        "original": original_question.strip(),
        "answer": reference,
        "distracted": distracted_question,
    }
    name = shape_of(task).template("judge", prompt)
    return render_request(prompts, name, values, temperature=0.0)
