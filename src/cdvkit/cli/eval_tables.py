"""How an evaluation's results read in a terminal: one compact table, models by defences.

Each cell holds a model's original -> distracted accuracy under one defence, the drop, its
interval and McNemar's p (and, where measured, its accuracy on every question and the part of
the drop the example's choice order alone causes); the model's cell says how many questions
it rests on. With ``--preset paper`` the paper's original / enhanced / drop comes first, in the
same shape. Every other number (each accuracy's interval, the relative drop, the transfer
matrix) is in ``--json`` and evaluation.json. Names and numbers are never cut
(cdvkit.cli.layout): where the table would not fit, model names are shown without the prefix
they share (the line under the table says which), and where it still would not, one block per
model.

The layout changes for other reasons than the command's options do, so it lives apart from them;
it reads only result entries (as saved in evaluation.json), never the objects that made them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape

from cdvkit.cli.common import console
from cdvkit.cli.layout import WHOLE, Col, fitted_table, print_blocks

Cell = Callable[[dict[str, Any], str, str, str], str | None]


def short_names(names: list[str]) -> tuple[dict[str, str], str]:
    """Names without the prefix they all share, up to a ``/`` (``openai-compatible/``), and that
    prefix ("" when there is none, or only one name): a rule a reader can undo."""
    distinct = list(dict.fromkeys(names))
    if len(distinct) < 2:
        return {n: n for n in distinct}, ""
    split = [n.split("/") for n in distinct]
    shared = 0  # leading parts every name has, each name keeping at least its last part
    while (
        all(len(parts) > shared + 1 for parts in split)
        and len({parts[shared] for parts in split}) == 1
    ):
        shared += 1
    prefix = "".join(part + "/" for part in split[0][:shared])
    if not prefix:
        return {n: n for n in distinct}, ""
    return {n: n[len(prefix) :] for n in distinct}, prefix


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def _groups(entry: dict[str, Any], source: str, model: str) -> list[str]:
    from cdvkit.reporting.tables import groups_of, split_by

    r = entry["results"].get(source, {}).get(model)
    if r is None:
        return ["overall"]
    return [name for name, _ in groups_of(r, None, split_by(entry))]


def cdv_cell(entry: dict[str, Any], source: str, model: str, group: str) -> str | None:
    """original -> distracted (* by construction), the drop and its interval, the accuracy on
    every question where known, the order's part of the drop where controlled."""
    from cdvkit.reporting.tables import group_of, pct, split_by

    r = entry["results"].get(source, {}).get(model)
    if r is None:
        return None
    by = split_by(entry)
    st = group_of(r, group, by)  # the paired numbers: the result itself, or one of its groups
    if st is None:
        return None
    mark = "*" if r.get("by_construction") else ""
    lines = [
        f"{pct(st['original'])} → {pct(st['distracted'])}{mark}",
        f"drop {pct(st['drop'])}",
    ]
    if st.get("drop_ci"):
        lines.append(_ci(st["drop_ci"]))
    mcnemar = st.get("mcnemar") or {}
    if mcnemar.get("method") not in (None, "none"):
        lines.append(f"p={mcnemar['p_value']:.3g}")
    whole = group_of(r.get("whole"), group, by)
    if whole is not None:
        lines.append(f"all {pct(whole['original'])}")
    order = group_of(r.get("order"), group, by)
    if order is not None:
        lines.append(f"order {pct(order['order_drop'])}")
    return "\n".join(lines)


def paper_cell(entry: dict[str, Any], source: str, model: str, group: str) -> str | None:
    """The paper's numbers: original (every question) -> enhanced (the first example of each,
    originally failed questions as themselves), the drop and its interval, both counts."""
    from cdvkit.reporting.tables import group_of, pct, split_by

    r = entry["results"].get(source, {}).get(model)
    st = group_of((r or {}).get("paper"), group, split_by(entry))
    if st is None:
        return None
    lines = [
        f"{pct(st['original'])} → {pct(st['enhanced'])}",
        f"drop {pct(st['drop'])}",
    ]
    if st.get("drop_ci"):
        lines.append(_ci(st["drop_ci"]))
    lines.append(f"n={st['n_original']}→{st['n_enhanced']}")
    if st.get("originally_failed"):
        lines.append(f"{st['originally_failed']} orig. failed")
    return "\n".join(lines)


def _n_cell(entry: dict[str, Any], source: str, model: str, group: str) -> str:
    """``n=K``: questions with an example (``of N``: all questions, where all were asked)."""
    from cdvkit.reporting.tables import group_of, split_by

    r = entry["results"].get(source, {}).get(model)
    if r is None:
        return ""
    by = split_by(entry)
    st = group_of(r, group, by)
    whole = group_of(r.get("whole"), group, by)
    n = "n=–" if st is None else f"n={st['n']}"
    return n if whole is None else f"{n} of {whole['n']}"


