"""Markdown summary of a run: the headline table, the examples with their choices, links to the
PNG plots, and the tables of the HTML report, without the trees."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.reporting.gallery import (
    ADD,
    SAME,
    choice_marks,
    edges,
    fooled,
    gallery,
    readings,
    tally,
    targets_line,
)
from cdvkit.reporting.headline import (
    NOT_EVALUATED,
    evaluate_command,
    headline_caption,
    headline_entries,
    headline_headers,
    headline_rows,
    is_paper,
    paper_table,
    searched_line,
)
from cdvkit.reporting.plots import plot_files
from cdvkit.reporting.tables import (
    ACC_HEADERS,
    ORDER_HEADERS,
    PAPER_HEADERS,
    USAGE_HEADERS,
    accuracy_rows,
    by_construction_note,
    comparable,
    defense_comparison,
    entry_title,
    headers_for,
    order_rows,
    paper_rows,
    pct,
    summary_rows,
    usage_row,
)
from cdvkit.search.goals_multi import targets_label


def md_cell(text: object) -> str:
    """Table-safe and inert: no pipe breaks the row, no markup from a model renders."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|").replace("`", "\\`")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(md_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def md_text(text: object) -> str:
    """Model or data text as inert Markdown: no character of it starts markup (emphasis, links,
    code, HTML), and a line break is a break, not a new block."""
    s = str(text).replace("\r", "")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Inline text only (it never starts a line), so these are the characters that open markup.
    s = re.sub(r"([\\`*_\[\]|~])", r"\\\1", s)
    return s.replace("\n", "<br>")


def _marked(segments: list[tuple[str, str]]) -> str:
    """The example's text with what the search added in **bold** (dropped text ~~struck~~)."""
    out = []
    for kind, text in segments:
        if kind == SAME:
            out.append(md_text(text))
            continue
        lead, core, trail = edges(text)
        mark = "**" if kind == ADD else "~~"
        out.append(
            md_text(lead) + (f"{mark}{md_text(core)}{mark}" if core else "") + md_text(trail)
        )
    return "".join(out)


def _headline(data: dict[str, Any]) -> list[str]:
    out = ["## How much does each model drop?\n"]
    shown = headline_entries(data["evaluations"])
    if not shown:
        out.append(f"{NOT_EVALUATED} Measure it with:\n\n```\n{evaluate_command(data)}\n```\n")
    for e in shown:
        if len(shown) > 1:
            out.append(f"### {md_cell(entry_title(e))}\n")
        if is_paper(e):
            headers, rows, _ = paper_table(e)
        else:
            headers, rows = headline_headers(e), headline_rows(e)[0]
        out += [_table(headers, rows), f"{md_cell(headline_caption(e))}\n"]
    out.append(f"{md_cell(searched_line(data))}\n")
    return out


def _example(k: int, item: dict[str, Any], g: dict[str, Any]) -> str:
    q, n = item["question"], item["node"]
    bits = [q["source"] or "", q["subject"] or "", f"depth {n['depth']}"]
    bits.append(f"{item['added']} sentence{'' if item['added'] == 1 else 's'} added")
    if item["drop"] is not None:
        bits.append(f"drop {pct(item['drop'])}")
    lines = [
        f"### {k}. {md_cell(q['id'])} ({md_cell(', '.join(b for b in bits if b))})\n",
        f"- Original: {md_text(q['question'])}",
        f"- Example (node {md_cell(n['path'])}): {_marked(item['segments'])}",
    ]
    for i, (text, right, pushed) in enumerate(choice_marks(q, n)):
        tags = [t for t, on in (("right", right), ("pushed by the added text", pushed)) if on]
        probs = n.get("probs")
        p = f", p={pct(probs[i])}" if probs and i < len(probs) and probs[i] is not None else ""
        tag = f" ({'; '.join(tags)}{p})" if tags else (f" ({p[2:]})" if p else "")
        lines.append(f"  - {LETTERS[i]}. {md_text(text)}{tag}")
    if q.get("references"):
        lines.append(f"  - answer: {md_text(' | '.join(q['references']))}")
        if n.get("target_option"):
            lines.append(f"  - pushed by the added text: {md_text(n['target_option'])}")
    if n.get("mode") == "exact" and n.get("rate") is not None:
        lines.append(f"- Target, scored from probabilities: P(right) = {pct(n['rate'])}")
    if targets_line(n):
        lines.append(f"- Targets: {md_text(targets_line(n))}")
    for what, r in readings(n):
        answers = r["answers"]
        right = sum(1 for a in answers if a.get("correct"))
        read = ", ".join(f"{label}{f' ×{c}' if c > 1 else ''}" for label, c in tally(answers))
        lines.append(f"- Target, {what}: {right} of {len(answers)} right ({md_text(read)})")
    checks = []
    for name, v in (n.get("verdicts") or {}).items():
        v = v or {}
        state = {True: "passed", False: "failed"}.get(v.get("passed"), "not asked yet")
        reason = (
            f" ({md_text(v['reason'])})" if v.get("reason") and v.get("passed") is False else ""
        )
        checks.append(f"{md_text(name)} {state}{reason}")
    if checks:
        lines.append(f"- Checks: {', '.join(checks)}")
    if item["results"]:
        parts = [
            f"{'fooled' if fooled(o, d) else 'not fooled'}: {md_cell(m)} ({pct(o)} → {pct(d)})"
            for m, o, d in item["results"]
        ]
        lines.append(f"- Evaluated with defense {md_cell(g['defense'])}: {'; '.join(parts)}")
    return "\n".join(lines) + "\n"


def _examples(data: dict[str, Any], max_examples: int) -> list[str]:
    g = gallery(data)
    items = g["items"]
    out = [
        f"## Examples ({len(items)})\n",
        "Each example under its original, largest drop first. The text the search added is in "
        "**bold** (text it dropped is ~~struck through~~); each choice says whether it is the "
        "right one or the one the added text pushes.\n",
    ]
    out += [_example(k, item, g) for k, item in enumerate(items[:max_examples], 1)]
    if len(items) > max_examples:
        out.append(f"… and {len(items) - max_examples} more (see the HTML report).\n")
    return out


def _plots(data: dict[str, Any], plots: str | None) -> list[str]:
    if plots is None:
        return []
    base = plots.rstrip("/\\") or "."
    out = ["## Plots\n"]
    for name, title in plot_files(data):
        out.append(f"![{md_text(title)}](<{base}/{name}>)\n")
    return out


def render_markdown(
    data: dict[str, Any], *, max_examples: int = 50, plots: str | Path | None = None
) -> str:
    """The summary: the headline table, the examples with their choices, links to the PNG plots
    (``plots``: the folder ``cdv report --png`` wrote them to, as the Markdown file reaches it),
    then the search's and the evaluation's tables."""
    s, cfg = data["summary"], data["config"]
    out = [
        f"# CDV report: {md_cell(data['run_name'])}\n",
        f"Run `{md_cell(data['run_dir'])}`, target {md_cell(targets_label(cfg))}, "
        f"proposer {md_cell(cfg.get('proposer', '–'))}, "
        f"judge {md_cell(cfg.get('judge') or 'local checks')}; "
        f"generated {data['generated']} by cdvkit {data['cdvkit_version']}.\n",
        *_headline(data),
        *_plots(data, None if plots is None else Path(plots).as_posix()),
        *_examples(data, max_examples),
        "## Search\n",
        f"Protocol: {md_cell(s.get('protocol') or '–')}.\n",
        _table(["", ""], [[k.strip(), v] for k, v in summary_rows(s)]),
    ]
    entries = data["evaluations"]
    if entries:
        out.append("## Evaluation\n")
    if comparable(entries):
        _, rows, _ = defense_comparison(comparable(entries))
        out += [
            "### Defenses side by side (original → distracted accuracy, drop [CI])\n",
            _table(["model", *[e["defense"] for e in comparable(entries)]], rows),
        ]
    for e in entries:
        tr = e["transfer"]
        out.append(f"### Defense: {md_cell(entry_title(e))}\n")
        rows, _ = paper_rows(e)
        if rows:
            out += [
                "The paper's table (original: every question; enhanced: the first example of "
                "each question, originally failed ones as themselves)\n",
                _table(headers_for(e, PAPER_HEADERS), rows),
            ]
        rows, _ = accuracy_rows(e)
        out.append(_table(headers_for(e, ACC_HEADERS), rows))
        note = by_construction_note(e)
        if note:
            out.append(f"{md_cell(note)}\n")
        rows, _ = order_rows(e)
        if rows:
            out += [
                "Order control (the original in its example's choice order; drop = order part "
                "+ distraction part)\n",
                _table(headers_for(e, ORDER_HEADERS), rows),
            ]
        out += [
            "Transfer (distracted accuracy; rows: examples found against, columns: model)\n",
            _table(
                ["", *tr["cols"]],
                [
                    [r, *(pct(v) for v in vals)]
                    for r, vals in zip(tr["rows"], tr["distracted"], strict=True)
                ],
            ),
        ]
    out.append("## Cost per role\n")
    usage = data["usage"]
    out.append(
        "Search (cdv generate):\n\n"
        + _table(USAGE_HEADERS, [usage_row(role, u) for role, u in usage.items()])
        if usage
        else "No paid model call recorded.\n"
    )
    if data.get("eval_usage"):
        out.append(
            "Evaluation (cdv evaluate, counted apart):\n\n"
            + _table(USAGE_HEADERS, [usage_row(r, u) for r, u in data["eval_usage"].items()])
        )
    return "\n".join(out)
