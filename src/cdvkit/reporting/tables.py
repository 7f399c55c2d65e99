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


def accuracy_rows(entry: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows, classes = [], []
    for source, per_model in entry["results"].items():
        for model, r in per_model.items():
            named = [("overall", r["overall"]), *r["by_dataset"].items()]
            if len(r["by_dataset"]) < 2:
                named = named[:1]  # one dataset: its row would repeat the overall one
            for name, st in named:
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
