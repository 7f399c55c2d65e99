"""Defenses: what is added to the system prompt to help a model ignore a distraction.

A defense is named in the results by its label, but it is its text that changes the answers, so
its text (and a digest of it) travels with every result and every cached answer's key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cdvkit.prompts import DEFENSES


@dataclass(frozen=True)
class Defense:
    label: str  # built-in name, or the file name of a custom system prompt
    text: str
    path: str | None = None

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


def resolve_defense(spec: str) -> Defense:
    """A built-in defense name, or a path (optionally ``file:PATH``) to a file holding a system
    prompt addition. ``file:`` reads a file even when its name is also a built-in's."""
    if spec in DEFENSES:
        return Defense(spec, DEFENSES[spec])
    p = Path(spec.removeprefix("file:"))
    if p.is_file():
        text = p.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"defense file {p} is empty")
        return Defense(p.name, text, str(p))
    if spec.startswith("file:"):
        raise ValueError(f"defense file {p} not found")
    raise ValueError(
        f"unknown defense {spec!r}: use one of {', '.join(DEFENSES)} or a path to a text file"
    )
