"""How an evaluation asks and counts, and the key under which each of its answers is kept.

Settings are part of every cached answer's key: an answer given under another protocol, defense
or text is never reused, and one given under the same is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import Variant
from cdvkit.protocol import SCORINGS, Protocol


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

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError("--protocol must be sample or exact")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
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
        "protocol": {k: v for k, v in s.protocol().to_dict().items() if k != "defense"},
        "extractor": extractor,  # it can turn an unreadable reply into a right or wrong answer
    }
    if variant.references:
        # Free-form only, so the keys of multiple-choice answers stay as they always were.
        payload |= {"task": variant.task, "references": list(variant.references)}
    if grader is not None:
        payload["grader"] = grader  # it decides replies no reader could settle
    return "eval:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
