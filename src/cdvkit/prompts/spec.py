"""The parts of a prompt template: the messages with ``{placeholders}`` a role is asked with,
which placeholders each role may use, and how its reply is read (see
:mod:`cdvkit.prompts.templates`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

REPLY_FORMATS = ("text", "json")
ANSWER_FORMS = ("any", "letter", "text")


@dataclass(frozen=True)
class ReplySpec:
    """How a role's reply is read.

    - ``format``: ``text``, or ``json`` (the first JSON object of the reply);
    - ``key``: with ``json``, the key that holds the answer, sentence or verdict (a batch
      proposer's keys are the wrong options' letters or numbers, so it names none);
    - ``prefix``: with ``text``, the answer follows the last occurrence of this text (a line
      such as ``Answer:``); without it, or when the reply lacks it, the whole reply is read;
    - ``answer``: for a choice, how the reply names it: ``letter``, ``text`` (the choice written
      out) or ``any`` (cdvkit's reader decides, the default);
    - ``pass_when``: for a verdict (judge, grader), the value of ``key`` that means yes: the
      distraction leaves the answer unchanged (judge), the answer is right (grader). A boolean,
      or a word such as ``"yes"``.
    """

    format: str = "text"
    key: str | None = None
    prefix: str | None = None
    answer: str = "any"
    pass_when: bool | str | None = None

    def problems(self) -> list[str]:
        out = []
        if self.format not in REPLY_FORMATS:
            out.append(f"format must be one of {', '.join(REPLY_FORMATS)}, not {self.format!r}")
        if self.answer not in ANSWER_FORMS:
            out.append(f"answer must be one of {', '.join(ANSWER_FORMS)}, not {self.answer!r}")
        if self.prefix is not None and not self.prefix.strip():
            out.append("prefix must not be empty")
        return out


@dataclass(frozen=True)
class Template:
    """One role's messages: a system and a user text with ``{placeholders}``, and its reply.

    ``temperature`` is None where the role's own setting decides (the target's protocol, the
    proposer's ``--proposer-temperature``); a template that sets it fixes it for that role.
    ``max_tokens`` is None where the request's size decides it (a batch proposer's grows with
    its wrong options); ``--max-tokens ROLE=N`` overrides both. ``json_mode`` asks the server
    for a JSON object where it can (OpenAI's response_format).
    """

    system: str
    user: str
    reply: ReplySpec = field(default_factory=ReplySpec)
    temperature: float | None = None
    max_tokens: int | None = None
    json_mode: bool = False

    def render(self, values: dict[str, Any]) -> list[dict[str, str]]:
        vals = _Blank(values)
        msgs = [{"role": "user", "content": self.user.format_map(vals)}]
        if self.system:
            msgs.insert(0, {"role": "system", "content": self.system.format_map(vals)})
        return msgs

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "user": self.user}
        for k in ("temperature", "max_tokens"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out["json_mode"] = self.json_mode
        out["reply"] = {k: v for k, v in asdict(self.reply).items() if v is not None}
        return out


class _Blank(dict):  # type: ignore[type-arg]
    """Placeholder values where one a question does not have (a free-form question's choices)
    renders empty: a file may only name a role's own placeholders, so nothing else lands here."""

    def __missing__(self, key: str) -> str:
        return ""


# The placeholders each role's templates may use, and what they hold.
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "target": {
        "question": "the question's text",
        "choices_lettered": "the choices, one a line: 'A. ...' (multiple choice)",
        "choices_list": "the choices as a Python list: ['...', '...'] (multiple choice)",
        "letters": "the choices' letters: 'A, B, C, D' (multiple choice)",
    },
    "extractor": {
        "question": "the question's text",
        "choices_lettered": "the choices, one a line: 'A. ...'",
        "choices_list": "the choices as a Python list",
        "reply": "the model's reply (its last 4,000 characters)",
    },
    "proposer": {
        "question": "the text of the node being expanded",
        "choices_lettered": "the node's choices, one a line (multiple choice)",
        "choices_list": "the node's choices as a Python list (multiple choice)",
        "answer": "the correct answer's text",
        "wrong": "the wrong answer to make plausible",
        "wrong_letter": "its letter (multiple choice)",
        "wrongs": "every wrong answer aimed at, one a line, keyed as the reply must key them",
    },
    "wrong_answers": {
        "question": "the original question",
        "answer": "the correct answer",
        "k": "how many wrong answers to list",
        "kind": "'numbers' or 'answers'",
    },
    "judge": {
        "original": "the original question's text",
        "choices_lettered": "the original's choices, one a line (multiple choice)",
        "choices_list": "the original's choices as a Python list (multiple choice)",
        "answer": "the correct answer's text",
        "answer_letter": "its letter in the original (multiple choice)",
        "distracted": "the distracted question's text",
    },
    "grader": {
        "question": "the question",
        "answer": "the reference answer",
        "aliases": "' (also accepted: ...)' when there are aliases, else ''",
        "reply": "the model's reply (its last 4,000 characters)",
    },
    "rewrite": {
        "question": "the original question's text",
        "choices_lettered": "its choices, one a line (multiple choice)",
        "choices_list": "its choices as a Python list (multiple choice)",
        "answer": "the correct answer's text",
    },
}
