"""The self-contained HTML report: one file, inline CSS/JS/SVG, no network access at all."""

from __future__ import annotations

import json
import math
from html import escape
from importlib.resources import files
from typing import Any

from cdvkit.reporting import svg
from cdvkit.reporting.html_gallery import gallery_section, headline_section
from cdvkit.reporting.html_tables import note, table
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
    protocol_line,
    summary_rows,
    usage_row,
)
from cdvkit.search.goals_multi import targets_label

# default-src 'none' keeps the page from fetching anything even if someone edits it later.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def script_json(obj: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survives, so model text such as
    '</script><script>' can neither close the element nor appear as markup in the file."""
    text = json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _finite(obj: Any) -> Any:
    # NaN/Infinity are not JSON: JSON.parse in the page would reject the whole payload.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _asset(name: str) -> str:
    return (files("cdvkit.reporting") / "templates" / name).read_text(encoding="utf-8")


def summary_section(data: dict[str, Any]) -> str:
    s, cfg = data["summary"], data["config"]
    rows = [
        ["target", str(cfg.get("target", "–"))],
        ["proposer", str(cfg.get("proposer", "–"))],
        ["judge", str(cfg.get("judge") or "local checks")],
        ["protocol", str(s.get("protocol") or "–")],
        *([k, v] for k, v in summary_rows(s)),
    ]
    return "<h2>Search statistics</h2>" + table(["", ""], rows)


def _usage_table(usage: dict[str, dict[str, Any]]) -> str:
    rows = [usage_row(role, u) for role, u in usage.items()]
    keys = ("calls", "samples", "prompt_tokens", "completion_tokens", "cost")
    rows.append(usage_row("total", {k: sum(u[k] for u in usage.values()) for k in keys}))
    return table(USAGE_HEADERS, rows, classes=[""] * (len(rows) - 1) + ["overall"])


def usage_section(data: dict[str, Any]) -> str:
    usage = data["usage"]
    if not usage:
        return "<h2>Cost per role</h2><p class='muted'>No paid model call recorded.</p>"
    chart = svg.bar_chart(
        list(usage),
        ["share of calls"],
        [[u["calls"] / max(1, sum(x["calls"] for x in usage.values()))] for u in usage.values()],
        title="Share of paid calls per role",
    )
    out = (
        "<h2>Cost per role</h2><h3>Search</h3>"
        + note("calls paid by cdv generate; the search summary counts these")
        + _usage_table(usage)
        + f'<div class="charts">{chart}</div>'
    )
    if data.get("eval_usage"):
        out += (
            "<h3>Evaluation</h3>"
            + note("calls paid by cdv evaluate into this run, counted apart")
            + _usage_table(data["eval_usage"])
        )
    return out


def _set_table(
    entry: dict[str, Any], headers: list[str], rows: list[list[str]], classes: list[str]
) -> str:
    """A results table; with one example set its column (the same on every row) is left out,
    and the section's line names the set: the table then fits the page without scrolling."""
    if len(entry["results"]) == 1:
        headers, rows = headers[1:], [r[1:] for r in rows]
    return table(headers, rows, classes=classes)


def evaluation_section(entry: dict[str, Any]) -> str:
    st = entry["settings"]
    sets = list(entry["results"])
    parts = [
        f"<h3>Defense: {escape(entry_title(entry))}</h3>",
        "<p class='muted'>"
        + escape(
            (f"examples found against {sets[0]}; " if len(sets) == 1 else "")
            + f"protocol: {protocol_line(st)}; "
            f"{'every example' if st['all_examples'] else 'first example'} per question, "
            f"{st['resamples']} paired bootstrap resamples (seed {st['seed']})."
        )
        + "</p>",
    ]
    if entry.get("defense_text"):
        parts.append(
            f"<details><summary>defense prompt</summary><pre>{escape(entry['defense_text'])}"
            "</pre></details>"
        )
    rows, classes = paper_rows(entry)
    if rows:
        parts += [
            "<h4>The paper's table</h4>",
            note(
                "Each model answered each question once, the paper's way (--preset paper). "
                "Original: accuracy over every question of the dataset; enhanced: over the "
                "first example of each question with one, a question the target originally "
                "failed counting as itself (no CDV example); drop = original - enhanced."
            ),
            _set_table(entry, headers_for(entry, PAPER_HEADERS), rows, classes),
        ]
    rows, classes = accuracy_rows(entry)
    parts += [
        "<h4>Accuracy</h4>",
        note(
            "All questions: every question of the dataset, with an example or not (originals "
            "only). With an example: original vs. distracted, paired per question."
        ),
        _set_table(entry, headers_for(entry, ACC_HEADERS), rows, classes),
    ]
    construction = by_construction_note(entry)
    if construction:
        parts.append(f"<p class='note'>{escape(construction)}</p>")
    rows, classes = order_rows(entry)
    if rows:
        parts += [
            "<h4>Order control</h4>",
            note(
                "Each original also asked with its example's choice order: the order part is "
                "original - original in that order, the distraction part the rest of the drop."
            ),
            _set_table(entry, headers_for(entry, ORDER_HEADERS), rows, classes),
        ]
    charts = []
    for source, per_model in entry["results"].items():
        groups, values, errors = [], [], []
        for model, r in per_model.items():
            for name, s in [("all", r["overall"]), *r["by_dataset"].items()]:
                if name != "all" and len(r["by_dataset"]) < 2:
                    continue  # one dataset: its bars would repeat the overall ones
                groups.append(f"{model} · {name}")
                values.append([s["original"], s["distracted"]])
                errors.append([s.get("original_ci"), s.get("distracted_ci")])
        charts.append(
            svg.bar_chart(
                groups,
                ["original", "distracted"],
                values,
                errors=errors,
                title=f"Accuracy, examples found against {source}",
                caption=f"bars: accuracy; whiskers: {_conf(entry)}% bootstrap interval",
            )
        )
    tr = entry["transfer"]
    charts.append(
        svg.heatmap(
            tr["rows"],
            tr["cols"],
            tr["distracted"],
            title="Transfer: distracted accuracy",
            row_title="examples found against",
            col_title="evaluated model",
        )
    )
    charts.append(
        svg.heatmap(
            tr["rows"],
            tr["cols"],
            tr["drop"],
            title="Transfer: accuracy drop",
            row_title="examples found against",
            col_title="evaluated model",
        )
    )
    parts.append(f'<div class="charts">{"".join(charts)}</div>')
    if entry.get("errors"):
        items = "".join(f"<li>{escape(e)}</li>" for e in entry["errors"][:50])
        parts.append(
            f"<details><summary>{len(entry['errors'])} failed answers (their questions are "
            f"left out for that model)</summary><ul>{items}</ul></details>"
        )
    return "".join(parts)


