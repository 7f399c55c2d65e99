"""The self-contained HTML report: one file, inline CSS/JS/SVG, no network access at all."""

from __future__ import annotations

import json
import math
from html import escape
from importlib.resources import files
from typing import Any

from cdvkit.reporting import svg

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


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def pct_ci(v: float | None, ci: list[float] | None) -> str:
    if v is None:
        return "–"
    if not ci:
        return pct(v)
    return f"{v:.1%} [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def p_value(m: dict[str, Any]) -> str:
    if m.get("method") == "none":
        return "– (no discordant pair)"
    return f"{m['p_value']:.3g} ({m['method']}, b={m['b']}, c={m['c']})"


def _table(headers: list[str], rows: list[list[str]], *, classes: list[str] | None = None) -> str:
    """Cells are escaped here; callers pass plain text."""
    out = ['<div class="tablewrap"><table>']
    if any(headers):
        out.append("<thead><tr>")
        out += [f"<th>{escape(h)}</th>" for h in headers]
        out.append("</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>")
        for j, cell in enumerate(row):
            num = ' class="num"' if j > 0 and _numeric(cell) else ""
            out.append(f"<td{num}>{escape(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "–-$")


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The search summary's rows, as the CLI, the HTML and the Markdown report all show them."""
    rows = [
        ("questions", str(s["questions"])),
        ("searched", str(s["searched"])),
        ("originally correct", str(s["originally_correct"])),
        ("originally failed (not searched)", str(s["originally_failed"])),
        ("candidates (the search's score: fooled)", str(s.get("candidates", "–"))),
        ("  confirmed under the protocol", str(s.get("verified", "–"))),
        ("  rejected by verification", str(s.get("rejected_by_verification", "–"))),
        ("with at least one example", str(s["with_example"])),
        ("CDV examples", str(s["examples"])),
        ("success rate", pct(s["success_rate"])),
        ("incomplete questions (rerun to retry)", str(s["incomplete"])),
        ("questions not started", str(s["pending"])),
        ("paid model calls (search)", str(s["calls"])),
        ("requests refused or failed", str(s["requests_failed"])),
        ("cost (USD)", f"{s['cost']:.4f}"),
        (
            "calls per example",
            "–" if s["calls_per_example"] is None else f"{s['calls_per_example']:.1f}",
        ),
    ]
    if s.get("skipped"):
        rows.insert(4, ("skipped by the prefilter", str(s["skipped"])))
    return rows


def summary_section(data: dict[str, Any]) -> str:
    s, cfg = data["summary"], data["config"]
    rows = [
        ["target", str(cfg.get("target", "–"))],
        ["proposer", str(cfg.get("proposer", "–"))],
        ["judge", str(cfg.get("judge") or "local checks")],
        ["protocol", str(s.get("protocol") or "–")],
        *([k, v] for k, v in summary_rows(s)),
    ]
    return "<h2>Search</h2>" + _table(["", ""], rows)


USAGE_HEADERS = ["role", "calls", "samples", "prompt tokens", "completion tokens", "cost (USD)"]


def usage_row(role: str, u: dict[str, Any]) -> list[str]:
    """One role's calls, samples, tokens and cost as table cells (every report shows these)."""
    return [
        role,
        str(u["calls"]),
        str(u["samples"]),
        str(u["prompt_tokens"]),
        str(u["completion_tokens"]),
        f"{u['cost']:.4f}",
    ]


def _usage_table(usage: dict[str, dict[str, Any]]) -> str:
    rows = [usage_row(role, u) for role, u in usage.items()]
    keys = ("calls", "samples", "prompt_tokens", "completion_tokens", "cost")
    rows.append(usage_row("total", {k: sum(u[k] for u in usage.values()) for k in keys}))
    return _table(USAGE_HEADERS, rows, classes=[""] * (len(rows) - 1) + ["overall"])


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
        + _table_note("calls paid by cdv generate; the search summary counts these")
        + _usage_table(usage)
        + f'<div class="charts">{chart}</div>'
    )
    if data.get("eval_usage"):
        out += (
            "<h3>Evaluation</h3>"
            + _table_note("calls paid by cdv evaluate into this run, counted apart")
            + _usage_table(data["eval_usage"])
        )
    return out


def _table_note(text: str) -> str:
    return f"<p class='muted'>{escape(text)}</p>"


def accuracy_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            for name, st in [("overall", r["overall"]), *r["by_dataset"].items()]:
                rows.append(
                    [
                        source,
                        model,
                        name,
                        str(st["n"]),
                        pct_ci(st["original"], st["original_ci"]),
                        pct_ci(st["distracted"], st["distracted_ci"]),
                        pct_ci(st["drop"], st["drop_ci"]),
                        pct_ci(st["relative_drop"], st["relative_drop_ci"]),
                        p_value(st["mcnemar"]),
                    ]
                )
                classes.append("overall" if name == "overall" else "")
    return rows, classes


