"""The report's first screen (the headline table) and its example gallery, as HTML.

Both are written into the page here, escaped, so they show with JavaScript off; the page's
script only filters and sorts the gallery's cards.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from cdvkit.reporting.gallery import (
    ADD,
    DEL,
    choice_marks,
    edges,
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
from cdvkit.reporting.html_tables import note, table
from cdvkit.reporting.tables import by_construction_note, entry_title, pct


def headline_section(data: dict[str, Any]) -> str:
    """How much each model drops (or the command that measures it), then what the search cost."""
    entries = data["evaluations"]
    out = ['<section id="headline"><h2>How much does each model drop?</h2>']
    shown = headline_entries(entries)
    if not shown:
        out.append(
            f"<p class='pending-eval'>{escape(NOT_EVALUATED)} Measure it with:</p>"
            f"<pre class='cmd'>{escape(evaluate_command(data))}</pre>"
        )
    for e in shown:
        if len(shown) > 1:
            out.append(f"<h3>{escape(entry_title(e))}</h3>")
        if is_paper(e):
            headers, rows, classes = paper_table(e)
        else:
            headers, (rows, classes) = headline_headers(e), headline_rows(e)
        out.append(table(headers, rows, classes=classes, table_class="headline"))
        out.append(f"<p class='caption'>{escape(headline_caption(e))}</p>")
        bc = by_construction_note(e)
        if bc and not is_paper(e):
            out.append(f"<p class='caption'>{escape(bc)}</p>")
    more = len(entries) - len(shown)
    if more > 0:
        out.append(note(f"{more} more evaluation(s) (other defenses) under Evaluation below."))
    out.append(f"<p class='searched'>{escape(searched_line(data))}</p></section>")
    return "".join(out)


def _options(values: list[tuple[str, str]], first: str) -> str:
    opts = [f'<option value="">{escape(first)}</option>']
    opts += [f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values]
    return "".join(opts)


def _sentences(k: int) -> str:
    return f"{k} sentence{'' if k == 1 else 's'} added"


def gallery_section(data: dict[str, Any]) -> str:
    """Every CDV example as a card beside its original, with filters the script switches on."""
    g = gallery(data)
    items = g["items"]
    out = [f'<section id="gallery-section"><h2>Examples ({len(items)})</h2>']
    if not items:
        out.append("<p class='muted'>No CDV example was found in this run.</p></section>")
        return "".join(out)
    target = str((data.get("config") or {}).get("target") or "the run's target")
    fooled_by = (
        f"“fooled” marks come from the evaluation with defense {g['defense']}: a model is "
        "fooled when it does worse on the example than on its original"
        + ("" if g["all_examples"] else "; it asks each question's first example only")
        + ". "
        if g["models"]
        else ""
    )
    out.append(
        note(
            "Each example beside its original: the text the search added is highlighted, text "
            "it dropped struck through; ✓ marks the right choice, ➜ the wrong one the added "
            f"text pushes; “target” is {target}, the model the search ran against, and its "
            f"answers are shown as read. {fooled_by}Sorted by drop; each card links to its "
            "search tree."
        )
    )
    datasets = sorted({i["question"]["source"] or "–" for i in items})
    subjects = sorted({i["question"]["subject"] or "–" for i in items})
    depths = sorted({i["node"]["depth"] for i in items})
    controls = [
        f"<label>dataset <select id='g-dataset'>{_options([(d, d) for d in datasets], 'all')}"
        "</select></label>",
        f"<label>subject <select id='g-subject'>{_options([(s, s) for s in subjects], 'all')}"
        "</select></label>",
    ]
    if g["models"]:
        models = [(str(i), m) for i, m in enumerate(g["models"])]
        controls.append(
            f"<label>model fooled <select id='g-fooled'>{_options(models, 'any')}</select></label>"
        )
    depth_opts = [(str(d), f"{d} ({_sentences(d - 1)})") for d in depths]
    controls += [
        f"<label>depth <select id='g-depth'>{_options(depth_opts, 'any')}</select></label>",
        "<label>sort by <select id='g-sort'><option value='drop'>drop</option>"
        "<option value='added'>sentences added, most first</option>"
        "<option value='added-asc'>sentences added, fewest first</option>"
        "<option value='run'>question order</option></select></label>",
        "<span id='g-count' class='muted'></span>",
    ]
    # Hidden until the script runs: without it the controls would do nothing.
    out.append(f"<div id='gallery-controls' class='controls' hidden>{''.join(controls)}</div>")
    out.append("<div id='gallery'>")
    out += [_card(i, g) for i in items]
    out.append("</div></section>")
    return "".join(out)


def _diff_html(segments: list[tuple[str, str]]) -> str:
    parts = []
    for kind, text in segments:
        if kind == ADD:
            lead, core, trail = edges(text)
            parts.append(f"{escape(lead)}<ins class='add'>{escape(core)}</ins>{escape(trail)}")
        elif kind == DEL:
            lead, core, trail = edges(text)
            parts.append(f"{escape(lead)}<del>{escape(core)}</del>{escape(trail)}")
        else:
            parts.append(escape(text))
    return "".join(parts)


def _choices(
    marks: list[tuple[str, bool, bool]], probs: list[float] | None, *, pushed: bool = True
) -> str:
    if not marks:
        return ""
    out = ["<ol class='choices' type='A'>"]
    for i, (text, right, target) in enumerate(marks):
        cls = " ".join(c for c, on in (("correct", right), ("target", target and pushed)) if on)
        tags = ""
        if right:
            tags += " <span class='tag right'>✓ right</span>"
        if target and pushed:
            tags += " <span class='tag pushed'>➜ pushed</span>"
        if probs is not None and i < len(probs) and probs[i] is not None:
            tags += f" <span class='muted'>p={escape(pct(probs[i]))}</span>"
        out.append(f"<li class='{cls}'>{escape(text)}{tags}</li>")
    out.append("</ol>")
    return "".join(out)


def _free_answers(q: dict[str, Any], n: dict[str, Any] | None) -> str:
    """A free-form question has no choices: its accepted answers, and the one a node pushes."""
    if not q.get("references"):
        return ""
    out = f"<div class='correct'>answer: {escape(' | '.join(q['references']))}</div>"
    if n and n.get("target_option"):
        out += f"<div class='target'>➜ pushed: {escape(str(n['target_option']))}</div>"
    return out


def readings_html(n: dict[str, Any] | None, who: str = "target") -> str:
    """The replies that decided a node, as read, each reply behind a click; for a node scored
    from probabilities, its P(right) (each choice's probability is shown beside it)."""
    if not n:
        return ""
    out = []
    if n.get("mode") == "exact" and n.get("rate") is not None:
        out.append(
            f"<div class='read'><b>{escape(who)}</b>, scored from probabilities: "
            f"P(right) = {escape(pct(n['rate']))}</div>"
        )
    if targets_line(n):
        out.append(f"<div class='read'><b>targets</b>: {escape(targets_line(n))}</div>")
    for what, r in readings(n):
        answers = r["answers"]
        right = sum(1 for a in answers if a.get("correct"))
        read = ", ".join(f"{label}{f' ×{k}' if k > 1 else ''}" for label, k in tally(answers))
        replies = "".join(f"<pre class='reply'>{escape(a['reply'])}</pre>" for a in answers)
        out.append(
            f"<div class='read'><b>{escape(who)}</b>, {escape(what)}: {right} of {len(answers)} "
            f"right <span class='said'>({escape(read)})</span>"
            + (
                f"<details class='answers'><summary>{len(answers)} replies</summary>{replies}"
                "</details>"
                if replies
                else ""
            )
            + "</div>"
        )
    if n.get("error"):
        out.append(f"<div class='fail'>error: {escape(str(n['error']))}</div>")
    return "".join(out)


def verdicts_html(verdicts: dict[str, Any]) -> str:
    """Each check's verdict; one never asked (the judge deferred by judge_last) is neutral."""
    if not verdicts:
        return ""
    out = ["<ul class='verdicts'>"]
    for name, v in verdicts.items():
        v = v or {}
        passed = v.get("passed")
        cls, sign = {True: ("pass", "✓"), False: ("fail", "✗")}.get(passed, ("pending", "○"))
        extra = f": {v['reason']}" if v.get("reason") else ""
        if isinstance(v.get("score"), int | float):
            extra += f" (score {v['score']:.3g})"
        out.append(f"<li class='{cls}'>{sign} {escape(name)}{escape(extra)}</li>")
    out.append("</ul>")
    return "".join(out)


def _evaluated(item: dict[str, Any], g: dict[str, Any]) -> str:
    if not g["models"]:
        return ""
    if not item["results"]:
        return (
            "<div class='evald muted'>Not evaluated: the evaluation asked this question's first "
            "example only (cdv evaluate --all-examples asks every one).</div>"
        )
    parts = []
    for model, original, distracted in item["results"]:
        hit = original is not None and distracted is not None and distracted < original
        parts.append(
            f"<span class='{'fooled' if hit else 'held'}'>{'fooled' if hit else 'not fooled'}: "
            f"{escape(model)} ({escape(pct(original))} → {escape(pct(distracted))})</span>"
        )
    defense = escape(g["defense"])
    return f"<div class='evald'>Evaluated with defense {defense}: {'; '.join(parts)}</div>"


def _card(item: dict[str, Any], g: dict[str, Any]) -> str:
    q, n = item["question"], item["node"]
    root = next((x for x in q["nodes"] if x["depth"] == 1), None)
    drop = item["drop"]
    attrs = {
        "id": f"ex-{item['order']}",
        "data-qid": q["id"],
        "data-path": n["path"],
        "data-dataset": q["source"] or "–",
        "data-subject": q["subject"] or "–",
        "data-depth": str(n["depth"]),
        "data-added": str(item["added"]),
        "data-fooled": " " + " ".join(str(i) for i in item["fooled"]) + " ",
        "data-drop": "" if drop is None else f"{drop:.6f}",
        "data-sdrop": "" if item["search_drop"] is None else f"{item['search_drop']:.6f}",
        "data-order": str(item["order"]),
    }
    head_bits = [
        q["source"] or "",
        q["subject"] or "",
        _sentences(item["added"]),
        "" if drop is None else f"drop {pct(drop)}",
    ]
    if item["search_drop"] is not None and root:
        head_bits.append(f"search score {pct(root['rate'])} → {pct(n['rate'])}")
    link = f"#q={quote(q['id'], safe='')}&node={quote(n['path'], safe='')}"
    original_marks = [(c, i == q["answer"], False) for i, c in enumerate(q["choices"])]
    original_probs = root.get("probs") if root else None
    return (
        "<article class='ex' "
        + " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
        + f"><header><span class='qid'>{escape(q['id'])}</span> · "
        + escape(" · ".join(b for b in head_bits if b))
        + f' · <a href="{escape(link)}">search tree ({escape(n["path"])})</a></header>'
        + "<div class='pair'><section class='orig'><h4>Original</h4>"
        + f"<p class='qtext'>{escape(q['question'])}</p>"
        + _choices(original_marks, original_probs)
        + _free_answers(q, None)
        + readings_html(root)
        + "</section><section class='dist'><h4>Example</h4>"
        + f"<p class='qtext'>{_diff_html(item['segments'])}</p>"
        + _choices(choice_marks(q, n), n.get("probs"))
        + _free_answers(q, n)
        + readings_html(n)
        + verdicts_html(n.get("verdicts") or {})
        + "</section></div>"
        + _evaluated(item, g)
        + "</article>"
    )
