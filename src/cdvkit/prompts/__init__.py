"""Requests for every role, rendered from the templates of :mod:`cdvkit.prompts.templates`, and
the readers of their replies (a choice, a verdict, a sentence) as each template says.

Every builder takes the run's ``PromptSet`` (``prompts=``, cdvkit's defaults when left out), so
a prompts file changes the wording and the reading of every role in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from cdvkit.answers import Reading, read_answer
from cdvkit.data.question import LETTERS
from cdvkit.models.base import MCQ, GenerateRequest, Message
from cdvkit.prompts.defaults import DEFAULTS, PLAIN_SYSTEM
from cdvkit.prompts.spec import ReplySpec, Template
from cdvkit.prompts.templates import (
    DEFAULT_PROMPTS,
    PromptsError,
    PromptSet,
    load_prompts_file,
    prompt_set,
)
from cdvkit.registry import Registry, instance_of

# Prompt defences ``cdv evaluate --defense NAME`` adds to the target's system prompt; more are
# registered by name (``DEFENSES.add(name, text)``) or given as a file.
DEFENSES: Registry[str] = Registry(
    "defense", "cdvkit.defenses", accept=instance_of(str, "the text of a defence (a str)")
)
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
# The proposer's and the judge's template variants (``--proposer-prompt``, ``--judge-prompt``).
PROPOSER_PROMPTS = ("standard", "paper")
JUDGE_PROMPTS = ("standard", "paper")

# The default system texts as sent, for code and tests that look for a role by its wording.
TARGET_SYSTEM = DEFAULTS["target.letter"].system.format()
PAPER_SYSTEM = PLAIN_SYSTEM
PROPOSER_SYSTEM = DEFAULTS["proposer.one"].system.format()
PROPOSER_BATCH_SYSTEM = DEFAULTS["proposer.batch"].system.format()
JUDGE_SYSTEM = DEFAULTS["judge.standard"].system.format()

Choices = tuple[str, ...] | list[str]


def choice_values(choices: Choices) -> dict[str, str]:
    """The placeholders that show a question's choices, in every layout a template may use."""
    return {
        "choices_lettered": "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)),
        "choices_list": repr(list(choices)),
        "letters": ", ".join(LETTERS[: len(choices)]),
    }


def render_mcq(question: str, choices: Choices) -> str:
    """A question with its lettered choices (the default target prompt's user text)."""
    return DEFAULTS["target.letter"].user.format(
        question=question.strip(), **choice_values(choices)
    )


def render_paper(question: str, choices: Choices) -> str:
    """A question in the paper's layout (choices as a list, answered by text)."""
    return DEFAULTS["target.paper"].user.format(question=question.strip(), **choice_values(choices))


def render_request(
    prompts: PromptSet,
    name: str,
    values: dict[str, Any],
    *,
    temperature: float,
    sized: int | None = None,
    **kw: Any,
) -> GenerateRequest:
    t: Template = prompts[name]
    return GenerateRequest.make(
        t.render(values),  # type: ignore[arg-type]
        temperature=t.temperature if t.temperature is not None else temperature,
        max_tokens=prompts.tokens(name, sized),
        json_mode=t.json_mode,
        **kw,
    )


# --- the target -------------------------------------------------------------------------------
def target_template(prompt: str = "letter") -> str:
    if prompt not in TARGET_PROMPTS:
        raise ValueError(
            f"unknown target prompt {prompt!r}: use one of {', '.join(TARGET_PROMPTS)}"
        )
    return f"target.{prompt}"


