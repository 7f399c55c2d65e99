"""The report's first screen: how much each model drops, what was searched and what it cost.

Plain-text rows like ``tables``: the HTML and the Markdown report render the same cells.
"""

from __future__ import annotations

import shlex
from typing import Any

from cdvkit.reporting.tables import (
    BY_CONSTRUCTION,
    PAPER_HEADERS,
    group_of,
    groups_of,
    headers_for,
    paper_rows,
    pct,
    pct_ci,
    split_by,
)


def is_paper(entry: dict[str, Any]) -> bool:
    """An entry made with ``--preset paper`` (its results carry the paper's numbers)."""
    if (entry.get("settings") or {}).get("preset") == "paper":
        return True
    results = entry["results"].values()
    return any(r.get("paper") for per_model in results for r in per_model.values())


def headline_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries the first screen shows: every paper-preset one (in the paper's layout) and
    one of cdvkit's own, the undefended one where there is one; the rest are further down."""
    paper = [e for e in entries if is_paper(e)]
    plain = [e for e in entries if not is_paper(e)]
    first = next((e for e in plain if e.get("defense") == "none"), plain[0] if plain else None)
    return [*paper, *([first] if first else [])]


def headline_headers(entry: dict[str, Any]) -> list[str]:
    conf = round((entry.get("settings") or {}).get("confidence", 0.95) * 100)
    headers = [
        "examples found against",
        "model",
        split_by(entry),
        "accuracy, every question",
        "with an example: original",
        "distracted",
        f"drop [{conf}% CI]",
        f"order part [{conf}% CI]",
        f"distraction part [{conf}% CI]",
    ]
    keep = _kept_columns(entry)
    return [h for i, h in enumerate(headers) if i in keep]


def _kept_columns(entry: dict[str, Any]) -> set[int]:
    """Every column but the example set's when there is one set, and the order control's when
    no model measured it (nothing to show: the choices kept their order, or it was off)."""
    keep = set(range(9))
    if len(entry["results"]) < 2:
        keep.discard(0)
    if not any(r.get("order") for pm in entry["results"].values() for r in pm.values()):
        keep -= {7, 8}
    return keep


def headline_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Per model and group (overall, then each dataset or subject): accuracy over every question,
    original and distracted accuracy on the questions with an example, the drop with its
    interval, and the order control's split of the drop where it was measured."""
    by = split_by(entry)
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            for name, st in groups_of(r, None, by):
                whole = group_of(r.get("whole"), name, by)
                order = group_of(r.get("order"), name, by) or {}
                distracted = pct(st["distracted"])
                if r.get("by_construction"):
                    distracted += f" ({BY_CONSTRUCTION})"
                rows.append(
                    [
                        source,
                        model,
                        name,
                        "–" if whole is None else f"{pct(whole['original'])} of {whole['n']}",
                        f"{pct(st['original'])} of {st['n']}",
                        distracted,
                        pct_ci(st["drop"], st["drop_ci"]),
                        pct_ci(order.get("order_drop"), order.get("order_drop_ci")),
                        pct_ci(order.get("distraction_drop"), order.get("distraction_drop_ci")),
                    ]
                )
                classes.append("overall" if name == "overall" else "")
    keep = _kept_columns(entry)
    return [[c for i, c in enumerate(row) if i in keep] for row in rows], classes


def paper_table(entry: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """The paper's layout (original, enhanced, drop), without the set column for one set."""
    rows, classes = paper_rows(entry)
    headers = headers_for(entry, PAPER_HEADERS)
    if len(entry["results"]) < 2:
        headers, rows = headers[1:], [r[1:] for r in rows]
    return headers, rows, classes


def headline_caption(entry: dict[str, Any]) -> str:
    """One line under the table saying what was asked and how the numbers read."""
    st = entry.get("settings") or {}
    sources = list(entry["results"])
    against = f"examples found against {sources[0]}; " if len(sources) == 1 else ""
    if is_paper(entry):
        return (
            f"{against}--preset paper: one answer per question, the paper's way. Original: "
            "every question; enhanced: the first example of each question with one (a question "
            "the target originally failed counts as itself); drop = original - enhanced."
        )
    defense = entry.get("defense") or "none"
    what = "every example" if st.get("all_examples") else "the first example"
    return (
        f"{against}defense {defense}; {st.get('protocol') or 'the run protocol'}. Accuracy over "
        f"every question of the dataset, then on the questions with an example ({what} of "
        "each): original vs. distracted, paired per question."
    )


def searched_line(data: dict[str, Any]) -> str:
    """What was searched and what it cost, in one sentence."""
    s = data["summary"]
    calls_per = s.get("calls_per_example")
    left = [
        f"{s['originally_failed']} failed undistracted (not searched)"
        if s["originally_failed"]
        else "",
        f"{s.get('skipped') or 0} skipped by the prefilter" if s.get("skipped") else "",
        f"{s['unfinished']} not finished" if s.get("unfinished") else "",
    ]
    line = (
        f"{s['questions']} questions: {s['originally_correct']} answered right undistracted and "
        f"searched{''.join(f', {x}' for x in left if x)}; found {s['examples']} CDV examples on "
        f"{s['with_example']} questions ({pct(s['success_rate'])} of those searched). "
        f"Search: {s['calls']} paid calls, USD {s['cost']:.4f}"
        + ("" if calls_per is None else f" ({calls_per:.1f} calls per example)")
    )
    ev = data.get("eval_usage") or {}
    if ev:
        calls = sum(u["calls"] for u in ev.values())
        cost = sum(u["cost"] for u in ev.values())
        line += f"; evaluation: {calls} paid calls, USD {cost:.4f}"
    return line + "."


def evaluate_command(data: dict[str, Any]) -> str:
    """The command that evaluates this run on its own target, for a run not evaluated yet."""
    target = (data.get("config") or {}).get("target") or "PROVIDER/MODEL"
    if isinstance(target, list):  # several targets: every one of them
        target = ",".join(target)
    return f"cdv evaluate --run {shlex.quote(data['run_dir'])} --models {shlex.quote(target)}"


NOT_EVALUATED = "This run has not been evaluated yet: no model's drop is measured."
