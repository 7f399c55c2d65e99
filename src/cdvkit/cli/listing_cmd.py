"""`cdv datasets`, `cdv models`, `cdv parts`: what is available to a run, listed.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from cdvkit.cli.common import add_command, console


def show_rows(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    title: str,
    as_json: bool,
    overflow: Literal["fold", "crop", "ellipsis", "ignore"] = "ellipsis",
    whole: tuple[str, ...] = (),
) -> None:
    """A listing as JSON (every field of every row) or as a table of ``columns``; the
    ``whole`` columns (names people type) are never wrapped nor cut, the others give way."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table(title=title)
    for col in columns:
        if col in whole:
            width = max([len(col), *(len(str(r[col])) for r in rows)])
            t.add_column(col, no_wrap=True, min_width=width)
        else:
            t.add_column(col, overflow=overflow)
    for row in rows:
        t.add_row(*(str(row[c]) for c in columns))
    console.print(t)


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
        ("name", "task", "source", "split", "about"),
        "Built-in datasets (or pass --data path/to/file.json|jsonl|csv)",
        as_json,
        overflow="fold",
        whole=("name", "task"),
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
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table(title="Model providers (model strings look like provider/model)")
    for col in ("provider", "example", "status", "about"):
        t.add_column(col)
    for row in rows:
        status = ("[green]" if row["usable"] else "[yellow]") + str(row["status"]) + "[/]"
        t.add_row(row["provider"], row["example"], status, row["about"])
    console.print(t)


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
        ("kind", "name", "used as", "about"),
        "Registered parts (add your own: README, How to add a part)",
        as_json,
        overflow="fold",
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
