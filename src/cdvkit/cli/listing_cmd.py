"""`cdv datasets`, `cdv models`, `cdv parts`: what is available to a run, listed.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from cdvkit.cli.common import add_command, console
from cdvkit.search.constraints import CONSTRAINTS
from cdvkit.search.proposers import PROPOSERS
from cdvkit.search.strategies import STRATEGIES


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
    """List the built-in datasets."""
    from cdvkit.data import BUILTINS

    rows = [
        {
            "name": "sample",
            "task": "multiple_choice",
            "source": "bundled with cdvkit",
            "split": "-",
            "about": "offline demo",
        }
    ] + [
        {
            "name": b.name,
            "task": b.task,
            "source": b.path,
            "split": b.split,
            "about": b.description,
        }
        for b in BUILTINS.values()
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

    Prompt defences too, and parts other packages add through entry points.
    """
    from cdvkit.export import EXPORTERS
    from cdvkit.models.registry import PROVIDERS
    from cdvkit.prompts import DEFENSES
    from cdvkit.search.preset import PRESETS

    kinds = [
        ("proposer", "--proposer", PROPOSERS),
        ("constraint", "--constraint", CONSTRAINTS),
        ("strategy", "--strategy", STRATEGIES),
        ("provider", "provider/model", PROVIDERS),
        ("export format", "cdv export --format", EXPORTERS),
        ("defense", "cdv evaluate --defense", DEFENSES),
        ("preset", "--preset", PRESETS),
    ]
    rows = [
        {"kind": kind, "name": e.name, "used as": used, "about": e.help}
        for kind, used, registry in kinds
        for e in registry.entries()
    ]
    show_rows(
        rows,
        ("kind", "name", "used as", "about"),
        "Registered parts (add your own: README, How to add a part)",
        as_json,
        overflow="fold",
    )


def register(app: typer.Typer) -> None:
    """Add `datasets`, `models` and `parts` to ``app``, replacing any command of those names."""
    for command in (datasets, models, parts):
        add_command(app, command.__name__, command)
