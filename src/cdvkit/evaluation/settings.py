"""How an evaluation asks and counts, and the key under which each of its answers is kept.

Settings are part of every cached answer's key: an answer given under another protocol, defense
or text is never reused, and one given under the same is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, Field, asdict, dataclass, fields, is_dataclass
from typing import Any

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import Variant
from cdvkit.protocol import SCORINGS, Protocol

# How the results are split into rows: by the questions' dataset (source) or subject.
SPLITS = ("dataset", "subject")
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


@dataclass
class EvalSettings:
    """How an evaluation asks: the protocol (shared with the search, see cdvkit.protocol) and
    the statistics. Fields left None take the protocol's defaults (5 near-greedy answers)."""

    samples: int | None = None
    temperature: float | None = None
    scoring: str = "sample"  # the protocol's: sample | exact
    prompt: str = "letter"  # letter | paper
    threshold: float | None = None
    all_examples: bool = False
    resamples: int = 10_000
    seed: int = 0
    confidence: float = 0.95
    concurrency: int = 16
    # The extractor reads every reply, not only those the local reader cannot decide (the
    # paper's evaluation).
    always_extract: bool = False
    # Also ask each original in its example's choice order, so the drop splits into the order's
    # part and the distraction's (one more answer per example; none where the order is kept).
    order_control: bool = True
    by: str = "dataset"  # rows of the tables: per dataset or per subject
    preset: str | None = None  # "paper": the paper's numbers (see cdvkit.evaluation.presets)

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError("--protocol must be sample or exact")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        if self.by not in SPLITS:
            raise ValueError(f"--by must be one of {', '.join(SPLITS)}, not {self.by!r}")
        self.protocol()  # validates samples, temperature, prompt and threshold

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
