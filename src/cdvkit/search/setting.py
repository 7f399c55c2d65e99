"""How a search setting is declared: ``setting(...)`` makes a field of SearchConfig that is
also a `cdv generate` option, with its help, its spelling and the values it allows, once."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from cdvkit.allowed import Allowed

# Upper bound of a sampling temperature: the hosted APIs refuse more (OpenAI's range is 0-2).
MAX_TEMPERATURE = 2.0
# A temperature's declaration, shared by every sampling temperature a search sets.
TEMPERATURE = Allowed(min=0, max=MAX_TEMPERATURE)


def task_key(text: str) -> str:
    # --task is read as resolve_task reads it: any case, '-' for '_'.
    return text.strip().lower().replace("-", "_") or "auto"


def setting(
    default: Any = None,
    help: str = "",
    *,
    flag: str | None = None,
    cli: Any = None,
    allowed: Allowed | None = None,
    **kw: Any,
) -> Any:
    """A field of SearchConfig that is also a `cdv generate` option: declared once, here.

    ``flag`` overrides the option's spelling (``--judge-last/--no-judge-last``, ``--constraint``
    for the list ``constraints``); ``cli`` is the option's type where the setting's own cannot
    be typed on a command line (a table given as repeated ``ROLE=N``, a file read into its
    content); ``allowed`` (or its parts as keywords: ``min``, ``max``, ``above``, ``below``,
    ``choices``, ``fold``, ``why``) is the values it takes beyond its type, checked by
    ``validate`` for every way a value arrives; other ``kw`` go to ``dataclasses.field``.
    """
    parts = {
        k: kw.pop(k) for k in ("min", "max", "above", "below", "choices", "fold", "why") if k in kw
    }
    if parts:
        allowed = Allowed(**parts)
    if "default_factory" not in kw:
        kw["default"] = default
    return field(metadata={"help": help, "flag": flag, "cli": cli, "allowed": allowed}, **kw)


def shorthand(
    registry: Any, parts: str | tuple[str, ...], key: str, *, flag: str | None = None
) -> Any:
    """A setting that is a shorthand for the option ``key`` of the parts ``parts`` of
    ``registry`` (``--similarity-floor V`` for ``--constraint similarity:floor=V``): its default,
    help and allowed values are the first part's declaration of the option (a
    cdvkit.registry.PartOption), so they stand once, beside the part. A run builds those parts
    with the setting's value where their spec does not give the option (cdvkit.search.build)."""
    parts = (parts,) if isinstance(parts, str) else parts
    declared = registry.entry(parts[0]).options[key]
    return field(
        default=declared.default,
        metadata={
            "help": f"{declared.help} (shorthand for --{registry.kind} {parts[0]}:{key}=V).",
            "flag": flag,
            "cli": None,
            "allowed": declared.allowed,
            "part": (registry.kind, parts, key),
        },
    )
