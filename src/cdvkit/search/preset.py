"""Named bundles of search settings.

- ``reference``: the paper's reference implementation's call pattern, measured on the child's own
  text (its known defects are not copied): every node is asked ``n=5`` times, one request per
  sample, and every answer goes to the extractor whether it parses or not; best-first with
  ``exp(K / rate) * depth ** -N``, ``max_try`` = 10 expansions, ``max_good`` = 3, no depth limit.
  It exists so cdvkit's savings can be measured against it, not for everyday use.
- ``efficient``: cdvkit's cheap settings, which are also the defaults: exact scoring from choice
  probabilities where the backend offers them (one call per node), otherwise n samples from one
  request; answers parsed locally with the extractor only on a parse failure; one proposer call
  per node for all its wrong options (``proposer_batch``); and the LLM judge asked only about
  children the target fails and nodes about to be expanded (``judge_last``).

Precedence is defaults < preset < config file < command line: a preset only fills in what the
user did not set.
"""

from __future__ import annotations

from typing import Any

# The reference's target settings: "near-zero temperature", five simulations.
REFERENCE_TEMPERATURE = 0.01

PRESETS: dict[str, dict[str, Any]] = {
    "reference": {
        "samples": 5,
        "temperature": REFERENCE_TEMPERATURE,
        "scoring": "sample",
        "sequential": False,
        "batch_samples": False,
        "always_extract": True,
        "judge_last": False,
        "proposer_batch": False,
        "strategy": "best-first",
        "k": 2.0,
        "n": 1.0,
        "max_expansions": 10,
        "max_good": 3,
        # The reference has no depth limit; ten expansions can stack at most ten sentences.
        "max_depth": 10,
    },
    "efficient": {
        "samples": 5,
        "scoring": "auto",
        # Sequential sampling is not part of it: with backends that return n samples from one
        # request it costs more calls than it saves, and its coarse rates (a node right at once
        # scores 2/3 whatever its accuracy) steer best-first worse; see bench/search_efficiency.py.
        "sequential": False,
        "batch_samples": True,
        "always_extract": False,
        "judge_last": True,
        "proposer_batch": True,
        "strategy": "best-first",
        "max_expansions": 10,
        "max_good": 3,
    },
}


def preset_values(name: str) -> dict[str, Any]:
    """The settings a preset stands for; raises ValueError on an unknown name."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r} (choose from {', '.join(sorted(PRESETS))})"
        ) from None


def apply_preset(cfg: Any, name: str) -> Any:
    """A copy of ``cfg`` (a SearchConfig) with the preset's settings, recorded as ``preset``.

    Unlike ``SearchConfig.from_sources(preset=...)`` this overrides every setting the preset
    names, whatever ``cfg`` held: use it to derive a comparison run from an existing config.
    """
    from dataclasses import replace

    out = replace(cfg, **preset_values(name), preset=name)
    out.validate()
    return out
