"""One check of every model a command will use, before it writes or pays for anything.

A missing key, a server that cannot be reached or a model name the server does not know is then
one line naming the role, the model and the fix, instead of a progress bar of failures.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cdvkit.models.base import Model
from cdvkit.models.errors import ModelError


class PreflightError(ValueError):
    """A role's model cannot be used (no key, server unreachable, unknown model): one line."""


@dataclass(frozen=True)
class Wanted:
    """A model a command needs: ``key`` names it in the result, ``role`` in messages; entries
    with the same ``identity`` share one backend (one check, one local model in memory)."""

    key: str
    role: str
    spec: str
    identity: Hashable
    build: Callable[[], Model]


async def preflight(wanted: list[Wanted]) -> dict[str, Model]:
    """Build and check every wanted model; returns them by key. Raises PreflightError."""
    by_identity: dict[Hashable, Model] = {}
    built: dict[str, Model] = {}
    try:
        for w in wanted:
            try:
                model = by_identity.get(w.identity)
                if model is None:
                    model = by_identity[w.identity] = w.build()
                    await model.check()
            except (ValueError, ModelError) as exc:
                raise PreflightError(preflight_message(w.role, w.spec, exc)) from None
            built[w.key] = model
    finally:
        for model in by_identity.values():
            await model.aclose()  # its clients belong to this event loop; the run opens its own
    return built


def preflight_message(role: str, spec: str, exc: Exception) -> str:
    text = str(exc).removeprefix(f"[{spec}] ")
    if "cannot reach" in text or "timed out" in text:
        text += "; is the server running, and is --base-url right?"
    return f"{role} model {spec}: {text}"
