"""`cdv report`: a run as a self-contained HTML report or a Markdown summary.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cdvkit.cli.common import USER_ERRORS, add_command, console, err, error_exit
from cdvkit.cli.common import fail as _fail
from cdvkit.cli.safe_text import visible


def report_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Report file (default: in the run); - writes md to stdout."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html | md")] = "html",
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write PNG plots into this folder.")
    ] = None,
) -> None:
    """A self-contained HTML report (or Markdown summary) of a run, with its search trees."""
    from cdvkit.reporting import FORMATS, build_report, collect, render_markdown, write_pngs
    from cdvkit.store.outputs import check_output

    to_stdout = output is not None and str(output) == "-"
    if to_stdout and fmt != "md":
        if fmt not in FORMATS:
            raise _fail(f"unknown report format {fmt!r} (available: {', '.join(FORMATS)})")
        raise _fail(f"-o - (stdout) takes --format md only; write {fmt} to a file: -o report.{fmt}")
    # With -o -, stdout holds the report alone: every message goes to stderr.
    say = err if to_stdout else console
    try:
        # Every output is checked before anything is written: a refused --png leaves no report.
        if output is not None and not to_stdout:
            check_output(output, run=run)
        if png is not None:
            check_output(png, run=run, folder=True)
        data = collect(run) if to_stdout else None
        if data is not None:
            # Stdout is often a terminal: data text shows its control characters, inert.
            sys.stdout.write(visible(render_markdown(data, plots=png)))
            sys.stdout.flush()
        else:
            path = build_report(run, output, fmt, plots=png)
            say.print(f"wrote {path}", highlight=False, markup=False)
        if png is not None:
            written = write_pngs(data if data is not None else collect(run), png, run=run)
            say.print(f"wrote {len(written)} PNG plots to {png}", highlight=False, markup=False)
    except USER_ERRORS as exc:
        raise error_exit(exc) from None


def register(app: typer.Typer) -> None:
    """Add `report` to ``app``, replacing any command of that name."""
    add_command(app, "report", report_command)
