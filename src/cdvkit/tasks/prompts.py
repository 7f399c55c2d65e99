"""Requests of every role for free-form questions (numeric and short answers).

They mirror :mod:`cdvkit.prompts` (multiple choice) with the answer given as a number or a short
text instead of a letter, and with the wrong answers to aim at named by their text; their
templates live with every other in :mod:`cdvkit.prompts.templates`. The simulated server
(bench/_fakeserver.py) reads the default system prompts' wording to tell the roles apart.
"""

from __future__ import annotations

import json
from typing import Any

from cdvkit.data.question import NUMERIC
from cdvkit.models.base import GenerateRequest
from cdvkit.prompts import (
    MalformedJSON,
    clean_proposal,
    judge_template,
    parse_json_object,
    render_request,
    with_defense,
)
from cdvkit.prompts.templates import DEFAULT_PROMPTS, PromptSet


def free_target_system(task: str, prompts: PromptSet = DEFAULT_PROMPTS) -> str:
    return prompts[f"target.{task}"].system.format()


def free_target_request(
    question: str,
    task: str,
    *,
    temperature: float,
    defense: str = "",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    name = f"target.{task}"
    return GenerateRequest.make(
        with_defense(prompts.render(name, question=question.strip()), defense),
        temperature=temperature,
        max_tokens=prompts.tokens(name),
    )


def free_extractor_request(
    question: str, task: str, reply: str, *, prompts: PromptSet = DEFAULT_PROMPTS
) -> GenerateRequest:
    values = {"question": question.strip(), "reply": reply[-4000:]}
    return render_request(prompts, f"extractor.{task}", values, temperature=0.0)


def grader_request(
    question: str,
    references: tuple[str, ...],
    reply: str,
    *,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    aliases = f" (also accepted: {'; '.join(references[1:6])})" if len(references) > 1 else ""
    values = {
        "question": question.strip(),
        "answer": references[0],
        "aliases": aliases,
        "reply": reply[-4000:],
    }
    return render_request(prompts, "grader.free", values, temperature=0.0)


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
        "kind": "numbers" if task == NUMERIC else "answers",
    }
    return render_request(
        prompts, "wrong_answers.free", values, temperature=temperature, sized=40 + 20 * k
    )


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
    temperature: float = 0.7,
    sample: int = 0,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {"question": question.strip(), "answer": reference, "wrong": wrong, "wrongs": wrong}
    return render_request(
        prompts, "proposer.free", values, temperature=temperature, first_sample=sample
    )


def free_proposer_batch_request(
    question: str,
    reference: str,
    wrongs: list[str],
    *,
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
        "proposer.free_batch",
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
    prompt: str = "standard",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {
        "original": original_question.strip(),
        "answer": reference,
        "distracted": distracted_question,
    }
    return render_request(prompts, judge_template(prompt, free_form=True), values, temperature=0.0)
