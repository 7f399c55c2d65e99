"""Settings as users write them, before they are SearchConfig's: a TOML config file, the items
of ``--max-tokens`` and ``--role``. Each unreadable input is one line naming the file or the
item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdvkit.tomlfile import read_toml


def parse_max_tokens(items: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``--max-tokens`` items (``ROLE=N``, or ``N`` for the target) as {role: N}."""
    out: dict[str, int] = {}
    for item in items:
        role, eq, n = str(item).rpartition("=")
        role = role.strip() if eq else "target"
        try:
            out[role] = int(n)
        except ValueError:
            raise ValueError(f"--max-tokens {item!r}: not N or ROLE=N (e.g. judge=512)") from None
    return out


def parse_role_models(items: Any) -> dict[str, str]:
    """``--role`` items (``ROLE=provider/model``, repeatable; a config file may also write a
    table, ``[role]`` ``critic = "openai/gpt-4o"``) as {role: model}."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, str] = {}
    for item in [items] if isinstance(items, str) else items:
        role, eq, model = str(item).partition("=")
        if not eq or not role.strip() or not model.strip():
            raise ValueError(
                f"--role {item!r}: not ROLE=provider/model (e.g. critic=openai/gpt-4o)"
            )
        out[role.strip()] = model.strip()
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file; keys may sit at the top level or under a [generate] table."""
    p = Path(path)
    raw = read_toml(p, "config file")
    section = raw.pop("generate", {})
    if not isinstance(section, dict):
        raise ValueError(f"config file {p}: generate must be a table, [generate]")
    return {
        **{k.replace("-", "_"): v for k, v in raw.items()},
        **{k.replace("-", "_"): v for k, v in section.items()},
    }