def defenses_section(entries: list[dict[str, Any]]) -> str:
    """Original and distracted accuracy per model under each defense, on the first example set."""
    labels = [e["defense"] for e in entries]
    models, rows, values = defense_comparison(entries)
    errors = [
        [
            (next(iter(e["results"].values()), {}).get(m) or {})
            .get("overall", {})
            .get("distracted_ci")
            for e in entries
        ]
        for m in models
    ]
    chart = svg.bar_chart(
        models,
        labels,
        values,
        errors=errors,
        title="Distracted accuracy per defense",
        caption=f"whiskers: {_conf(entries[0])}% bootstrap interval",
    )
    return (
        "<h3>Defenses side by side</h3>"
        "<p class='muted'>Accuracy on the original → the distracted questions, and the drop "
        "with its confidence interval, per model (rows) and defense (columns).</p>"
        + table(["model", *labels], rows)
        + f'<div class="charts">{chart}</div>'
    )


def _conf(entry: dict[str, Any]) -> int:
    return round((entry.get("settings") or {}).get("confidence", 0.95) * 100)


def evaluations_block(data: dict[str, Any]) -> str:
    """Every evaluation in full (the first screen shows one or two of them)."""
    entries = data["evaluations"]
    if not entries:
        return ""  # the first screen says so, with the command to run
    parts = [
        "<h2>Evaluation</h2>",
        note(
            "Every evaluation in full: each number with its interval, McNemar's test, the "
            "transfer between models and the defenses compared."
        ),
    ]
    if comparable(entries):
        parts.append(defenses_section(comparable(entries)))
    parts += [evaluation_section(e) for e in entries]
    return "".join(parts)


TREES = """<h2 id="trees">Search trees</h2>
<div class="controls">
  <label><input type="checkbox" id="only-success"> only questions with CDV examples</label>
  <input type="search" id="q-filter" placeholder="filter by text or id">
  <span id="tree-count" class="muted"></span>
</div>
<p class="muted">Click a question to open its tree. Highlighted: the distraction added at that
node (darker) and those inherited from its ancestors (lighter); the correct choice is green.</p>
<noscript><p class="note">The trees are built by the page's script, which is off: the
examples above show every example with its original and the replies that decided it.</p>
</noscript>
<div id="tree-list"></div>"""


def render_html(data: dict[str, Any]) -> str:
    """The whole report. Text from the run is escaped server-side, or rendered by the script
    from the embedded JSON with textContent."""
    cfg = data["config"]
    title = f"CDV report · {data['run_name']}"
    payload = {"questions": data["questions"]}
    head = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>"
    )
    intro = (
        f"<h1>{escape(title)}</h1><p class='muted'>"
        + escape(
            f"Run {data['run_dir']} · target {targets_label(cfg)} · generated "
            f"{data['generated']} by cdvkit {data['cdvkit_version']}"
        )
        + "</p>"
    )
    body = [
        intro,
        headline_section(data),
        gallery_section(data),
        evaluations_block(data),
        summary_section(data),
        usage_section(data),
        TREES,
        f'<script type="application/json" id="cdv-data">{script_json(payload)}</script>\n',
        f"<script>\n{_asset('report.js')}</script>\n",
        "</body></html>",
    ]
    return head + "".join(body)
