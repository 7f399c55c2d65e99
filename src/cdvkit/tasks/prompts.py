"""Prompts of every role for free-form questions (numeric and short answers).

They mirror :mod:`cdvkit.prompts` (multiple choice) with the answer given as a number or a short
text instead of a letter, and with the wrong answers to aim at named by their text. The simulated
server (bench/_fakeserver.py) reads the system prompts' wording to tell the roles apart.
"""

from __future__ import annotations

import json
from typing import Any

from cdvkit.data.question import NUMERIC
from cdvkit.models.base import GenerateRequest
from cdvkit.prompts import MalformedJSON, clean_proposal, parse_json_object

_FINAL = {
    NUMERIC: "a final line of the form 'Answer: N' where N is the number alone",
    "short_answer": "a final line of the form 'Answer: X' where X is the answer alone, in a few "
    "words",
}
_KIND = {NUMERIC: "math word problems", "short_answer": "questions"}


def free_target_system(task: str) -> str:
    return f"You answer {_KIND[task]}. Think step by step, then finish with {_FINAL[task]}."


def free_target_request(
    question: str,
    task: str,
    *,
    temperature: float,
    defense: str = "",
    max_tokens: int = 768,
) -> GenerateRequest:
    system = free_target_system(task)
    if defense:
        system = f"{system}\n\n{defense}"
    return GenerateRequest.make(
        [{"role": "system", "content": system}, {"role": "user", "content": question.strip()}],
        temperature=temperature,
        max_tokens=max_tokens,
    )


def free_extractor_request(question: str, task: str, reply: str) -> GenerateRequest:
    what = "number" if task == NUMERIC else "answer, in a few words"
    user = (
        f"Question:\n{question.strip()}\n\nHere is a response to this question:\n<<<\n"
        f"{reply[-4000:]}\n>>>\n\nWhat final answer does the response give? Reply with the {what} "
        "only, or NONE if it gives no single final answer."
    )
    return GenerateRequest.make(
        [
            {"role": "system", "content": "You read the final answer out of free-text replies."},
            {"role": "user", "content": user},
        ],
        temperature=0.0,
        max_tokens=20,
    )


GRADER_SYSTEM = (
    "You grade answers to questions against a reference answer. Decide whether the response's "
    "final answer means the same as the reference answer (aliases and equivalent forms count). "
    'Reply with JSON only: {"correct": true|false, "reason": "<one short sentence>"}'
)


def grader_request(question: str, references: tuple[str, ...], reply: str) -> GenerateRequest:
    aliases = f" (also accepted: {'; '.join(references[1:6])})" if len(references) > 1 else ""
    user = (
        f"Question:\n{question.strip()}\n\nReference answer: {references[0]}{aliases}\n\n"
        f"Response:\n<<<\n{reply[-4000:]}\n>>>\n\nIs the response's final answer correct?"
    )
    return GenerateRequest.make(
        [{"role": "system", "content": GRADER_SYSTEM}, {"role": "user", "content": user}],
        temperature=0.0,
        max_tokens=120,
        json_mode=True,
    )


WRONG_SYSTEM = (
    "You help build a benchmark of contextual distraction for free-form questions. Given a "
    "question and its correct answer, you list plausible WRONG final answers a careless solver "
    "might give: for math, near-miss numbers from a common slip (a skipped step, a wrong "
    "operation, a unit mix-up); otherwise confusable entities or facts. Reply with JSON only: "
    '{"wrong_answers": ["...", "..."]}'
)


def wrong_answers_request(
    question: str, task: str, reference: str, k: int, *, temperature: float = 0.7
) -> GenerateRequest:
    user = (
        f"Question:\n{question.strip()}\n\nCorrect answer: {reference}\n\n"
        f"List {k} distinct plausible wrong {'numbers' if task == NUMERIC else 'answers'}."
    )
    return GenerateRequest.make(
        [{"role": "system", "content": WRONG_SYSTEM}, {"role": "user", "content": user}],
        temperature=temperature,
        max_tokens=40 + 20 * k,
        json_mode=True,
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


FREE_PROPOSER_SYSTEM = (
    "You help build a benchmark of contextual distraction. Given a question, its correct answer "
    "and one wrong answer, you write ONE sentence of coherent but irrelevant context that could "
    "naturally accompany the question and subtly makes the wrong answer seem plausible. The "
    "sentence must not state or hint what the answer is, must not contradict the correct "
    "answer, and must not add, remove or change any quantity or fact the question needs. "
    "Reply with the sentence only."
)


def free_proposer_request(
    question: str, reference: str, wrong: str, *, temperature: float = 0.7, sample: int = 0
) -> GenerateRequest:
    user = (
        f"Question:\n{question.strip()}\n\nCorrect answer: {reference}\n"
        f"Wrong answer to make plausible: {wrong}\n\nWrite the one sentence of distracting context."
    )
    return GenerateRequest.make(
        [{"role": "system", "content": FREE_PROPOSER_SYSTEM}, {"role": "user", "content": user}],
        temperature=temperature,
        max_tokens=120,
        first_sample=sample,
    )


FREE_PROPOSER_BATCH_SYSTEM = (
    "You help build a benchmark of contextual distraction. Given a question, its correct answer "
    "and numbered wrong answers, you write, for EACH wrong answer, ONE sentence of coherent but "
    "irrelevant context that could naturally accompany the question and subtly makes that wrong "
    "answer seem plausible. No sentence may state or hint what the answer is, contradict the "
    "correct answer, or add, remove or change any quantity or fact the question needs. Reply "
    'with JSON only: an object whose keys are the numbers, e.g. {"1": "...", "2": "..."}.'
)


def free_proposer_batch_request(
    question: str, reference: str, wrongs: list[str], *, temperature: float = 0.7
) -> GenerateRequest:
    listed = "\n".join(f"{i}. {w}" for i, w in enumerate(wrongs, start=1))
    user = (
        f"Question:\n{question.strip()}\n\nCorrect answer: {reference}\n"
        f"Wrong answers to make plausible:\n{listed}\n\n"
        "Write one sentence of distracting context for each wrong answer, as JSON."
    )
    return GenerateRequest.make(
        [
            {"role": "system", "content": FREE_PROPOSER_BATCH_SYSTEM},
            {"role": "user", "content": user},
        ],
        temperature=temperature,
        max_tokens=60 + 80 * len(wrongs),
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


FREE_JUDGE_SYSTEM = (
    "You check distracted free-form questions. Extra context was added to an original question. "
    "Decide whether the added context changes the correct answer to the ORIGINAL question, makes "
    "it ambiguous, or (for math) adds, removes or changes a quantity the solution must use. "
    'Reply with JSON only: {"changes_answer": true|false, "reason": "<one short sentence>"}'
)


def free_judge_request(
    original_question: str, reference: str, distracted_question: str
) -> GenerateRequest:
    user = (
        f"Original question:\n{original_question.strip()}\nCorrect answer: {reference}\n\n"
        f"Question with added context:\n{distracted_question}\n\n"
        "Does the added context change the correct answer to the original question?"
    )
    return GenerateRequest.make(
        [{"role": "system", "content": FREE_JUDGE_SYSTEM}, {"role": "user", "content": user}],
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    )
