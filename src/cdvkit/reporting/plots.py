"""PNG plots with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from cdvkit.reporting.svg import wrap_label
from cdvkit.reporting.tables import comparable, entry_title
from cdvkit.store.outputs import atomic_folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


def write_pngs(
    data: dict[str, Any], out_dir: str | Path, *, run: str | Path | None = None
) -> list[Path]:
    """Accuracy bars and transfer heat maps per defense, defenses compared, calls per role.

    Drawn in a temporary sibling folder that becomes ``out_dir`` at the end; an existing
    ``out_dir`` gets each plot replaced whole and keeps its other files. ``run``: the run
    directory the plots are of (default: the one ``data`` was collected from), inside which they
    may be written (``cdvkit.store.outputs``)."""
    out = Path(out_dir)
    with atomic_folder(out, run=run if run is not None else data.get("run_dir")) as tmp:
        names = _draw(data, tmp)
    return [out / name for name in names]


def _draw(data: dict[str, Any], out: Path) -> list[str]:
    """Draw the plots into the folder ``out``; returns their file names."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("PNG plots need matplotlib: pip install 'cdvkit[report]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        written.append(name)

    for name, _title, draw in _plan(data):
        fig = draw(plt, np)
        save(fig, name)
    return written


def _wrap(text: str, fig: Any, fontsize: float = 9) -> str:
    """A title broken into lines that fit the figure's width: never cut at its edge."""
    chars = max(20, int(fig.get_figwidth() * 72 / (fontsize * 0.62)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def _yerr(values: list[float], cis: list[list[float] | None], np: Any) -> Any:
    """Asymmetric error bars (below, above) from intervals; a missing interval draws none."""
    lo = [v - ci[0] if ci else 0.0 for v, ci in zip(values, cis, strict=True)]
    hi = [ci[1] - v if ci else 0.0 for v, ci in zip(values, cis, strict=True)]
    return np.clip(np.array([lo, hi]), 0.0, None)


def _label(text: str, width: int = 30) -> str:
    """A tick label whole, on as many lines as it needs (never cut, never off the figure)."""
    return "\n".join(wrap_label(text, width))


def _hbars(
    ax: Any,
    np: Any,
    labels: list[str],
    series: list[tuple[str, list[float | None], list[Any]]],
) -> None:
    """Grouped horizontal bars, one group per label (top to bottom), with interval whiskers."""
    y = np.arange(len(labels))
    height = 0.8 / max(1, len(series))
    for k, (name, values, cis) in enumerate(series):
        vals = [v or 0.0 for v in values]
        ax.barh(
            y - 0.4 + height * (k + 0.5),
            vals,
            height,
            xerr=_yerr(vals, cis, np),
            capsize=3,
            error_kw={"elinewidth": 1},
            label=name,
        )
    ax.set_yticks(y, [_label(t) for t in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")


def _bars_size(labels: list[str], series: int) -> tuple[float, float]:
    lines = sum(len(wrap_label(t, 30)) for t in labels)
    return 8.0, max(3.0, 0.18 * lines + 0.3 * len(labels) * series + 1.8)


def _accuracy_plot(e: dict[str, Any], source: str, per_model: dict[str, Any]) -> Any:
    def draw(plt: Any, np: Any) -> Any:
        labels, orig, dist, orig_ci, dist_ci = [], [], [], [], []
        for model, r in per_model.items():
            for name, s in [("all", r["overall"]), *r["by_dataset"].items()]:
                if name != "all" and len(r["by_dataset"]) < 2:
                    continue
                labels.append(f"{model} · {name}")
                orig.append(s["original"])
                dist.append(s["distracted"])
                orig_ci.append(s.get("original_ci"))
                dist_ci.append(s.get("distracted_ci"))
        fig, ax = plt.subplots(figsize=_bars_size(labels, 2))
        _hbars(ax, np, labels, [("original", orig, orig_ci), ("distracted", dist, dist_ci)])
        ax.set_xlabel("accuracy")
        conf = round((e.get("settings") or {}).get("confidence", 0.95) * 100)
        title = (
            f"Accuracy ({entry_title(e)}), examples found against {source}; "
            f"error bars: {conf}% bootstrap interval"
        )
        ax.set_title(_wrap(title, fig), fontsize=9)
        ax.legend(fontsize=8, loc="best")
        return fig

    return draw


def _transfer_plot(e: dict[str, Any], metric: str) -> Any:
    def draw(plt: Any, np: Any) -> Any:
        tr = e["transfer"]
        m = np.array([[np.nan if v is None else v for v in row] for row in tr[metric]])
        col_lines = max([len(wrap_label(c, 18)) for c in tr["cols"]] + [1])
        row_lines = sum(len(wrap_label(r, 30)) for r in tr["rows"])
        fig, ax = plt.subplots(
            figsize=(
                max(6, 1.6 * len(tr["cols"]) + 4),
                max(3, 0.25 * row_lines + 0.4 * len(tr["rows"]) + 0.18 * col_lines + 2),
            )
        )
        im = ax.imshow(m, vmin=0, vmax=1, cmap="Reds", aspect="auto")
        ax.set_xticks(range(len(tr["cols"])), [_label(c, 18) for c in tr["cols"]], fontsize=8)
        ax.set_yticks(range(len(tr["rows"])), [_label(r) for r in tr["rows"]], fontsize=8)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if not np.isnan(m[i, j]):
                    color = "white" if m[i, j] > 0.6 else "black"  # readable on dark red
                    ax.text(j, i, f"{m[i, j]:.0%}", ha="center", va="center", fontsize=8,
                            color=color)  # fmt: skip
        ax.set_xlabel("evaluated model")
        ax.set_ylabel("examples found against")
        what = "distracted accuracy" if metric == "distracted" else "accuracy drop"
        ax.set_title(_wrap(f"Transfer: {what} ({entry_title(e)})", fig), fontsize=9)
        fig.colorbar(im, ax=ax)
        return fig

    return draw


def _defenses_plot(entries: list[dict[str, Any]]) -> Any:
    def draw(plt: Any, np: Any) -> Any:
        models = list(dict.fromkeys(m for e in entries for m in e["models"]))
        series = []
        for e in entries:
            src = next(iter(e["results"].values()), {})
            overall = [(src.get(m) or {}).get("overall", {}) for m in models]
            series.append(
                (
                    e["defense"],
                    [o.get("distracted") for o in overall],
                    [o.get("distracted_ci") for o in overall],
                )
            )
        fig, ax = plt.subplots(figsize=_bars_size(models, len(entries)))
        _hbars(ax, np, models, series)
        ax.set_xlabel("distracted accuracy")
        ax.set_title(
            _wrap("Defenses compared: distracted accuracy (error bars: bootstrap interval)", fig),
            fontsize=9,
        )
        ax.legend(fontsize=8, loc="best")
        return fig

    return draw


def _usage_plot(usage: dict[str, dict[str, Any]]) -> Any:
    def draw(plt: Any, np: Any) -> Any:
        fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(usage) + 2), 3.5))
        roles = list(usage)
        costs = [usage[r]["cost"] for r in roles]
        use_cost = any(costs)
        ax.bar(roles, costs if use_cost else [usage[r]["calls"] for r in roles])
        ax.set_ylabel("cost (USD)" if use_cost else "paid calls")
        ax.set_title("Cost per role" if use_cost else "Paid calls per role", fontsize=9)
        return fig

    return draw


def _plan(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(file name, title, drawing function) of every plot the data has, in order."""
    plan: list[tuple[str, str, Any]] = []
    entries = data["evaluations"]
    for e in entries:
        d = _slug(entry_title(e))
        for source, per_model in e["results"].items():
            plan.append(
                (
                    f"accuracy-{d}-{_slug(source)}.png",
                    f"Accuracy ({entry_title(e)}), examples found against {source}",
                    _accuracy_plot(e, source, per_model),
                )
            )
        for metric, what in (("distracted", "distracted accuracy"), ("drop", "accuracy drop")):
            plan.append(
                (
                    f"transfer-{metric}-{d}.png",
                    f"Transfer: {what} ({entry_title(e)})",
                    _transfer_plot(e, metric),
                )
            )
    if comparable(entries):
        plan.append(("defenses.png", "Defenses compared", _defenses_plot(comparable(entries))))
    if data["usage"]:
        plan.append(("cost-per-role.png", "Cost or calls per role", _usage_plot(data["usage"])))
    return plan


def plot_files(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, title) of each PNG ``write_pngs`` writes for ``data``, without drawing: what a
    Markdown summary links to."""
    return [(name, title) for name, title, _ in _plan(data)]
