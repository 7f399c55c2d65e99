"""`cdv report`: a run as a self-contained HTML report or a Markdown summary.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cdvkit.cli.common import USER_ERRORS, add_command, console
from cdvkit.cli.common import fail as _fail


def report_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report file (default: in the run).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html | md")] = "html",
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write PNG plots into this folder.")
    ] = None,
) -> None:
    """A self-contained HTML report (or Markdown summary) of a run, with its search trees."""
    from cdvkit.reporting import build_report, collect, write_pngs

    try:
        path = build_report(run, output, fmt)
        console.print(f"wrote {path}", highlight=False)
        if png is not None:
            written = write_pngs(collect(run), png)
            console.print(f"wrote {len(written)} PNG plots to {png}", highlight=False)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add `report` to ``app``, replacing any command of that name."""
    add_command(app, "report", report_command)
