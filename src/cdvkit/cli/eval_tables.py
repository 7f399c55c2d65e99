"""How an evaluation's results read in a terminal: one table per defense, then side by side.

The layout changes for other reasons than the command's options do, so it lives apart from them;
it reads only a result entry (as saved in evaluation.json), never the objects that made it.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from cdvkit.cli.common import console


def fmt_pct(v: float | None, ci: list[float] | None = None) -> str:
    if v is None:
        return "–"
    if not ci:
        return f"{v:.1%}"
    return f"{v:.1%} [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def print_evaluation(entry: dict[str, Any]) -> None:
    from cdvkit.reporting.html import protocol_line

    st = entry["settings"]
    conf = round(st["confidence"] * 100)
    t = Table(
        title=f"CDV evaluation · defense {entry['defense']} · "
        f"{'all examples' if st['all_examples'] else 'first example'} per question",
        title_justify="left",
    )
    for col in (
        "examples from",
        "model",
        "dataset",
        "n",
        "original",
        "distracted",
        f"drop [{conf}% CI]",
        f"rel. drop [{conf}% CI]",
        "McNemar p",
    ):
        t.add_column(
            col, justify="left" if col in ("examples from", "model", "dataset") else "right"
        )
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            named = [("overall", r["overall"]), *r["by_dataset"].items()]
            if len(r["by_dataset"]) < 2:
                named = named[:1]  # one dataset: its row would repeat the overall one
            for name, s in named:
                m = s["mcnemar"]
                p = "–" if m["method"] == "none" else f"{m['p_value']:.3g} ({m['method']})"
                t.add_row(
                    source,
                    model,
                    name,
                    str(s["n"]),
                    fmt_pct(s["original"]),
                    fmt_pct(s["distracted"]),
                    fmt_pct(s["drop"], s["drop_ci"]),
                    fmt_pct(s["relative_drop"], s["relative_drop_ci"]),
                    p,
                    style="bold" if name == "overall" else None,
                )
    console.print(t)
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
                    f"{fmt_pct(tr['distracted'][i][j])} ({fmt_pct(tr['drop'][i][j])})"
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
    from cdvkit.reporting.html import defense_comparison

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
