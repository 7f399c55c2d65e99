"""`cdv datasets`, `cdv models`, `cdv parts`: what is available to a run, listed.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

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
    name: Annotated[
        str | None,
        typer.Argument(help="One part's options, with their defaults, values and help."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the registered parts: proposers, constraints, strategies, providers, formats.

    Prompt defences, presets, datasets and executors too, and parts other packages add through
    entry points. Each part's options are listed with their defaults (`cdv parts NAME`: with
    their values and help); a spec sets them, e.g. --constraint similarity:floor=0.6.
    """
    from cdvkit.parts import part_kinds

    found = [(k, e) for k in part_kinds() for e in k.registry.entries()]
    if name is not None:
        found = [(k, e) for k, e in found if e.name == name]
        if not found:
            raise typer.BadParameter(f"no part is registered as {name!r} (cdv parts lists them)")
        _show_options(found, as_json)
        return
    rows = [
        {"kind": k.kind, "name": e.name, "used as": k.used_as, "about": _about(e)}
        | ({"options": _options(e), "roles": list(e.roles)} if as_json else {})
        for k, e in found
    ]
    show_rows(
        rows,
        {"kind": WORDS, "name": WHOLE, "used as": WORDS, "about": TEXT},
        "Registered parts (add your own: README, How to add a part)",
        as_json,
        keys=2,
    )


def _declared(entry: Any) -> dict[str, Any]:
    """A part's declared options (an export format's live on the format itself)."""
    from cdvkit.export import Exporter

    if isinstance(entry.value, Exporter):
        return dict(entry.value.options)
    return dict(entry.options or {})


def _options(entry: Any) -> dict[str, dict[str, Any]]:
    """Each option of a part as `cdv parts --json` shows it: default, values, help."""
    from cdvkit.allowed import describe

    out = {}
    for key, opt in _declared(entry).items():
        # An export format's FormatOption has no type_hint: its hint, else its default's type.
        default_type = Any if opt.default is None else type(opt.default)
        hint = opt.type_hint() if hasattr(opt, "type_hint") else opt.hint or default_type
        out[key] = {
            "default": opt.default,
            "takes": describe(hint, opt.allowed),
            "required": bool(getattr(opt, "required", False)),
            "help": opt.help,
        }
    return out


def _show_options(found: list[tuple[Any, Any]], as_json: bool) -> None:
    """`cdv parts NAME`: the part (of every kind that has one of that name) and its options."""
    if as_json:
        rows = [
            {
                "kind": k.kind,
                "name": e.name,
                "used as": k.used_as,
                "about": e.help,
                "options": _options(e),
                "roles": list(e.roles),
            }
            for k, e in found
        ]
        print(json.dumps(rows, indent=2, default=repr))
        return
    for kind, entry in found:
        head = f"{kind.kind} {entry.name} ({kind.used_as}): {entry.help}"
        console.print(escape(head), highlight=False)
        if entry.roles:
            roles = ", ".join(f"--role {r}=provider/model" for r in entry.roles)
            console.print(escape(f"calls models under roles of its own: {roles}"), highlight=False)
        options = _options(entry)
        if not options:
            console.print("options: none" if _declared(entry) == {} else "options: not declared")
            continue
        rows = [
            {
                "option": key,
                "default": "(required)" if o["required"] else repr(o["default"]),
                "takes": o["takes"],
                "help": o["help"],
            }
            for key, o in options.items()
        ]
        example = f"{entry.name}:{next(iter(options))}=VALUE"
        show_rows(
            rows,
            {"option": WHOLE, "default": WHOLE, "takes": WORDS, "help": TEXT},
            f"Options of {kind.kind} {entry.name} ({kind.used_as} {example})",
            False,
        )


def _about(entry: Any) -> str:
    """A part's help, and its options with their defaults."""
    options = _declared(entry)
    if not options:
        return entry.help
    listed = ", ".join(f"{k}={o.default!r}" for k, o in options.items())
    return f"{entry.help} (options: {listed})"


def register(app: typer.Typer) -> None:
    """Add `datasets`, `models` and `parts` to ``app``, replacing any command of those names."""
    for command in (datasets, models, parts):
        add_command(app, command.__name__, command)
