"""Every role's messages as templates with named placeholders, and how each reply is read.

One table for every task shape and role: a request builder renders a template by name with the
values of its placeholders; nothing else holds prompt text. ``--prompts FILE`` (TOML) replaces any
template's system text, user text, temperature or reply reading, so a user can run the exact
wording of the paper or of any other work; ``cdv prompts`` prints the templates in effect.

A template's name is ``role.variant``. The variants a run uses come from its settings:
``target.letter`` / ``target.paper`` (``--target-prompt``, which also picks the extractor's),
``proposer.one`` / ``proposer.batch`` / ``proposer.paper`` (``--proposer-prompt``,
``--proposer-batch``), ``judge.standard`` / ``judge.paper`` (``--judge-prompt``), and one per
free-form shape.

The default texts are cdvkit's own; the ``paper`` variants follow the reference
implementation's procedure (what each role is shown, in which layout, and how it answers) in our
own words: its exact wording belongs in a prompts file a user writes, not in this repository.
"""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
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

_TARGET_SYSTEM = (
    "You answer multiple-choice questions. Think step by step, then finish with a final line of "
    "the form 'Answer: X' where X is the letter of exactly one of the given choices."
)
_FREE_FINAL = {
    "numeric": "a final line of the form 'Answer: N' where N is the number alone",
    "short_answer": "a final line of the form 'Answer: X' where X is the answer alone, in a few "
    "words",
}
_FREE_KIND = {"numeric": "math word problems", "short_answer": "questions"}
_RESPONSE = "Here is a response to this question:\n<<<\n{reply}\n>>>\n\n"
# The reference's exchanges all open with a generic assistant system message; its instructions
# sit in the user message.
PLAIN_SYSTEM = "You are a helpful assistant."


def _free_target(task: str) -> Template:
    return Template(
        f"You answer {_FREE_KIND[task]}. Think step by step, then finish with {_FREE_FINAL[task]}.",
        # No prefix: the shape's reader finds the answer anywhere (a marker, "#### N", the
        # last number), which reads more real replies than the asked-for line alone.
        "{question}",
    )


def _free_extractor(task: str) -> Template:
    what = "number" if task == "numeric" else "answer, in a few words"
    return Template(
        "You read the final answer out of free-text replies.",
        "Question:\n{question}\n\n" + _RESPONSE + "What final answer does the response give? "
        f"Reply with the {what} only, or NONE if it gives no single final answer.",
        temperature=0.0,
        max_tokens=20,
    )


