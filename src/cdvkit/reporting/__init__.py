"""Reports of a run: one self-contained HTML file, a Markdown summary, PNG plots."""

from __future__ import annotations

import os
from pathlib import Path

from cdvkit.reporting.data import collect
from cdvkit.reporting.html import render_html, script_json
from cdvkit.reporting.markdown import render_markdown
from cdvkit.reporting.plots import write_pngs
from cdvkit.store import check_writable_output
from cdvkit.store.outputs import check_output, write_text

FORMATS = ("html", "md")


def build_report(
    run_dir: str | Path,
    output: str | Path | None = None,
    fmt: str = "html",
    *,
    plots: str | Path | None = None,
) -> Path:
    """Write the run's report (``html`` or ``md``) and return its path; ``plots``: the folder
    the PNG plots go to (``--png``), which a Markdown report links to.

    The report replaces an older one whole (an interrupted write leaves the old file); an output
    on a run store, or inside another run, is refused before anything is read (OutputError)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (available: {', '.join(FORMATS)})")
    out = Path(output) if output else Path(run_dir) / f"report.{fmt}"
    if not output:
        check_writable_output(out, run_dir, "pass -o/--output FILE to write the report elsewhere")
    check_output(out, run=run_dir)
    data = collect(run_dir)
    links = None if plots is None else os.path.relpath(plots, out.resolve().parent)
    text = render_html(data) if fmt == "html" else render_markdown(data, plots=links)
    write_text(out, text, run=run_dir)
    return out


__all__ = [
    "FORMATS",
    "build_report",
    "collect",
    "render_html",
    "render_markdown",
    "script_json",
    "write_pngs",
]