ACC_HEADERS = [
    "examples found against",
    "model",
    "dataset",
    "questions",
    "original acc. [95% CI]",
    "distracted acc. [95% CI]",
    "drop [95% CI]",
    "relative drop [95% CI]",
    "McNemar p",
]


def protocol_line(settings: dict[str, Any]) -> str:
    """How an evaluation asked, from its stored settings (older files lack the protocol line)."""
    if settings.get("protocol"):
        return str(settings["protocol"])
    return (
        f"{settings['samples']} sample(s) at temperature {settings['temperature']}, "
        f"scoring {settings['scoring']}"
    )


def evaluation_section(entry: dict[str, Any]) -> str:
    st = entry["settings"]
    conf = round(st.get("confidence", 0.95) * 100)
    headers = [h.replace("95%", f"{conf}%") for h in ACC_HEADERS]
    rows, classes = accuracy_rows(entry)
    parts = [
        f"<h3>Defense: {escape(entry['defense'])}</h3>",
        "<p class='muted'>"
        + escape(
            f"protocol: {protocol_line(st)}; "
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
    parts.append(_table(headers, rows, classes=classes))
    charts = []
    for source, per_model in entry["results"].items():
        groups, values = [], []
        for model, r in per_model.items():
            for name, s in [("all", r["overall"]), *r["by_dataset"].items()]:
                if name != "all" and len(r["by_dataset"]) < 2:
                    continue  # one dataset: its bars would repeat the overall ones
                groups.append(f"{model} · {name}")
                values.append([s["original"], s["distracted"]])
        charts.append(
            svg.bar_chart(
                groups,
                ["original", "distracted"],
                values,
                title=f"Accuracy, examples found against {source}",
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


def defense_comparison(
    entries: list[dict[str, Any]],
) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    """Per model (rows) and defense (columns): "original → distracted (drop [CI])" cells and the
    distracted accuracies, on each entry's first example set."""
    models = list(dict.fromkeys(m for e in entries for m in e["models"]))
    rows, values = [], []
    for model in models:
        row, vals = [model], []
        for e in entries:
            src = next(iter(e["results"].values()), {})
            r = src.get(model)
            if r is None:
                row.append("–")
                vals.append(None)
                continue
            o = r["overall"]
            row.append(
                f"{pct(o['original'])} → {pct(o['distracted'])} "
                f"(drop {pct_ci(o['drop'], o.get('drop_ci'))})"
            )
            vals.append(o["distracted"])
        rows.append(row)
        values.append(vals)
    return models, rows, values


def defenses_section(entries: list[dict[str, Any]]) -> str:
    """Original and distracted accuracy per model under each defense, on the first example set."""
    labels = [e["defense"] for e in entries]
    models, rows, values = defense_comparison(entries)
    chart = svg.bar_chart(models, labels, values, title="Distracted accuracy per defense")
    return (
        "<h3>Defenses side by side</h3>"
        "<p class='muted'>Accuracy on the original → the distracted questions, and the drop "
        "with its confidence interval, per model (rows) and defense (columns).</p>"
        + _table(["model", *labels], rows)
        + f'<div class="charts">{chart}</div>'
    )


def evaluations_block(data: dict[str, Any]) -> str:
    entries = data["evaluations"]
    if not entries:
        return (
            "<h2>Evaluation</h2><p class='muted'>This run has not been evaluated yet "
            "(<code>cdv evaluate --run DIR --models ...</code>); search results only.</p>"
        )
    parts = ["<h2>Evaluation</h2>"]
    if len(entries) > 1:
        parts.append(defenses_section(entries))
    parts += [evaluation_section(e) for e in entries]
    return "".join(parts)


TREES = """<h2>Search trees</h2>
<div class="controls">
  <label><input type="checkbox" id="only-success"> only questions with CDV examples</label>
  <input type="search" id="q-filter" placeholder="filter by text or id">
  <span id="tree-count" class="muted"></span>
</div>
<p class="muted">Click a question to open its tree. Highlighted: the distraction added at that
node (darker) and those inherited from its ancestors (lighter); the correct choice is green.</p>
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
            f"Run {data['run_dir']} · target {cfg.get('target', '–')} · generated "
            f"{data['generated']} by cdvkit {data['cdvkit_version']}"
        )
        + "</p>"
    )
    body = [
        intro,
        summary_section(data),
        evaluations_block(data),
        usage_section(data),
        TREES,
        f'<script type="application/json" id="cdv-data">{script_json(payload)}</script>\n',
        f"<script>\n{_asset('report.js')}</script>\n",
        "</body></html>",
    ]
    return head + "".join(body)
