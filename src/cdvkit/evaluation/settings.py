"""How an evaluation asks and counts, and the key under which each of its answers is kept.

Settings are part of every cached answer's key: an answer given under another protocol, defense
or text is never reused, and one given under the same is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, is_dataclass
from typing import Any

from cdvkit.allowed import Allowed, check_fields, check_value, declared
from cdvkit.evaluation.config import SPLITS, EvalConfig
from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import Variant
from cdvkit.protocol import Protocol

__all__ = ["SPLITS", "EvalSettings", "check_eval_options", "eval_key", "option_of"]

# Each EvalConfig setting's annotation and declared rule, by name.
_CONFIG_RULES = declared(EvalConfig)

# The protocol fields every stored answer's key has always held (whatever their value): a field
# the protocol gains later joins a key only when it differs from its default, so answers stored
# before it was added keep their keys.
KEYED_PROTOCOL_FIELDS = (
    "scoring",
    "samples",
    "temperature",
    "prompt",
    "threshold",
    "batch_samples",
    "sequential",
    "always_extract",
)


def declare(default: Any, setting: str | None = None, **allowed: Any) -> Any:
    """An EvalSettings field that is the EvalConfig ``setting`` (the name `cdv evaluate` and
    ``cdvkit.evaluate`` give it) and allows what that setting's declaration allows: one rule,
    declared in cdvkit.evaluation.config. A field that is no setting declares its own
    (cdvkit.allowed.Allowed's keywords)."""
    rule = _CONFIG_RULES[setting][1] if setting else Allowed(**allowed)
    return field(default=default, metadata={"allowed": rule, "option": setting})


@dataclass
class EvalSettings:
    """How an evaluation asks: the protocol (shared with the search, see cdvkit.protocol) and
    the statistics. Fields left None take the protocol's defaults (5 near-greedy answers).
    Each declares the values it allows once; ``check_eval_options`` checks the command's and
    the API's values against the same declarations."""

    samples: int | None = declare(None, "samples")
    temperature: float | None = declare(None, "temperature")
    scoring: str = declare("sample", "protocol")  # the protocol's
    prompt: str = declare("letter", "target_prompt")
    threshold: float | None = declare(None, "threshold")
    all_examples: bool = False
    # 0: no intervals, only the point estimates.
    resamples: int = declare(10_000, "bootstrap")
    seed: int = declare(0, "seed")
    confidence: float = declare(0.95, above=0, below=1)
    concurrency: int = declare(16, "concurrency")
    # The extractor reads every reply, not only those the local reader cannot decide (the
    # paper's evaluation).
    always_extract: bool = False
    # Also ask each original in its example's choice order, so the drop splits into the order's
    # part and the distraction's (one more answer per example; none where the order is kept).
    order_control: bool = True
    by: str = declare("dataset", "by")  # rows of the tables: per dataset or subject
    # "paper": the paper's numbers (see cdvkit.evaluation.presets)
    preset: str | None = declare(None, "preset")

    def __post_init__(self) -> None:
        check_fields(self, lambda name: option_of(name))
        self.protocol()  # the protocol's own checks (the same rules)

    def protocol(self, defense: str = "") -> Protocol:
        base = Protocol()
        return Protocol(
            scoring=self.scoring,
            samples=self.samples if self.samples is not None else base.samples,
            temperature=self.temperature if self.temperature is not None else base.temperature,
            prompt=self.prompt,
            threshold=self.threshold,
            defense=defense,
            always_extract=self.always_extract,
        )

    @property
    def effective_temperature(self) -> float:
        return self.protocol().temperature


# `cdv evaluate`'s ceilings (not settings of how it asks, so not EvalSettings'), as EvalConfig
# declares them: 0 is a ceiling too, under which only stored answers are used.
BUDGET_OPTIONS: dict[str, tuple[Any, Allowed | None]] = {
    name: _CONFIG_RULES[name] for name in ("max_calls", "max_cost")
}


def option_of(name: str) -> str:
    """The name `cdv evaluate` (as ``--name``) and ``cdvkit.evaluate`` give a field."""
    f = next((f for f in fields(EvalSettings) if f.name == name), None)
    return (f.metadata.get("option") if f else None) or name


def check_eval_options(values: Mapping[str, Any], label: Callable[[str], str] = str) -> None:
    """Check `cdv evaluate`'s options (by the names the command and ``cdvkit.evaluate`` give
    them: ``bootstrap``, ``protocol``...) against EvalConfig's declarations, None being "not
    given"; ``label`` spells a name as the user typed it. Raises SettingError."""
    for name, value in values.items():
        if name in _CONFIG_RULES and value is not None:
            hint, allowed = _CONFIG_RULES[name]
            check_value(label(name), value, hint, allowed)


def eval_key(
    model: str,
    item_id: str,
    variant: Variant,
    defense: Defense,
    s: EvalSettings,
    extractor: str | None = None,
    grader: str | None = None,
) -> str:
    """Everything that changes an answer is in the key, the text included: a file of examples
    that reuses a question id with other text is not mistaken for a cached answer."""
    payload = {
        "model": model,
        "item": item_id,
        "variant": variant.key,
        "question": variant.question,
        "choices": list(variant.choices),
        "answer": variant.answer,
        "defense": defense.text,
        "protocol": keyed_protocol(s.protocol()),
        "extractor": extractor,  # it can turn an unreadable reply into a right or wrong answer
    }
    if variant.references:
        # Free-form only, so the keys of multiple-choice answers stay as they always were.
        payload |= {"task": variant.task, "references": list(variant.references)}
    if grader is not None:
        payload["grader"] = grader  # it decides replies no reader could settle
    return "eval:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def keyed_protocol(p: Protocol) -> dict[str, object]:
    """The protocol as an answer's key holds it (see KEYED_PROTOCOL_FIELDS); the defense is
    keyed by its text apart."""
    defaults = {f.name: _default(f) for f in fields(Protocol)}
    return {
        k: v
        for k, v in p.to_dict().items()
        if k != "defense" and (k in KEYED_PROTOCOL_FIELDS or v != defaults.get(k))
    }


def _default(f: Field[Any]) -> Any:
    value = f.default
    if value is MISSING and f.default_factory is not MISSING:
        value = f.default_factory()
    # to_dict holds nested dataclasses as dicts: compare like with like.
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
