"""Named bundles of search settings.

- ``paper``: the paper's procedure step for step, as its reference code runs it, to reproduce its
  numbers: the paper's templates for the target (choices as a list, answered by text), the
  proposer (the node's question and one wrong option, temperature 0.7, its sentence after a
  label) and the judge (the target model itself, shown only the two questions, on every child
  before it is simulated); n=5 answers at temperature 0.0001, one request each, every answer
  read by the extractor; the 10x length filter and no other check; best-first with
  exp(2 / rate) / depth, 10 expansions, 3 examples, no depth cap; random placement and shuffled
  choices. Two defects are not copied: the child is simulated (not its parent), and an answer
  outside the choices counts as wrong (not dropped from the rate). The README lists every
  difference and the number it moves.
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

from collections.abc import Callable
from typing import Any

from cdvkit.registry import Registry, factory

# The reference's target settings: "near-zero temperature", five simulations.
REFERENCE_TEMPERATURE = 0.01
# The temperature the paper's code asks the target, the judge and the extractor at.
PAPER_TEMPERATURE = 0.0001

Recipe = Callable[[], dict[str, Any]]
# Presets are recipes registered by name (``--preset NAME``, entry point group cdvkit.recipes):
# each returns the settings it stands for, which fill in what the user left unset.
PRESETS: Registry[Recipe] = Registry(
    "preset", "cdvkit.recipes", accept=factory("a recipe: a function () -> dict of settings")
)


@PRESETS.register("reference", help="the reference implementation's call pattern (to compare)")
def reference() -> dict[str, Any]:
    """The reference implementation: every node asked five times at a near-zero temperature,
    one request per sample, every answer sent to the extractor; one proposer call per wrong
    option; the judge on every child; best-first with exp(K / rate) * depth ** -N (K=2, N=1);
    max_try = 10 expansions, max_good = 3 examples. It has no depth limit; ten expansions stack
    at most ten sentences."""
    return {
        "samples": 5,
        "temperature": REFERENCE_TEMPERATURE,
        "scoring": "sample",
        "sequential": False,
        "batch_samples": False,
        "always_extract": True,
        "judge_last": False,
        "proposer_batch": False,
        "proposals": 1,
        "strategy": "best-first",
        "k": 2.0,
        "n": 1.0,
        "max_expansions": 10,
        "max_good": 3,
        "max_depth": 10,
        "choice_order": "shuffle",
    }


@PRESETS.register("paper", help="the paper's procedure step for step (to reproduce its numbers)")
def paper() -> dict[str, Any]:
    """The paper's procedure as its reference code runs it (see the module's docstring); needs
    ``--extractor`` (the paper's was gpt-4o-mini) and, to write real distractions, a model as
    ``--proposer`` (the paper's was gpt-4o-mini too)."""
    return {
        "protocol": "sample",
        "scoring": "sample",
        "samples": 5,
        "temperature": PAPER_TEMPERATURE,
        "target_prompt": "paper",
        "batch_samples": False,
        "sequential": False,
        "always_extract": True,
        "proposer_prompt": "paper",
        "proposer_temperature": 0.7,
        "proposer_batch": False,
        "proposals": 1,
        "judge": "target",
        "judge_prompt": "paper",
        "judge_last": False,
        "length_ratio": 10.0,
        "similarity_floor": 0.0,
        "leak_check": False,
        "choice_order": "shuffle",
        "strategy": "best-first",
        "k": 2.0,
        "n": 1.0,
        "max_expansions": 10,
        "max_good": 3,
        # No depth cap: ten expansions stack at most ten sentences on the root (depth 1).
        "max_depth": 11,
    }


@PRESETS.register("efficient", help="cdvkit's cheap settings (the defaults)")
def efficient() -> dict[str, Any]:
    """cdvkit's defaults: choice probabilities where the backend gives them (one call per node,
    examples confirmed under the protocol), n samples in one request, the extractor only when
    the local reader cannot decide, one proposer call per node, the judge asked last.

    Sequential sampling is not part of it: with backends that return n samples from one request
    it costs more calls than it saves, and its coarse rates (a node right at once scores 2/3
    whatever its accuracy) steer best-first worse; see bench/search_efficiency.py."""
    return {
        "samples": 5,
        "scoring": "auto",
        "sequential": False,
        "batch_samples": True,
        "always_extract": False,
        "judge_last": True,
        "proposer_batch": True,
        "proposals": 1,
        "strategy": "best-first",
        "max_expansions": 10,
        "max_good": 3,
    }


def preset_values(name: str) -> dict[str, Any]:
    """The settings a preset stands for; raises ValueError on an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(sorted(PRESETS))})")
    return dict(PRESETS.get(name)())


def apply_preset(cfg: Any, name: str) -> Any:
    """A copy of ``cfg`` (a SearchConfig) with the preset's settings, recorded as ``preset``.

    Unlike ``SearchConfig.from_sources(preset=...)`` this overrides every setting the preset
    names, whatever ``cfg`` held: use it to derive a comparison run from an existing config.
    """
    from dataclasses import replace

    out = replace(cfg, **preset_values(name), preset=name)
    out.validate()
    return out
