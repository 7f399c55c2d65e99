"""How an evaluation's results read in a terminal: one table per defense, then side by side.

The layout changes for other reasons than the command's options do, so it lives apart from them;
it reads only a result entry (as saved in evaluation.json), never the objects that made it.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from cdvkit.cli.common import console

# Below this many columns (or the table's own width) a table is shown as one block per row.
WIDE = 140


def print_table(
    title: str, headers: list[str], rows: list[list[str]], classes: list[str], keys: int = 3
) -> None:
    """A table, or where it would not fit whole one block per row (the first ``keys`` cells
    name it), so no number is cut or folded mid-figure."""
    if console.width < max(WIDE, _natural_width(headers, rows)):
        console.print(title, highlight=False)
        for row, cls in zip(rows, classes, strict=True):
            block = Table(
                title=" · ".join(escape(c) for c in row[:keys]),
                title_justify="left",
                title_style="bold" if cls == "overall" else None,
                show_header=False,
            )
            block.add_column(no_wrap=True)
            block.add_column(justify="right")
            for h, v in zip(headers[keys:], row[keys:], strict=True):
                block.add_row(h, escape(v))
            console.print(block)
        return
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(headers):
        t.add_column(col, justify="left" if i < keys else "right")
    for row, cls in zip(rows, classes, strict=True):
        t.add_row(*(escape(c) for c in row), style="bold" if cls == "overall" else None)
    console.print(t)


def _natural_width(headers: list[str], rows: list[list[str]]) -> int:
    """The width the table needs with no cell folded (headers may wrap at their spaces)."""
    widths = [
        max([len(w) for w in h.split()] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)
    ]
    return sum(w + 3 for w in widths) + 1


def print_evaluation(entry: dict[str, Any]) -> None:
    from cdvkit.reporting.tables import (
        ACC_HEADERS,
        ORDER_HEADERS,
        PAPER_HEADERS,
        accuracy_rows,
        by_construction_note,
        headers_for,
        order_rows,
        paper_rows,
        pct,
        protocol_line,
    )

    st = entry["settings"]
    rows, classes = paper_rows(entry)
    if rows:
        print_table(
            f"The paper's numbers · defense {entry['defense']} · original: every question; "
            "enhanced: the first example of each question (originally failed ones as themselves)",
            headers_for(entry, PAPER_HEADERS),
            rows,
            classes,
        )
    # The same rows as the reports' tables (cdvkit.reporting.tables).
    rows, classes = accuracy_rows(entry)
    print_table(
        f"CDV evaluation · defense {entry['defense']} · "
        f"{'all examples' if st['all_examples'] else 'first example'} per question",
        headers_for(entry, ACC_HEADERS),
        rows,
        classes,
    )
    rows, classes = order_rows(entry)
    if rows:
        print_table(
            "Order control: the original asked in its example's choice order "
            "(drop = order part + distraction part)",
            headers_for(entry, ORDER_HEADERS),
            rows,
            classes,
        )
    note = by_construction_note(entry)
    if note:
        console.print(f"[yellow]{escape(note)}[/]", highlight=False)
    tr = entry["transfer"]
    if len(tr["rows"]) > 1 or len(tr["cols"]) > 1:
        m = Table(
            title="Transfer: distracted accuracy (drop)",
            title_justify="left",
        )
        m.add_column("examples found against \\ model")
        for c in tr["cols"]:
            m.add_column(c, justify="right")
        for i, row in enumerate(tr["rows"]):
            m.add_row(
                row,
                *(
                    f"{pct(tr['distracted'][i][j])} ({pct(tr['drop'][i][j])})"
                    for j in range(len(tr["cols"]))
                ),
            )
        console.print(m)
    a = entry["answers"]
    paid = entry.get("paid_calls")
    console.print(
        f"{a['total']} answers, {a['cached']} from the store"
        + (f", {paid} paid calls (USD {entry.get('cost', 0.0):.4f})" if paid is not None else "")
        + (f", [yellow]{len(entry['errors'])} failed[/]" if entry["errors"] else ""),
        highlight=False,
    )
    console.print(f"protocol: {protocol_line(st)}", highlight=False)


def print_defense_comparison(entries: list[dict[str, Any]]) -> None:
    """One table: per model, original → distracted accuracy (drop) under each defense."""
    from cdvkit.reporting.tables import defense_comparison

    _, rows, _ = defense_comparison(entries)
    t = Table(
        title="Defenses side by side: original → distracted accuracy (drop [CI])",
        title_justify="left",
    )
    t.add_column("model")
    for e in entries:
        t.add_column(escape(e["defense"]), justify="right")
    for row in rows:
        t.add_row(*(escape(c) for c in row))
    console.print(t)