DEFAULTS: dict[str, Template] = {
    # --- the target ---------------------------------------------------------------------
    "target.letter": Template(
        # No prefix: cdvkit's reader finds the final answer anywhere in the reply.
        _TARGET_SYSTEM,
        "{question}\n\n{choices_lettered}",
    ),
    # The paper's layout: the choices as a list, answered by their text, step by step; no
    # final-answer line is asked for (its extractor reads every reply).
    "target.paper": Template(
        PLAIN_SYSTEM,
        "Read the question below and answer it by picking one of the listed choices; your final "
        "answer has to be one of them. Reason through it step by step.\n\n"
        "Question:\n{question}\n\nChoices:\n{choices_list}\n",
        ReplySpec(answer="text"),
    ),
    "target.numeric": _free_target("numeric"),
    "target.short_answer": _free_target("short_answer"),
    # --- the extractor ------------------------------------------------------------------
    "extractor.letter": Template(
        "You map free-text answers to answer options.",
        "{question}\n\n{choices_lettered}\n\n" + _RESPONSE + "Which choice does the response "
        "give as its final answer? Reply with the single letter only, or NONE if it gives none "
        "of the choices.",
        ReplySpec(answer="letter"),
        temperature=0.0,
        max_tokens=5,
    ),
    "extractor.paper": Template(
        PLAIN_SYSTEM,
        "A model answered the question below. Say which of the listed choices it settled on as "
        "its final answer.\n\nQuestion:\n{question}\n\nThe model's reply:\n{reply}\n\n"
        "Choices:\n{choices_list}\n\n"
        'Reply with JSON only: {{"final_answer": "<that choice, copied exactly from the list>"}}',
        ReplySpec(format="json", key="final_answer", answer="text"),
        temperature=0.0001,
        max_tokens=256,
    ),
    "extractor.numeric": _free_extractor("numeric"),
    "extractor.short_answer": _free_extractor("short_answer"),
    # --- the proposer -------------------------------------------------------------------
    "proposer.one": Template(
        "You help build a benchmark of contextual distraction. Given a multiple-choice question, "
        "its correct answer and one wrong option, you write ONE sentence of coherent but "
        "irrelevant context that could naturally accompany the question and subtly makes the "
        "wrong option seem plausible. The sentence must not state or hint which option is "
        "correct or incorrect, must not mention option letters, must not contradict the correct "
        "answer, and must not change what the correct answer to the question is. Reply with the "
        "sentence only.",
        "Question and choices:\n{question}\n\n{choices_lettered}\n\nCorrect answer: {answer}\n"
        "Wrong option to make plausible: {wrong}\n\nWrite the one sentence of distracting "
        "context.",
        max_tokens=120,
    ),
    "proposer.batch": Template(
        "You help build a benchmark of contextual distraction. Given a multiple-choice question, "
        "its correct answer and its wrong options, you write, for EACH wrong option, ONE "
        "sentence of coherent but irrelevant context that could naturally accompany the question "
        "and subtly makes that wrong option seem plausible. No sentence may state or hint which "
        "option is correct or incorrect, mention option letters, contradict the correct answer, "
        "or change what the correct answer to the question is. Reply with JSON only: an object "
        "whose keys are the wrong options' letters and whose values are the sentences, e.g. "
        '{{"B": "...", "D": "..."}}.',
        "Question and choices:\n{question}\n\n{choices_lettered}\n\nCorrect answer: {answer}\n"
        "Wrong options to make plausible:\n{wrongs}\n\n"
        "Write one sentence of distracting context for each wrong option, as JSON.",
        ReplySpec(format="json"),
    ),
    # The paper's proposer sees only the node's question and one wrong option (no choices, no
    # correct answer) and writes its sentence after a fixed label.
    "proposer.paper": Template(
        PLAIN_SYSTEM,
        "Below is a question and an alternative answer to it. Write a single sentence of extra "
        "context that fits the question naturally and quietly makes the alternative answer seem "
        "reasonable. Do not call any answer right or wrong, do not contradict the question's "
        "real answer, and keep the hint indirect rather than naming the alternative outright.\n\n"
        "Question:\n{question}\n\nAlternative answer:\n{wrong}\n\n"
        "Give the sentence on one line that starts with 'Distraction:'.",
        ReplySpec(prefix="Distraction:"),
        max_tokens=256,
    ),
    "proposer.free": Template(
        "You help build a benchmark of contextual distraction. Given a question, its correct "
        "answer and one wrong answer, you write ONE sentence of coherent but irrelevant context "
        "that could naturally accompany the question and subtly makes the wrong answer seem "
        "plausible. The sentence must not state or hint what the answer is, must not contradict "
        "the correct answer, and must not add, remove or change any quantity or fact the "
        "question needs. Reply with the sentence only.",
        "Question:\n{question}\n\nCorrect answer: {answer}\nWrong answer to make plausible: "
        "{wrong}\n\nWrite the one sentence of distracting context.",
        max_tokens=120,
    ),
    "proposer.free_batch": Template(
        "You help build a benchmark of contextual distraction. Given a question, its correct "
        "answer and numbered wrong answers, you write, for EACH wrong answer, ONE sentence of "
        "coherent but irrelevant context that could naturally accompany the question and subtly "
        "makes that wrong answer seem plausible. No sentence may state or hint what the answer "
        "is, contradict the correct answer, or add, remove or change any quantity or fact the "
        "question needs. Reply with JSON only: an object whose keys are the numbers, e.g. "
        '{{"1": "...", "2": "..."}}.',
        "Question:\n{question}\n\nCorrect answer: {answer}\nWrong answers to make plausible:\n"
        "{wrongs}\n\nWrite one sentence of distracting context for each wrong answer, as JSON.",
        ReplySpec(format="json"),
    ),
    "wrong_answers.free": Template(
        "You help build a benchmark of contextual distraction for free-form questions. Given a "
        "question and its correct answer, you list plausible WRONG final answers a careless "
        "solver might give: for math, near-miss numbers from a common slip (a skipped step, a "
        "wrong operation, a unit mix-up); otherwise confusable entities or facts. Reply with "
        'JSON only: {{"wrong_answers": ["...", "..."]}}',
        "Question:\n{question}\n\nCorrect answer: {answer}\n\n"
        "List {k} distinct plausible wrong {kind}.",
        ReplySpec(format="json", key="wrong_answers"),
        json_mode=True,
    ),
    # --- the judge ----------------------------------------------------------------------
    "judge.standard": Template(
        "You check distracted multiple-choice questions. Extra context was added to an original "
        "question. Decide whether the added context changes which answer is correct for the "
        "ORIGINAL question, or makes it ambiguous. Reply with JSON only: "
        '{{"changes_answer": true|false, "reason": "<one short sentence>"}}',
        "Original question:\n{original}\n\n{choices_lettered}\nCorrect answer: {answer_letter}. "
        "{answer}\n\nQuestion with added context:\n{distracted}\n\n"
        "Does the added context change the correct answer to the original question?",
        ReplySpec(format="json", key="changes_answer", pass_when=False),
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    ),
    # The paper's judge is shown only the two questions (no choices, no answer).
    "judge.paper": Template(
        PLAIN_SYSTEM,
        "Sentences that have nothing to do with the question were added to the original "
        "question below. Work out, step by step, whether they would lead to a different answer "
        "to the original question. Then give your verdict as JSON: "
        '{{"answer_unchanged": "Yes"}} if the answer stays the same, '
        '{{"answer_unchanged": "No"}} if it changes.\n\n'
        "Original question:\n{original}\n\nQuestion with the added sentences:\n{distracted}\n",
        ReplySpec(format="json", key="answer_unchanged", pass_when="yes"),
        temperature=0.0001,
        max_tokens=1024,
    ),
    "judge.free": Template(
        "You check distracted free-form questions. Extra context was added to an original "
        "question. Decide whether the added context changes the correct answer to the ORIGINAL "
        "question, makes it ambiguous, or (for math) adds, removes or changes a quantity the "
        'solution must use. Reply with JSON only: {{"changes_answer": true|false, "reason": '
        '"<one short sentence>"}}',
        "Original question:\n{original}\nCorrect answer: {answer}\n\n"
        "Question with added context:\n{distracted}\n\n"
        "Does the added context change the correct answer to the original question?",
        ReplySpec(format="json", key="changes_answer", pass_when=False),
        temperature=0.0,
        max_tokens=200,
        json_mode=True,
    ),
    # --- the grader ---------------------------------------------------------------------
    "grader.free": Template(
        "You grade answers to questions against a reference answer. Decide whether the "
        "response's final answer means the same as the reference answer (aliases and "
        'equivalent forms count). Reply with JSON only: {{"correct": true|false, "reason": '
        '"<one short sentence>"}}',
        "Question:\n{question}\n\nReference answer: {answer}{aliases}\n\nResponse:\n<<<\n"
        "{reply}\n>>>\n\nIs the response's final answer correct?",
        ReplySpec(format="json", key="correct", pass_when=True),
        temperature=0.0,
        max_tokens=120,
        json_mode=True,
    ),
    # --- the paper's two lengthening baselines (one rewrite per question, no search) -----
    "rewrite.paraphrase_long": Template(
        PLAIN_SYSTEM,
        "Rewrite the question below in different words so that it asks exactly the same thing "
        "and has the same answer, but make the new version about ten times as long as the "
        "original.\n\nQuestion:\n{question}\n\nChoices:\n{choices_list}\n\n"
        "Give only the rewritten question, without its choices, after the label "
        "'Rewritten question:'.",
        ReplySpec(prefix="Rewritten question:"),
        max_tokens=2048,
    ),
    "rewrite.background": Template(
        PLAIN_SYSTEM,
        "Make the question below longer without changing what it asks or its answer: put two "
        "or three sentences of related background before it and one or two sentences on a "
        "practical use of the topic after it. Keep the question's own words as they are, keep "
        "its technical terms (you may explain them), and never mention or hint at any answer "
        "option.\n\nQuestion:\n{question}\n\n"
        "Give only the new text, without choices, after the label 'Rewritten question:'.",
        ReplySpec(prefix="Rewritten question:"),
        max_tokens=2048,
    ),
}


