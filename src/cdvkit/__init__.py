"""cdvkit: find, measure and repair Contextual Distraction Vulnerability in LLMs.

``cdvkit.generate``, ``cdvkit.evaluate`` and ``cdvkit.report`` do what the `cdv` commands of the
same names do, ``cdvkit.estimate`` what ``cdv generate --estimate`` does (see cdvkit.api); they
are imported on first use, so ``import cdvkit`` stays light.
"""

from __future__ import annotations

from typing import Any

from cdvkit.version import __version__

__all__ = ["__version__", "estimate", "evaluate", "generate", "report"]


def __getattr__(name: str) -> Any:
    if name in ("generate", "evaluate", "report", "estimate"):
        from cdvkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'cdvkit' has no attribute {name!r}")
