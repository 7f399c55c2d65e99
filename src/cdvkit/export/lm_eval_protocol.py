"""The lm-eval export's default mode: the run's protocol itself as lm-eval tasks.

Each document carries the target's messages as cdvkit renders them for the run (the system
prompt as the task's ``description``, the user message as ``doc_to_text``; with lm-eval's
``--apply_chat_template`` the model gets exactly these two messages). A sampled protocol becomes
a ``generate_until`` task asking ``samples`` answers (``repeats``) at the protocol's temperature
and reply cap; the task folder's ``utils.py`` reads them with cdvkit's own readers
(:mod:`cdvkit.export.lm_eval_score`) and counts the question right when one of them is right. An
exact protocol (choice probabilities) becomes a ``multiple_choice`` task over the letters after
the same messages and ``Answer:``, right by :func:`cdvkit.protocol.exact_outcome`.
"""

from __future__ import annotations

from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.models.base import GenerateRequest
from cdvkit.models.hf_backend import DEFAULT_ANSWER_PREFIX
from cdvkit.prompts import target_request
from cdvkit.protocol import Protocol
from cdvkit.tasks import shape_of
from cdvkit.tasks.prompts import free_target_request

# The filter that hands process_results every reply, not lm-eval's default first one.
PROTOCOL_FILTER = "protocol"

# The settings of the run the protocol reads (cdvkit.protocol.protocol_from_config), written to
# the task folder as protocol.json so its utils.py reads replies as the run's protocol does.
PROTOCOL_KEYS = (
    "protocol",
    "samples",
    "temperature",
    "target_prompt",
    "threshold",
    "prompts",
    "max_tokens",
)
PROTOCOL_FILE = "protocol.json"

# The task folder's utils.py: lm-eval loads it by path (``!function utils.process_results``).
UTILS_PY = f'''"""Scoring of these tasks with cdvkit's own readers, under the run's protocol
({PROTOCOL_FILE}), so the numbers mean what cdv evaluate's mean. Needs cdvkit installed where
lm_eval runs (pip install cdvkit)."""

from pathlib import Path

from cdvkit.export.lm_eval_score import Scorer, question_mean

process_results = Scorer.from_file(Path(__file__).with_name("{PROTOCOL_FILE}")).process_results

__all__ = ["process_results", "question_mean"]
'''


def protocol_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run's settings that define its protocol (what protocol.json holds)."""
    return {k: cfg[k] for k in PROTOCOL_KEYS if cfg.get(k) is not None}


class Function(str):
    """A YAML ``!function module.name`` reference (what lm-eval resolves next to the YAML)."""


def target_request_of(
    protocol: Protocol, question: str, choices: list[str], task: str
) -> GenerateRequest:
    """The target's request for one question, from the request builders the protocol's Asker
    uses, with the run's templates (exact scoring always reads the letter prompt)."""
    if shape_of(task).has_choices:
        prompt = protocol.prompt if protocol.scoring == "sample" else "letter"
        return target_request(
            question,
            choices,
            temperature=protocol.temperature,
            prompt=prompt,
            prompts=protocol.prompts,
        )
    return free_target_request(
        question, task, temperature=protocol.temperature, prompts=protocol.prompts
    )


def reply_cap(protocol: Protocol, shape: str) -> int:
    """The reply's token cap the protocol asks ``shape`` questions with."""
    return target_request_of(protocol, "?", ["?"], shape).max_tokens


def protocol_row(protocol: Protocol, row: dict[str, Any]) -> dict[str, Any]:
    """A task document with the target's messages added: ``system`` (empty when its template
    has none) and ``prompt`` (the user message)."""
    messages = target_request_of(
        protocol, row["question"], row.get("choices") or [], row["task"]
    ).message_dicts
    system = [m["content"] for m in messages if m["role"] == "system"]
    user = [m["content"] for m in messages if m["role"] == "user"]
    if len(system) > 1 or len(user) != 1 or len(messages) != len(system) + len(user):
        # lm-eval holds one system prompt (the description) and one user turn (the document).
        roles = [m["role"] for m in messages]
        raise ValueError(
            f"the target's template gives the messages {roles}; an lm-eval task holds one "
            "system message at most and one user message"
        )
    out = {**row, "system": system[0] if system else "", "prompt": user[0]}
    if row.get("choices") and protocol.scoring == "exact":
        out["labels"] = list(LETTERS[: len(row["choices"])])
    return out


def protocol_config(protocol: Protocol, shape: str, cap: int, per_question: bool) -> dict:
    """What a protocol task adds to the common part (dataset, split, tag)."""
    aggregation: Any = Function("utils.question_mean") if per_question else "mean"
    common: dict[str, Any] = {
        # A template, not a field name: older lm-eval releases only render templates here.
        "description": "{{system}}",
        "doc_to_text": "prompt",
        "doc_to_target": "answer",
        "process_results": Function("utils.process_results"),
        "metric_list": [{"metric": "acc", "aggregation": aggregation, "higher_is_better": True}],
    }
    if protocol.scoring == "exact":
        if not shape_of(shape).has_choices:
            raise ValueError(f"an exact protocol has no choices to score in {shape!r} questions")
        return {
            "output_type": "multiple_choice",
            "doc_to_choice": "labels",
            "gen_prefix": DEFAULT_ANSWER_PREFIX,
            "target_delimiter": " ",
            **common,
        }
    n, temperature = protocol.samples, protocol.temperature
    return {
        "output_type": "generate_until",
        **common,
        "repeats": n,
        "generation_kwargs": {
            # No stop string: the protocol reads the whole step-by-step reply (lm-eval still
            # stops at the model's end-of-sequence token); without this key it would stop at
            # the first blank line.
            "until": [],
            "do_sample": temperature > 0,
            "temperature": temperature,
            "max_gen_toks": cap,
        },
        "filter_list": [
            {"name": PROTOCOL_FILTER, "filter": [{"function": "take_first_k", "k": n}]}
        ],
    }