def target_messages(
    question: str,
    choices: Choices,
    *,
    defense: str = "",
    prompt: str = "letter",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> list[Message]:
    """The target's messages; ``prompt`` is ``letter`` (choices lettered, 'Answer: X') or
    ``paper`` (choices as a list, answer by text). A defence is added to the system text."""
    values = {"question": question.strip(), **choice_values(choices)}
    return with_defense(prompts.render(target_template(prompt), **values), defense)


def with_defense(msgs: list[dict[str, str]], defense: str) -> list[Message]:
    """``msgs`` with a prompt defence added to the system text (a system message of its own
    when the template has none)."""
    if defense:
        if msgs[0]["role"] == "system":
            msgs[0] = {"role": "system", "content": f"{msgs[0]['content']}\n\n{defense}"}
        else:
            msgs.insert(0, {"role": "system", "content": defense})
    return msgs  # type: ignore[return-value]


def target_request(
    question: str,
    choices: Choices,
    *,
    temperature: float,
    defense: str = "",
    seed: int | None = None,
    prompt: str = "letter",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    name = target_template(prompt)
    return GenerateRequest.make(
        target_messages(question, choices, defense=defense, prompt=prompt, prompts=prompts),
        temperature=temperature,
        max_tokens=prompts.tokens(name),
        seed=seed,
        mcq=MCQ(question, tuple(choices)),
    )


def extractor_request(
    question: str,
    choices: Choices,
    reply: str,
    *,
    prompt: str = "letter",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    """Asks the extractor which choice ``reply`` gives; it reads replies in the target's layout
    (``prompt``), so the paper's layout has its own extractor."""
    values = {"question": question.strip(), "reply": reply[-4000:], **choice_values(choices)}
    return render_request(prompts, f"extractor.{prompt}", values, temperature=0.0)


# --- the proposer -----------------------------------------------------------------------------
def _proposer_values(question: str, choices: Choices, answer: int) -> dict[str, Any]:
    return {"question": question.strip(), "answer": choices[answer], **choice_values(choices)}


def proposer_request(
    question: str,
    choices: Choices,
    answer: int,
    target: int,
    *,
    temperature: float = 0.7,
    sample: int = 0,
    prompt: str = "standard",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    """One sentence for one wrong option; ``prompt`` ``paper`` shows the proposer only the
    node's question and that option, as the paper's code does."""
    values = {
        **_proposer_values(question, choices, answer),
        "wrong": choices[target],
        "wrong_letter": LETTERS[target],
        "wrongs": f"{LETTERS[target]}. {choices[target]}",
    }
    name = "proposer.paper" if prompt == "paper" else "proposer.one"
    return render_request(prompts, name, values, temperature=temperature, first_sample=sample)


def proposer_batch_request(
    question: str,
    choices: Choices,
    answer: int,
    targets: tuple[int, ...] | list[int],
    *,
    temperature: float = 0.7,
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    """One request for the distractions of every wrong option of a node.

    The same intent as ``proposer_request``, one sentence per wrong option, in one call instead
    of one call per option: the question and choices are read once, not once per option.
    """
    values = {
        **_proposer_values(question, choices, answer),
        "wrong": choices[targets[0]] if targets else "",
        "wrong_letter": LETTERS[targets[0]] if targets else "",
        "wrongs": "\n".join(f"{LETTERS[t]}. {choices[t]}" for t in targets),
    }
    return render_request(
        prompts, "proposer.batch", values, temperature=temperature, sized=60 + 80 * len(targets)
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


def reply_part(spec: ReplySpec, reply: str | None) -> str | None:
    """The part of a reply its template says holds the answer: the value under the JSON key
    (None without JSON, without the key, or when it holds a list or an object), the text after
    the last occurrence of the prefix, ignoring case (None when the reply lacks it), or the whole
    reply."""
    text = reply or ""
    if spec.format == "json":
        try:
            value = parse_json_object(text).get(spec.key or "")
        except MalformedJSON:
            return None
        return None if value is None or isinstance(value, dict | list) else str(value)
    if spec.prefix:
        i = text.lower().rfind(spec.prefix.lower())
        return None if i < 0 else text[i + len(spec.prefix) :]
    return text


def read_sentence(spec: ReplySpec, reply: str) -> str:
    """A proposer's sentence as its template says: after the prefix (else the reply's first
    line), under the JSON key, or the first line of the reply; empty when there is none."""
    part = reply_part(spec, reply)
    if part is None:
        return "" if spec.format == "json" else clean_proposal(reply)
    return clean_proposal(part)


def read_rewrite(spec: ReplySpec, reply: str) -> str:
    """A rewritten question: everything after the prefix (or under the JSON key, or the whole
    reply), quotes and surrounding space removed; empty when there is none."""
    part = reply_part(spec, reply)
    if part is None:
        part = "" if spec.format == "json" else reply or ""
    return part.strip().strip('"“”').strip()


def read_choice_reply(spec: ReplySpec, reply: str | None, choices: Sequence[str]) -> Reading:
    """Which choice a reply gives, as its template says: under a JSON key, after a prefix (else
    anywhere), or anywhere (cdvkit's reader); a choice named exactly as the template asks (its
    letter or its text) is taken as it is, anything else goes to
    :func:`cdvkit.answers.read_answer`."""
    part = reply_part(spec, reply)
    if spec.format == "json" and part is None:
        return Reading(None, "no answer", "none")
    if part is not None:
        reading = _exact(spec, part, choices) or read_answer(part, choices)
        if reading.index is not None or spec.format == "json":
            return reading
    text = reply or ""
    return _exact(spec, text, choices) or read_answer(text, choices)


def _exact(spec: ReplySpec, text: str, choices: Sequence[str]) -> Reading | None:
    bare = text.strip().strip("'\"“”‘’`*.").strip()
    if spec.answer == "letter":
        letter = bare.strip("()").upper()
        if len(letter) == 1 and letter in LETTERS[: len(choices)]:
            return Reading(LETTERS.index(letter), "", "letter")
    if spec.answer == "text":
        folded = bare.casefold()
        hits = [i for i, c in enumerate(choices) if c.strip().casefold() == folded]
        if len(hits) == 1:
            return Reading(hits[0], "", "text")
    return None


def read_verdict(spec: ReplySpec, reply: str) -> tuple[bool, str]:
    """(yes, reason) from a judge's or grader's JSON reply: yes when ``spec.key`` holds the value
    ``spec.pass_when`` names. Raises MalformedJSON, KeyError or ValueError when the reply holds
    no clear verdict (null, "maybe", no JSON): unverified is never a yes."""
    obj = parse_json_object(reply)
    key = spec.key or ""
    if key not in obj:
        raise KeyError(key)
    want = True if spec.pass_when is None else yes_no(spec.pass_when)
    return yes_no(obj[key]) == want, str(obj.get("reason", ""))


def yes_no(value: Any) -> bool:
    """A verdict's true/false; anything else (null, "maybe", a list) is no verdict at all."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().strip(".").lower()
        if word in ("true", "yes"):
            return True
        if word in ("false", "no"):
            return False
    raise ValueError(f"verdict is not true or false: {str(value)[:40]!r}")


# --- the judge --------------------------------------------------------------------------------
def judge_template(prompt: str = "standard") -> str:
    """The multiple-choice judge's template (a free-form shape names its own: TaskShape)."""
    if prompt not in JUDGE_PROMPTS:
        raise ValueError(f"unknown judge prompt {prompt!r}: use one of {', '.join(JUDGE_PROMPTS)}")
    return f"judge.{prompt}"


def judge_request(
    original_question: str,
    choices: Choices,
    answer: int,
    distracted_question: str,
    *,
    prompt: str = "standard",
    prompts: PromptSet = DEFAULT_PROMPTS,
) -> GenerateRequest:
    values = {
        "original": original_question.strip(),
        "distracted": distracted_question,
        "answer": choices[answer],
        "answer_letter": LETTERS[answer],
        **choice_values(choices),
    }
    return render_request(prompts, judge_template(prompt), values, temperature=0.0)


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


__all__ = [
    "DEFAULT_PROMPTS",
    "DEFENSES",
    "JUDGE_PROMPTS",
    "PROPOSER_PROMPTS",
    "TARGET_PROMPTS",
    "MalformedJSON",
    "PromptSet",
    "PromptsError",
    "ReplySpec",
    "Template",
    "load_prompts_file",
    "prompt_set",
]
