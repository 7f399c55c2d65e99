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

import functools
import hashlib
import json
import string
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cdvkit.tasks  # noqa: F401 - registers the built-in task shapes' templates
from cdvkit.prompts.defaults import DEFAULTS
from cdvkit.prompts.spec import PLACEHOLDERS, Template
from cdvkit.tomlfile import read_toml

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
        # Only the replaced ones are kept: the rest are read from DEFAULTS when asked, which
        # holds every registered task shape's templates, a plugin's registered later included.
        merged = {n: _merged(DEFAULTS[n], f, n) for n, f in self.overrides.items()}
        object.__setattr__(self, "_templates", merged)

    def __hash__(self) -> int:
        return hash(self.digest)

    def __getitem__(self, name: str) -> Template:
        merged: dict[str, Template] = self._templates  # type: ignore[attr-defined]
        return merged[name] if name in merged else DEFAULTS[name]

    def names(self) -> list[str]:
        return list(DEFAULTS)

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
    if "\n" not in text or any(_unprintable(c) and c not in "\n\t" for c in text):
        # A basic string: JSON's escapes are TOML's, so json.dumps writes a valid one. DEL and
        # the C1 controls are escaped too: TOML refuses a raw DEL, and a terminal acts on C1.
        dumped = json.dumps(text, ensure_ascii=False)
        return "".join(f"\\u{ord(c):04x}" if _unprintable(c) else c for c in dumped)
    body = text.replace("\\", "\\\\").replace('"""', '""\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    # The newline right after the opening quotes is not part of the string.
    return f'"""\n{body}"""'


def _unprintable(c: str) -> bool:
    """A control character: C0, DEL or C1."""
    return ord(c) < 32 or 0x7F <= ord(c) <= 0x9F


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
    raw = read_toml(p, "prompts file", PromptsError)
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
    when there are none. The same settings give the same (immutable) set, checked once: every
    question's search and every forecast line asks for it again."""
    return _prompt_set(json.dumps([overrides or {}, max_tokens or {}], sort_keys=True, default=str))


@functools.lru_cache(maxsize=64)
def _prompt_set(settings: str) -> PromptSet:
    overrides, max_tokens = json.loads(settings)
    limits = check_max_tokens(max_tokens)
    if not overrides:
        return PromptSet(max_tokens=limits) if limits else DEFAULT_PROMPTS
    nested: dict[str, dict[str, Any]] = {}
    for name, fields_ in overrides.items():
        role, _, variant = name.partition(".")
        nested.setdefault(role, {})[variant] = fields_
    return PromptSet(check_overrides(nested, "prompts"), limits)


DEFAULT_PROMPTS = PromptSet()
