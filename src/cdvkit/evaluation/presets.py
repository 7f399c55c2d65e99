"""Evaluation presets: a named way of asking and counting (``cdv evaluate --preset NAME``).

``paper`` is the paper's evaluation as its code runs it: each model answers each question once
at temperature 0.0001, in the paper's prompt format (the choices as a list, the answer given by
its text), and an extractor reads every reply. Its numbers are original accuracy over every
question of the dataset and enhanced accuracy over the first example of each question with one,
an originally failed question counting as its own (see ``breakdown.paper_result``).
"""

from __future__ import annotations

from typing import Any

EVAL_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "scoring": "sample",
        "samples": 1,
        "temperature": 0.0001,
        "prompt": "paper",
        "always_extract": True,
    },
}


def eval_preset(name: str | None) -> dict[str, Any]:
    """The protocol settings a preset stands for ({} for none); ValueError on an unknown name."""
    if name is None:
        return {}
    if name not in EVAL_PRESETS:
        raise ValueError(
            f"unknown evaluation preset {name!r} (choose from {', '.join(sorted(EVAL_PRESETS))})"
        )
    return dict(EVAL_PRESETS[name])
