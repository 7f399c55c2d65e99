"""Prompts for every role (the target's answers are read by :mod:`cdvkit.answers`)."""

from __future__ import annotations

import json
import re
from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.models.base import MCQ, GenerateRequest, Message
from cdvkit.registry import Registry

TARGET_SYSTEM = (
    "You answer multiple-choice questions. Think step by step, then finish with a final line of "
    "the form 'Answer: X' where X is the letter of exactly one of the given choices."
)

# Prompt defences ``cdv evaluate --defense NAME`` adds to the target's system prompt; more are
# registered by name (``DEFENSES.add(name, text)``) or given as a file.
DEFENSES: Registry[str] = Registry("defense", "cdvkit.defenses")
DEFENSES.add("none", "", help="no defence: the protocol's own prompt")
DEFENSES.add(
    "ignore-irrelevant",
    "The question may contain details that are irrelevant to it. Focus only on the "
    "information needed to answer the question itself and ignore anything else.",
    help="tells the model to ignore details irrelevant to the question",
)
DEFENSES.add(
    "cot",
    "Before answering, reason carefully step by step about what the question actually asks, "
    "then give your final answer.",
    help="asks for careful step-by-step reasoning about what is asked",
)

TARGET_PROMPTS = ("letter", "paper")

# The paper's format: the choices as a Python list, the answer given by its text, step by step.
PAPER_TEMPLATE = (
    "Answer the following question. Think step by step, then give your final answer, which "
    "must be exactly one of the choices, written out in full.\n\n"
    "Question: {question}\n"
    "Choices: {choices}\n\n"
    "End your reply with: The final answer is: '<the chosen choice>'"
)
PAPER_SYSTEM = "You are a helpful assistant."


def render_mcq(question: str, choices: tuple[str, ...] | list[str]) -> str:
    lines = [question.strip(), ""]
    lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


def render_paper(question: str, choices: tuple[str, ...] | list[str]) -> str:
    return PAPER_TEMPLATE.format(question=question.strip(), choices=repr(list(choices)))


def target_messages(
    question: str,
    choices: tuple[str, ...] | list[str],
    *,
    defense: str = "",
    prompt: str = "letter",
) -> list[Message]:
    """The target's messages; ``prompt`` is ``letter`` (choices lettered, 'Answer: X') or
    ``paper`` (choices as a list, answer by text)."""
    if prompt == "paper":
        system, user = PAPER_SYSTEM, render_paper(question, choices)
    elif prompt == "letter":
        system, user = TARGET_SYSTEM, render_mcq(question, choices)
    else:
        raise ValueError(
            f"unknown target prompt {prompt!r}: use one of {', '.join(TARGET_PROMPTS)}"
        )
    if defense:
        system = f"{system}\n\n{defense}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def target_request(
    question: str,
    choices: tuple[str, ...] | list[str],
    *,
    temperature: float,
    max_tokens: int = 512,
    defense: str = "",
    seed: int | None = None,
    prompt: str = "letter",
) -> GenerateRequest:
    return GenerateRequest.make(
        target_messages(question, choices, defense=defense, prompt=prompt),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        mcq=MCQ(question, tuple(choices)),
    )


def extractor_request(
    question: str, choices: tuple[str, ...] | list[str], reply: str
) -> GenerateRequest:
    user = (
        f"{render_mcq(question, choices)}\n\nHere is a response to this question:\n<<<\n"
        f"{reply[-4000:]}\n>>>\n\nWhich choice does the response give as its final answer? "
        "Reply with the single letter only, or NONE if it gives none of the choices."
    )
    return GenerateRequest.make(
        [
            {"role": "system", "content": "You map free-text answers to answer options."},
            {"role": "user", "content": user},
        ],
        temperature=0.0,
        max_tokens=5,
    )


PROPOSER_SYSTEM = (
    "You help build a benchmark of contextual distraction. Given a multiple-choice question, its "
    "correct answer and one wrong option, you write ONE sentence of coherent but irrelevant "
    "context that could naturally accompany the question and subtly makes the wrong option seem "
    "plausible. The sentence must not state or hint which option is correct or incorrect, must "
    "not mention option letters, must not contradict the correct answer, and must not change "
    "what the correct answer to the question is. Reply with the sentence only."
)


def _proposer_context(question: str, choices: tuple[str, ...] | list[str], answer: int) -> str:
    """What every proposer prompt opens with: the node's question, its choices, the answer."""
    return (
        f"Question and choices:\n{render_mcq(question, choices)}\n\n"
        f"Correct answer: {choices[answer]}\n"
    )


