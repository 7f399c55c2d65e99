"""Prompt and reply text for local models, kept free of torch and transformers.

``cdv train`` builds its training rows with the very rendering the ``hf/`` backend asks with, and
must do so without loading a model; both import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdvkit.models.base import Message


def render_plain(messages: Sequence[Message]) -> str:
    """Fallback rendering for tokenizers without a chat template (base models)."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    found = [i for s in stops if s and (i := text.find(s)) != -1]
    return min(found) if found else None


def merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with the system turns folded into the first user turn, for chat templates
    that refuse a system role."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return messages
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = "\n\n".join([*system, rest[0]["content"]])
        return rest
    return [{"role": "user", "content": "\n\n".join(system)}, *rest]