# Reply limits of roles whose templates set none. The target's is large because a reasoning
# model thinks before it answers: a reply cut short reads as no answer, a wrong one.
ROLE_MAX_TOKENS = {"target": 4096}
# The roles ``--max-tokens ROLE=N`` may name.
ROLES = ("target", "proposer", "judge", "extractor", "grader")


def role_of(name: str) -> str:
    return name.split(".", 1)[0]


def placeholders_in(text: str) -> list[str]:
    """The ``{names}`` a template text uses (a doubled brace is a literal one)."""
    return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]


class PromptsError(ValueError):
    """A prompts file that cannot be used: one line naming the file, the template and the fault."""


@dataclass(frozen=True)
class PromptSet:
    """The templates a run uses: cdvkit's defaults with any of them replaced.

    ``overrides`` holds exactly what a prompts file replaced (template name -> fields), which is
    what a run records: two runs with the same overrides ask every model the same way.
    """

    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # ``--max-tokens ROLE=N``: the most tokens any reply of that role may take.
    max_tokens: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        templates = dict(DEFAULTS)
        for name, fields_ in self.overrides.items():
            templates[name] = _merged(DEFAULTS[name], fields_, name)
        object.__setattr__(self, "_templates", templates)

    def __hash__(self) -> int:
        return hash(self.digest)

    def __getitem__(self, name: str) -> Template:
        return self._templates[name]  # type: ignore[attr-defined]

    def names(self) -> list[str]:
        return list(self._templates)  # type: ignore[attr-defined]

    def tokens(self, name: str, sized: int | None = None) -> int:
        """The reply limit of template ``name``: the role's ``--max-tokens``, else the
        template's own, else ``sized`` (what the request's size calls for), else the role's
        default (the target's is large enough for a reasoning model's step-by-step reply)."""
        role = role_of(name)
        for n in (self.max_tokens.get(role), self[name].max_tokens, sized):
            if n is not None:
                return n
        return ROLE_MAX_TOKENS.get(role, 512)

    @property
    def digest(self) -> str:
        text = json.dumps([self.overrides, self.max_tokens], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def render(self, name: str, **values: Any) -> list[dict[str, str]]:
        return self[name].render(values)

    def to_toml(self, names: list[str] | None = None) -> str:
        """The templates in effect as a prompts file a user can edit and pass back."""
        lines = [
            "# cdvkit prompt templates: pass an edited copy with --prompts FILE (any template or",
            "# field left out keeps its default). {name} is a placeholder; {{ and }} are braces.",
        ]
        for name in names or self.names():
            t = self[name]
            lines += ["", f"[{_quote_key(name)}]"]
            allowed = ", ".join(PLACEHOLDERS[role_of(name)])
            lines.append(f"# placeholders: {allowed}")
            lines.append(f"system = {_toml_str(t.system)}")
            lines.append(f"user = {_toml_str(t.user)}")
            for k in ("temperature", "max_tokens"):
                if getattr(t, k) is not None:
                    lines.append(f"{k} = {getattr(t, k)!r}")
            lines.append(f"json_mode = {str(t.json_mode).lower()}")
            lines.append(f"[{_quote_key(name)}.reply]")
            for k, v in asdict(t.reply).items():
                if v is not None:
                    lines.append(f"{k} = {json.dumps(v)}")
        return "\n".join(lines) + "\n"


def _quote_key(name: str) -> str:
    role, _, variant = name.partition(".")
    return f"{role}.{variant}" if variant else role


def _toml_str(text: str) -> str:
    """``text`` as a TOML string a person can edit: a multi-line one where it has lines."""
    if "\n" not in text or any(ord(c) < 32 and c not in "\n\t" for c in text):
        # A basic string: JSON's escapes are TOML's, so json.dumps writes a valid one.
        return json.dumps(text, ensure_ascii=False)
    body = text.replace("\\", "\\\\").replace('"""', '""\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    # The newline right after the opening quotes is not part of the string.
    return f'"""\n{body}"""'



_TEMPLATE_KEYS = {"system", "user", "reply", "temperature", "max_tokens", "json_mode"}
_REPLY_KEYS = {"format", "key", "prefix", "answer", "pass_when"}


def _merged(base: Template, fields_: dict[str, Any], name: str) -> Template:
    reply = base.reply
    if "reply" in fields_:
        reply = replace(base.reply, **fields_["reply"])
    return replace(
        base,
        system=fields_.get("system", base.system),
        user=fields_.get("user", base.user),
        temperature=fields_.get("temperature", base.temperature),
        max_tokens=fields_.get("max_tokens", base.max_tokens),
        json_mode=fields_.get("json_mode", base.json_mode),
        reply=reply,
    )


def check_overrides(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """Validated overrides from a parsed prompts file; raises PromptsError naming the fault."""
    if not isinstance(raw, dict):
        raise PromptsError(f"{where}: expected tables of templates, e.g. [judge.standard]")
    out: dict[str, dict[str, Any]] = {}
    known_roles = sorted({role_of(n) for n in DEFAULTS})
    for role, variants in raw.items():
        if role not in known_roles:
            raise PromptsError(f"{where}: unknown role {role!r} (roles: {', '.join(known_roles)})")
        if not isinstance(variants, dict):
            raise PromptsError(f"{where}: [{role}] must hold tables such as [{role}.<variant>]")
        for variant, fields_ in variants.items():
            name = f"{role}.{variant}"
            if name not in DEFAULTS:
                have = ", ".join(n for n in DEFAULTS if role_of(n) == role)
                raise PromptsError(f"{where}: unknown template [{name}] (known: {have})")
            out[name] = _check_template(name, fields_, where)
    return out


def _check_template(name: str, fields_: Any, where: str) -> dict[str, Any]:
    at = f"{where}: [{name}]"
    if not isinstance(fields_, dict):
        raise PromptsError(f"{at} must be a table")
    unknown = sorted(set(fields_) - _TEMPLATE_KEYS)
    if unknown:
        raise PromptsError(
            f"{at}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_TEMPLATE_KEYS))})"
        )
    allowed = PLACEHOLDERS[role_of(name)]
    for part in ("system", "user"):
        if part not in fields_:
            continue
        text = fields_[part]
        if not isinstance(text, str):
            raise PromptsError(f"{at} {part} must be text")
        try:
            used = placeholders_in(text)
        except ValueError as exc:
            raise PromptsError(f"{at} {part}: {exc} (write {{{{ and }}}} for braces)") from None
        for ph in used:
            if ph not in allowed:
                raise PromptsError(
                    f"{at} {part}: unknown placeholder {{{ph}}} (allowed: {', '.join(allowed)})"
                )
    if "temperature" in fields_:
        t = fields_["temperature"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 2:
            raise PromptsError(f"{at} temperature must be a number from 0 to 2, not {t!r}")
    if "max_tokens" in fields_:
        m = fields_["max_tokens"]
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise PromptsError(f"{at} max_tokens must be a whole number of at least 1, not {m!r}")
    if "json_mode" in fields_ and not isinstance(fields_["json_mode"], bool):
        raise PromptsError(f"{at} json_mode must be true or false")
    if "reply" in fields_:
        reply = fields_["reply"]
        if not isinstance(reply, dict):
            raise PromptsError(f"{at}.reply must be a table")
        unknown = sorted(set(reply) - _REPLY_KEYS)
        if unknown:
            fields_list = ", ".join(sorted(_REPLY_KEYS))
            raise PromptsError(f"{at}.reply: unknown field {unknown[0]!r} (fields: {fields_list})")
        for k in ("key", "prefix"):
            if k in reply and not isinstance(reply[k], str):
                raise PromptsError(f"{at}.reply {k} must be text")
        spec = replace(DEFAULTS[name].reply, **reply)
        if problems := spec.problems():
            raise PromptsError(f"{at}.reply: {problems[0]}")
    return dict(fields_)


def load_prompts_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The overrides a TOML prompts file holds; raises PromptsError (one line) when unusable."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptsError(f"prompts file {p} not found") from None
    except IsADirectoryError:
        raise PromptsError(f"prompts file {p} is a directory") from None
    except UnicodeDecodeError:
        raise PromptsError(f"prompts file {p} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PromptsError(f"prompts file {p} is not valid TOML: {exc}") from None
    return check_overrides(raw, f"prompts file {p}")


def check_max_tokens(raw: Any) -> dict[str, int]:
    """``--max-tokens`` as {role: N}; raises ValueError naming a bad role or value."""
    if not isinstance(raw, dict):
        raise ValueError("max_tokens must map roles to numbers, e.g. {target = 8192}")
    out = {}
    for role, n in raw.items():
        if role not in ROLES:
            raise ValueError(f"--max-tokens: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"--max-tokens {role}: must be a whole number of at least 1, not {n!r}"
            )
        out[role] = n
    return out


def prompt_set(
    overrides: dict[str, dict[str, Any]] | None = None, max_tokens: dict[str, int] | None = None
) -> PromptSet:
    """The templates with ``overrides`` (checked) and per-role reply limits; the defaults alone
    when there are none."""
    limits = check_max_tokens(max_tokens or {})
    if not overrides:
        return PromptSet(max_tokens=limits) if limits else DEFAULT_PROMPTS
    nested: dict[str, dict[str, Any]] = {}
    for name, fields_ in overrides.items():
        role, _, variant = name.partition(".")
        nested.setdefault(role, {})[variant] = fields_
    return PromptSet(check_overrides(nested, "prompts"), limits)


DEFAULT_PROMPTS = PromptSet()