def proposer_request(
    question: str,
    choices: tuple[str, ...] | list[str],
    answer: int,
    target: int,
    *,
    temperature: float = 0.7,
    sample: int = 0,
) -> GenerateRequest:
    user = (
        _proposer_context(question, choices, answer)
        + f"Wrong option to make plausible: {choices[target]}\n\n"
        "Write the one sentence of distracting context."
    )
    return GenerateRequest.make(
        [{"role": "system", "content": PROPOSER_SYSTEM}, {"role": "user", "content": user}],
        temperature=temperature,
        max_tokens=120,
        first_sample=sample,
    )


PROPOSER_BATCH_SYSTEM = (
    "You help build a benchmark of contextual distraction. Given a multiple-choice question, its "
    "correct answer and its wrong options, you write, for EACH wrong option, ONE sentence of "
    "coherent but irrelevant context that could naturally accompany the question and subtly makes "
    "that wrong option seem plausible. No sentence may state or hint which option is correct or "
    "incorrect, mention option letters, contradict the correct answer, or change what the correct "
    "answer to the question is. Reply with JSON only: an object whose keys are the wrong options' "
    'letters and whose values are the sentences, e.g. {"B": "...", "D": "..."}.'
)


def proposer_batch_request(
    question: str,
    choices: tuple[str, ...] | list[str],
    answer: int,
    targets: tuple[int, ...] | list[int],
    *,
    temperature: float = 0.7,
) -> GenerateRequest:
    """One request for the distractions of every wrong option of a node.

    The same intent as ``proposer_request``, one sentence per wrong option, in one call instead
    of one call per option: the question and choices are read once, not once per option.
    """
    wrong = "\n".join(f"{LETTERS[t]}. {choices[t]}" for t in targets)
    user = (
        _proposer_context(question, choices, answer)
        + f"Wrong options to make plausible:\n{wrong}\n\n"
        "Write one sentence of distracting context for each wrong option, as JSON."
    )
    return GenerateRequest.make(
        [{"role": "system", "content": PROPOSER_BATCH_SYSTEM}, {"role": "user", "content": user}],
        temperature=temperature,
        max_tokens=60 + 80 * len(targets),
    )


def parse_batch_proposals(text: str) -> dict[str, str]:
    """Letter -> sentence from a batched proposer reply; {} when it holds no JSON object."""
    try:
        obj = parse_json_object(text)
    except MalformedJSON:
        return {}
    return {
        str(k).strip().upper()[:1]: clean_proposal(v)
        for k, v in obj.items()
        if isinstance(v, str) and str(k).strip()
    }


def clean_proposal(text: str) -> str:
    """First non-empty line, without quotes or a 'Context:' label the model may add."""
    for line in (text or "").splitlines():
        line = line.strip().strip('"“”').strip()
        line = re.sub(r"^(context|sentence|distraction)\s*:\s*", "", line, flags=re.I)
        if line:
            return line
    return ""


JUDGE_SYSTEM = (
    "You check distracted multiple-choice questions. Extra context was added to an original "
    "question. Decide whether the added context changes which answer is correct for the ORIGINAL "
    "question, or makes it ambiguous. Reply with JSON only: "
    '{"changes_answer": true|false, "reason": "<one short sentence>"}'
)


def judge_request(
    original_question: str,
    choices: tuple[str, ...] | list[str],
    answer: int,
    distracted_question: str,
) -> GenerateRequest:
    user = (
        f"Original question:\n{render_mcq(original_question, choices)}\n"
        f"Correct answer: {LETTERS[answer]}. {choices[answer]}\n\n"
        f"Question with added context:\n{distracted_question}\n\n"
        "Does the added context change the correct answer to the original question?"
    )
    return GenerateRequest.make(
        [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}],
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    )


class MalformedJSON(ValueError):
    pass


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply, tolerating code fences and prose around it."""
    if not text:
        raise MalformedJSON("empty reply")
    # The decoder itself finds where an object ends: counting braces would be fooled by a brace
    # inside a string ("reason": "the {context} ...") and rescans the rest of the text each time.
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            # Nesting deeper than the decoder allows is as unusable as bad syntax.
            pass
        else:
            if isinstance(obj, dict):
                return obj
        start = text.find("{", start + 1)
    raise MalformedJSON(f"no JSON object in reply: {text[:120]!r}")
