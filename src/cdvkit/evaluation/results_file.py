"""The evaluation file (evaluation.json): every defense's result entry of a run, side by side.

It is what ``cdv report`` reads, so it is replaced atomically and never holds half an entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cdvkit.store.outputs import write_text

EVALUATION_FILE = "evaluation.json"
RESULTS_VERSION = 1


def load_evaluation(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's evaluation file, or None when the run was never evaluated."""
    p = Path(run_dir) / EVALUATION_FILE
    if not p.is_file():
        return None
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "evaluations" not in data:
        raise ValueError(f"{p} is not a cdvkit evaluation file")
    version = data.get("version", RESULTS_VERSION)
    if not isinstance(version, int) or version > RESULTS_VERSION:
        # Entries of a newer layout would be shown with missing or misread numbers.
        raise ValueError(
            f"{p} was written by a newer cdvkit (evaluation file version {version}; this one "
            f"reads up to {RESULTS_VERSION}): upgrade cdvkit to read it"
        )
    return data


def entry_key(entry: dict[str, Any]) -> str:
    """An entry's key in the file: its defense, and its preset when it has one, so the paper's
    evaluation sits beside cdvkit's own instead of replacing it."""
    preset = (entry.get("settings") or {}).get("preset")
    return f"{entry['defense']} ({preset} preset)" if preset else str(entry["defense"])


def save_evaluation(run_dir: str | Path, entry: dict[str, Any]) -> Path:
    """Add or replace this defense's entry (per preset), keeping the others so defenses can be
    compared.

    Entries are keyed by the defense's label; a defense file whose name is already taken by
    another text (two ``prompt.txt`` in different folders, or an edited file) gets its own entry
    under ``<label>@<sha>`` instead of replacing the other one's results.
    """
    p = Path(run_dir) / EVALUATION_FILE
    data = load_evaluation(run_dir) or {"version": RESULTS_VERSION, "evaluations": {}}
    old = data["evaluations"].get(entry_key(entry))
    if old is not None and old.get("defense_text") != entry.get("defense_text"):
        sha = (
            entry.get("defense_sha")
            or hashlib.sha256(str(entry.get("defense_text")).encode()).hexdigest()[:12]
        )
        entry["defense"] = f"{entry['defense']}@{sha}"
    data["evaluations"][entry_key(entry)] = entry
    # Atomic (a report never reads half a file), and never over a run store.
    write_text(p, json.dumps(data, indent=2, ensure_ascii=False), run=run_dir)
    return p
