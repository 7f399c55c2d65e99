"""`cdv datasets`, `cdv models`, `cdv parts`: what is available to a run, listed.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cdvkit.cli.common import add_command, console
from cdvkit.cli.layout import TEXT, WHOLE, WORDS, Col, print_fitted


def show_rows(
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    title: str,
    as_json: bool,
    keys: int = 1,
) -> None:
    """A listing as JSON (every field of every row) or as a table of ``columns`` (each with
    what it holds: ``WHOLE`` names people type, ``WORDS``, ``TEXT``; see cdvkit.cli.layout),
    one block per row where even that would be too wide; nothing is cut."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    cols = [Col(name, kind) for name, kind in columns.items()]
    cells = [[str(row[c]) for c in columns] for row in rows]
    print_fitted(console, title, cols, cells, keys=keys)


def datasets(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the datasets --data takes by name (built-in and plugins')."""
    from cdvkit.data import DATASETS

    rows = [
        {
            "name": d.name,
            "task": d.task,
            "source": d.where or "-",
            "split": d.split or "-",
            "about": d.description,
        }
        for d in (entry.value for entry in DATASETS.entries())
    ]
    show_rows(
        rows,
        {"name": WHOLE, "task": WHOLE, "source": WHOLE, "split": WHOLE, "about": TEXT},
        "Built-in datasets (or pass --data path/to/file.json|jsonl|csv)",
        as_json,
        keys=2,
    )


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List model providers and whether each is usable here. Keys are never shown."""
    from cdvkit.models.registry import PROVIDERS, provider_status

    rows = []
    for info in (entry.value for entry in PROVIDERS.entries()):
        ok, why = provider_status(info)
        rows.append(
            {
                "provider": info.name,
                "example": info.example,
                "usable": ok,
                "status": why,
                "key_env": info.key_env,
                "about": info.description,
            }
        )
    show_rows(
        rows,
        {"provider": WHOLE, "status": WORDS, "example": WHOLE, "about": TEXT},
        "Model providers (model strings look like provider/model)",
        as_json,
        keys=2,
    )


def parts(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the registered parts: proposers, constraints, strategies, providers, formats.

    Prompt defences, presets, datasets and executors too, and parts other packages add through
    entry points.
    """
    from cdvkit.parts import part_kinds

    rows = [
        {"kind": k.kind, "name": e.name, "used as": k.used_as, "about": _about(e)}
        for k in part_kinds()
        for e in k.registry.entries()
    ]
    show_rows(
        rows,
        {"kind": WORDS, "name": WHOLE, "used as": WORDS, "about": TEXT},
        "Registered parts (add your own: README, How to add a part)",
        as_json,
        keys=2,
    )


def _about(entry: Any) -> str:
    """A part's help, and an export format's options with their defaults."""
    from cdvkit.export import Exporter

    if not isinstance(entry.value, Exporter) or not entry.value.options:
        return entry.help
    options = ", ".join(f"{k}={o.default!r}" for k, o in entry.value.options.items())
    return f"{entry.help} (options: {options})"


def register(app: typer.Typer) -> None:
    """Add `datasets`, `models` and `parts` to ``app``, replacing any command of those names."""
    for command in (datasets, models, parts):
        add_command(app, command.__name__, command)
