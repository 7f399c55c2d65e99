"""Markdown summary of a run: the tables of the HTML report, without the trees."""

from __future__ import annotations

from typing import Any

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


def render_markdown(data: dict[str, Any], *, max_examples: int = 50) -> str:
    s, cfg = data["summary"], data["config"]
    out = [
        f"# CDV report: {md_cell(data['run_name'])}\n",
        f"Run `{md_cell(data['run_dir'])}`, target {md_cell(cfg.get('target', '–'))}, "
        f"proposer {md_cell(cfg.get('proposer', '–'))}, "
        f"judge {md_cell(cfg.get('judge') or 'local checks')}; "
        f"generated {data['generated']} by cdvkit {data['cdvkit_version']}.\n",
        "## Search\n",
        f"Protocol: {md_cell(s.get('protocol') or '–')}.\n",
        _table(["", ""], [[k.strip(), v] for k, v in summary_rows(s)]),
    ]
    entries = data["evaluations"]
    out.append("## Evaluation\n")
    if not entries:
        out.append("Not evaluated yet (`cdv evaluate --run DIR --models ...`).\n")
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
    with_examples = [q for q in data["questions"] if q["examples"]]
    out.append(f"## Questions with CDV examples ({len(with_examples)})\n")
    for q in with_examples[:max_examples]:
        first = next(n for n in q["nodes"] if n["status"] == "good")
        out.append(
            f"- **{md_cell(q['id'])}** ({md_cell(q['source'] or '–')}), right on the original in "
            f"{pct(q['original_rate'])} of answers, {q['examples']} example(s). First, at depth "
            f"{first['depth']}: {md_cell(first['question'])}\n"
        )
    if len(with_examples) > max_examples:
        out.append(f"- … and {len(with_examples) - max_examples} more (see the HTML report)\n")
    return "\n".join(out)