def print_grid(
    entries: list[dict[str, Any]], title: str, cell: Cell, legend: str, counts: bool = True
) -> bool:
    """One table: a row per (example set,) model (and dataset or subject), a column per
    defence, each cell from ``cell`` (with ``counts``, the model's cell says its questions);
    False when no cell has anything to show. Names are shown whole; only where the table
    would not fit are the model names shown without the prefix they share (said below it),
    and where it still would not, it is printed as one block per row."""
    first = entries[0]
    sources = list(dict.fromkeys(s for e in entries for s in e["results"]))
    models = list(dict.fromkeys(m for e in entries for m in e["models"]))
    defences = [str(e["defense"]) for e in entries]
    several = len(sources) > 1
    cols = [Col("examples")] if several else []
    cols += [Col("model")]
    cols += [Col(d, WHOLE, "right", header_folds=True) for d in defences]
    keys = 2 if several else 1  # as blocks: a row is named by its example set and model
    # (example set, model, group, its questions, a cell per defence)
    table: list[tuple[str, str, str, str, list[str]]] = []
    styles: list[str | None] = []
    for source in sources:
        for model in models:
            for group in _groups(first, source, model):
                cells = [cell(e, source, model, group) for e in entries]
                if all(c is None for c in cells):
                    continue
                n = _n_cell(first, source, model, group) if counts else ""
                table.append((source, model, group, n, [c or "–" for c in cells]))
                styles.append("bold" if group == "overall" else None)
    if not table:
        return False

    def rows(model_names: dict[str, str], source_names: dict[str, str]) -> list[list[str]]:
        return [
            ([source_names[s]] if several else [])
            + ["\n".join(x for x in (model_names[m] if g == "overall" else f"  {g}", n) if x)]
            + rest
            for s, m, g, n, rest in table
        ]

    whole = {m: m for m in models}, {s: s for s in sources}
    short = short_names(models), short_names(sources)
    left_out: list[tuple[str, str]] = []
    t = fitted_table(None, cols, rows(*whole), console.width, styles, show_lines=True)
    if t is None:
        (model_names, prefix), (source_names, source_prefix) = short
        t = fitted_table(
            None, cols, rows(model_names, source_names), console.width, styles, show_lines=True
        )
        if t is not None:
            left_out = [("models", prefix), ("example sets", source_prefix)]
    if t is None:
        print_blocks(console, title, cols, rows(*whole), keys=keys, styles=styles)
    else:
        console.print(title, highlight=False, markup=False)
        console.print(t)
    console.print(legend, highlight=False, markup=False)
    for what, pre in left_out:
        if pre:
            console.print(
                f"{what} above start with {escape(pre)} (left out)", highlight=False, soft_wrap=True
            )
    return True


def print_results(entries: list[dict[str, Any]]) -> None:
    """Every defence's results in one compact table (the paper's first with --preset paper),
    then the answers each defence took and the protocol."""
    from cdvkit.reporting.tables import by_construction_note, protocol_line

    if not entries:
        return
    first = entries[0]
    conf = round(first.get("settings", {}).get("confidence", 0.95) * 100)
    if (first.get("settings") or {}).get("preset") == "paper":
        print_grid(
            entries,
            "The paper's numbers: original → enhanced accuracy",
            paper_cell,
            "original: every question (n before →); enhanced: the first example of each "
            "question with one, originally failed questions as themselves (n after →); "
            f"drop [{conf}% CI].",
            counts=False,
        )
    examples = "all examples" if first["settings"].get("all_examples") else "first example"
    print_grid(
        entries,
        "CDV evaluation: original → distracted accuracy",
        cdv_cell,
        f"{examples} per question; n: questions with an example (of all asked); drop "
        f"[{conf}% CI]; p: McNemar's test; all: accuracy on every question; order: the part "
        "of the drop the example's choice order alone causes. Every number: --json.",
    )
    notes = dict.fromkeys(n for n in (by_construction_note(e) for e in entries) if n)
    for note in notes:
        console.print(f"[yellow]* {escape(note)}[/]", highlight=False)
    for e in entries:
        a = e["answers"]
        paid = e.get("paid_calls")
        which = f"{e['defense']}: " if len(entries) > 1 else ""
        console.print(
            f"{escape(which)}{a['total']} answers, {a['cached']} from the store"
            + (f", {paid} paid calls (USD {e.get('cost', 0.0):.4f})" if paid is not None else "")
            + (f", [yellow]{len(e['errors'])} failed[/]" if e["errors"] else ""),
            highlight=False,
        )
    console.print(f"protocol: {protocol_line(first['settings'])}", highlight=False)
