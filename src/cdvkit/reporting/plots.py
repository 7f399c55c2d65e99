"""PNG plots with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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

    entries = data["evaluations"]
    for e in entries:
        d = _slug(entry_title(e))
        for source, per_model in e["results"].items():
            labels, orig, dist = [], [], []
            for model, r in per_model.items():
                for name, s in [("all", r["overall"]), *r["by_dataset"].items()]:
                    if name != "all" and len(r["by_dataset"]) < 2:
                        continue
                    labels.append(f"{model}\n{name}")
                    orig.append(s["original"] or 0.0)
                    dist.append(s["distracted"] or 0.0)
            fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(labels) + 2), 4))
            x = np.arange(len(labels))
            ax.bar(x - 0.2, orig, 0.4, label="original")
            ax.bar(x + 0.2, dist, 0.4, label="distracted")
            ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_ylabel("accuracy")
            ax.set_title(f"Accuracy ({e['defense']}), examples found against {source}", fontsize=9)
            ax.legend()
            save(fig, f"accuracy-{d}-{_slug(source)}.png")
        tr = e["transfer"]
        for metric in ("distracted", "drop"):
            m = np.array([[np.nan if v is None else v for v in row] for row in tr[metric]])
            fig, ax = plt.subplots(
                figsize=(max(4, 1.6 * len(tr["cols"]) + 2), max(2.5, 0.6 * len(tr["rows"]) + 2))
            )
            im = ax.imshow(m, vmin=0, vmax=1, cmap="Reds", aspect="auto")
            ax.set_xticks(range(len(tr["cols"])), tr["cols"], rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(len(tr["rows"])), tr["rows"], fontsize=8)
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    if not np.isnan(m[i, j]):
                        ax.text(j, i, f"{m[i, j]:.0%}", ha="center", va="center", fontsize=8)
            ax.set_xlabel("evaluated model")
            ax.set_ylabel("examples found against")
            ax.set_title(f"Transfer: {metric} accuracy ({e['defense']})", fontsize=9)
            fig.colorbar(im, ax=ax)
            save(fig, f"transfer-{metric}-{d}.png")
    entries = comparable(entries)
    if entries:
        models = list(dict.fromkeys(m for e in entries for m in e["models"]))
        fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(models) + 2), 4))
        width = 0.8 / len(entries)
        x = np.arange(len(models))
        for k, e in enumerate(entries):
            src = next(iter(e["results"].values()), {})
            vals = [(src.get(m) or {}).get("overall", {}).get("distracted") or 0.0 for m in models]
            ax.bar(x - 0.4 + width * (k + 0.5), vals, width, label=e["defense"])
        ax.set_xticks(x, models, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("distracted accuracy")
        ax.set_title("Defenses compared", fontsize=9)
        ax.legend(fontsize=8)
        save(fig, "defenses.png")
    usage = data["usage"]
    if usage:
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(usage) + 2), 3.5))
        roles = list(usage)
        costs = [usage[r]["cost"] for r in roles]
        use_cost = any(costs)
        ax.bar(roles, costs if use_cost else [usage[r]["calls"] for r in roles])
        ax.set_ylabel("cost (USD)" if use_cost else "paid calls")
        ax.set_title("Cost per role" if use_cost else "Paid calls per role", fontsize=9)
        save(fig, "cost-per-role.png")
    return written
