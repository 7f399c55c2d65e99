"""Every table a run's results show, as rows of plain text: the terminal, the HTML report and
the Markdown report render these same rows, so each number is worded and rounded in one place.
"""

from __future__ import annotations

from typing import Any


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


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The search summary's rows, as the CLI, the HTML and the Markdown report all show them."""
    # Examples already found on questions a stopped run left unfinished: not in the rate.
    unfinished = s.get("with_example_unfinished")
    pending = [("  + unfinished, with an example", str(unfinished))] if unfinished else []
    rows = [
        ("questions", str(s["questions"])),
        ("searched", str(s["searched"])),
        ("originally correct", str(s["originally_correct"])),
        ("originally failed (not searched)", str(s["originally_failed"])),
        ("candidates (the search's score: fooled)", str(s.get("candidates", "–"))),
        ("  confirmed under the protocol", str(s.get("verified", "–"))),
        ("  rejected by verification", str(s.get("rejected_by_verification", "–"))),
        ("with at least one example", str(s["with_example"])),
        *pending,
        ("CDV examples", str(s["examples"])),
        ("success rate", pct(s["success_rate"])),
        ("incomplete questions (rerun to retry)", str(s["incomplete"])),
        ("questions not started", str(s["pending"])),
        ("paid model calls (search)", str(s["calls"])),
        ("calls paid twice (in flight when a run was killed)", str(s.get("paid_twice", 0))),
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


def split_by(entry: dict[str, Any]) -> str:
    """How an evaluation's rows are split: dataset (older files) or subject."""
    return str(entry.get("settings", {}).get("by") or "dataset")


def groups_of(r: dict[str, Any], split: dict[str, Any] | None, by: str) -> list[tuple[str, Any]]:
    """(row name, stats) of one model's result: overall, then each dataset or subject (none for
    a single one, whose row would repeat the overall one). ``split`` is the part to read (the
    paired numbers are ``r`` itself)."""
    part = r if split is None else split
    groups = part.get("by_subject") if by == "subject" else part.get("by_dataset")
    named = [("overall", part["overall"]), *sorted((groups or {}).items())]
    return named if len(groups or {}) > 1 else named[:1]


def group_of(split: dict[str, Any] | None, name: str, by: str) -> Any:
    if split is None:
        return None
    if name == "overall":
        return split["overall"]
    return (split.get("by_subject" if by == "subject" else "by_dataset") or {}).get(name)


BY_CONSTRUCTION = "by construction"


def accuracy_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Per example set, model and group: accuracy on every question of the dataset beside the
    paired numbers on the questions with an example."""
    by = split_by(entry)
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            for name, st in groups_of(r, None, by):
                whole = group_of(r.get("whole"), name, by)
                distracted = pct_ci(st["distracted"], st["distracted_ci"])
                if r.get("by_construction"):
                    distracted = f"{pct(st['distracted'])} ({BY_CONSTRUCTION})"
                rows.append(
                    [
                        source,
                        model,
                        name,
                        "–" if whole is None else str(whole["n"]),
                        "–" if whole is None else pct_ci(whole["original"], whole["original_ci"]),
                        str(st["n"]),
                        pct_ci(st["original"], st["original_ci"]),
                        distracted,
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
    "all questions",
    "original acc., all questions [95% CI]",
    "with an example",
    "original acc. [95% CI]",
    "distracted acc. [95% CI]",
    "drop [95% CI]",
    "relative drop [95% CI]",
    "McNemar p",
]


def headers_for(entry: dict[str, Any], headers: list[str]) -> list[str]:
    """``headers`` with the evaluation's confidence level and its split (dataset or subject)."""
    conf = round(entry.get("settings", {}).get("confidence", 0.95) * 100)
    by = split_by(entry)
    return [by if h == "dataset" else h.replace("95%", f"{conf}%") for h in headers]


ORDER_HEADERS = [
    "examples found against",
    "model",
    "dataset",
    "questions",
    "original acc.",
    "original in the example's order [95% CI]",
    "distracted acc.",
    "drop [95% CI]",
    "order part [95% CI]",
    "distraction part [95% CI]",
]


def order_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """The order-only control: the drop split into what the example's choice order costs
    (original -> original in that order) and what the distraction costs (-> the example)."""
    by = split_by(entry)
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            if not r.get("order"):
                continue
            for name, st in groups_of(r, r["order"], by):
                rows.append(
                    [
                        source,
                        model,
                        name,
                        str(st["n"]),
                        pct(st["original"]),
                        pct_ci(st["reordered"], st["reordered_ci"]),
                        pct(st["distracted"]),
                        pct_ci(st["drop"], st["drop_ci"]),
                        pct_ci(st["order_drop"], st["order_drop_ci"]),
                        pct_ci(st["distraction_drop"], st["distraction_drop_ci"]),
                    ]
                )
                classes.append("overall" if name == "overall" else "")
    return rows, classes


PAPER_HEADERS = [
    "examples found against",
    "model",
    "dataset",
    "original [95% CI]",
    "enhanced [95% CI]",
    "drop [95% CI]",
]


def paper_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """The paper's table: per model and dataset, original accuracy over every question,
    enhanced accuracy over the first example of each question with one (originally failed
    questions as themselves), and the drop."""
    by = split_by(entry)
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            if not r.get("paper"):
                continue
            for name, st in groups_of(r, r["paper"], by):
                failed = st["originally_failed"]
                rows.append(
                    [
                        source,
                        model,
                        name,
                        f"{pct_ci(st['original'], st['original_ci'])} (n={st['n_original']})",
                        f"{pct_ci(st['enhanced'], st['enhanced_ci'])} (n={st['n_enhanced']}"
                        + (f", {failed} originally failed" if failed else "")
                        + ")",
                        pct_ci(st["drop"], st["drop_ci"]),
                    ]
                )
                classes.append("overall" if name == "overall" else "")
    return rows, classes


def by_construction_note(entry: dict[str, Any]) -> str | None:
    """Says which models' distracted accuracy is 0% by construction, if any."""
    models = sorted(
        {
            m
            for per_model in entry["results"].values()
            for m, r in per_model.items()
            if r.get("by_construction")
        }
    )
    if not models:
        return None
    return (
        f"{BY_CONSTRUCTION}: {', '.join(models)} searched these examples under this same "
        "protocol; its examples are exactly the questions it failed, so its distracted accuracy "
        "is 0% by construction, not a measurement (its accuracy over all questions is)."
    )


def protocol_line(settings: dict[str, Any]) -> str:
    """How an evaluation asked, from its stored settings (older files lack the protocol line)."""
    if settings.get("protocol"):
        return str(settings["protocol"])
    return (
        f"{settings['samples']} sample(s) at temperature {settings['temperature']}, "
        f"scoring {settings['scoring']}"
    )


def entry_title(entry: dict[str, Any]) -> str:
    """An evaluation entry's name: its defense, and the preset it was made with."""
    preset = (entry.get("settings") or {}).get("preset")
    return f"{entry['defense']} · --preset {preset}" if preset else str(entry["defense"])


def comparable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries whose defenses may be compared side by side: those asked the same way as the
    first one without a preset (the paper preset's single answers are another protocol)."""
    plain = [e for e in entries if not (e.get("settings") or {}).get("preset")]
    return plain if len(plain) > 1 else []


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
