"""Enhanceability prefilter: how well it ranks questions, and what skipping saves on a real run.

(1) 5-fold cross-validated ROC AUC of the prefilter (MiniLM embeddings + logistic regression) on
    the shared training file ``../shared/data/benchmarks/enhanceability_train.json``.
(2) On a run with the offline default (target embed/all-MiniLM-L6-v2, template proposer): the
    questions of the four shared benchmarks are split in two disjoint halves. An "earlier run"
    searches the first half with no prefilter; its stored outcomes train a prefilter (the way
    `cdv prefilter train --data <run dir>` does). The second half is then searched without a
    prefilter, and with it skipping the 10/20/30/50% of questions it rates least likely; the
    table shows the calls saved against the examples lost, both against the unfiltered run.
    The model trained on the shared file is applied the same way, for comparison (it was
    labelled against another target).

Usage: python bench/prefilter.py [--per-source N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import DATA_DIR, Measured, bench_questions, measure
from cdvkit.prefilter import (
    auc,
    cross_validated_auc,
    load_labelled,
    load_run_outcomes,
    train_prefilter,
)
from cdvkit.search.config import SearchConfig

# Shares of the questions to skip. Where P(enhanceable) sits depends on how many questions the
# training target let through, so thresholds are set at these quantiles of the predicted
# probabilities (known before any search), then passed to the run as --prefilter-threshold.
SKIP_SHARES = (0.1, 0.2, 0.3, 0.5)


def cv_on_shared_file(folds: int, seed: int) -> Path:
    path = DATA_DIR / "enhanceability_train.json"
    if not path.exists():
        raise SystemExit(f"missing {path}: the benchmarks read the shared data (never copied)")
    data = load_labelled(path)
    start = time.perf_counter()
    aucs = cross_validated_auc(data, folds=folds, seed=seed)
    pos = sum(data.labels)
    print(
        f"\n(1) {folds}-fold cross-validated AUC on {path.name}: {len(data.labels)} questions, "
        f"{pos} enhanceable ({pos / len(data.labels) * 100:.0f}%)"
    )
    print("  folds: " + "  ".join(f"{a:.3f}" for a in aucs))
    mean = sum(aucs) / len(aucs)
    sd = (sum((a - mean) ** 2 for a in aucs) / (len(aucs) - 1)) ** 0.5
    print(f"  mean AUC {mean:.3f} (sd {sd:.3f}); 0.5 = chance ({time.perf_counter() - start:.0f}s)")
    return path


async def on_a_run(per_source: int, seed: int, shared_file: Path) -> None:
    questions = bench_questions(per_source, seed)
    earlier, later = questions[::2], questions[1::2]
    base = SearchConfig(seed=seed)  # the offline default target and proposer
    with tempfile.TemporaryDirectory(prefix="cdv-bench-prefilter-") as tmp:
        tmpdir = Path(tmp)
        await measure("earlier run", base, earlier, keep_dir=tmpdir / "earlier")
        from_run = train_prefilter([tmpdir / "earlier"], seed=seed)
        from_run.save(tmpdir / "from_run.joblib")
        train_prefilter([shared_file], seed=seed).save(tmpdir / "from_file.joblib")

        full = await measure("no prefilter", base, later, keep_dir=tmpdir / "full")
        truth = load_run_outcomes(tmpdir / "full")
        rows: list[tuple[str, float, Measured]] = []
        from cdvkit.prefilter import Prefilter

        for label, model in (
            ("trained on the earlier run", tmpdir / "from_run.joblib"),
            ("trained on the shared file", tmpdir / "from_file.joblib"),
        ):
            # AUC over the questions the later run could label (searched to the end).
            scores = Prefilter.load(model).predict_proba(truth.texts)
            value = auc(truth.labels, scores.tolist())
            positives = sum(truth.labels)
            shown = (
                f"{value:.3f}"
                if value is not None
                else f"undefined: {positives} of the {len(truth.labels)} questions searched to "
                "the end have an example (one class only)"
            )
            print(f"  {label}: AUC on the later run's outcomes {shown}")
            for share in SKIP_SHARES:
                later_scores = Prefilter.load(model).predict_proba(later)
                t = float(np.quantile(later_scores, share))
                cfg = replace(base, prefilter=str(model), prefilter_threshold=t)
                rows.append((label, t, await measure(f"{label} @ {t}", cfg, later)))

    s = full.summary
    print(
        f"\n(2) prefilter on a run: target {base.target}, proposer {base.proposer}, "
        f"{len(later)} questions (another {len(earlier)} searched earlier to train on), "
        f"seed {seed}\n  without a prefilter: {s['calls']} calls, {full.examples} examples, "
        f"{s['with_example']} questions with an example"
    )
    head = (
        f"  {'prefilter':<28} {'threshold':>9} {'skipped':>8} {'calls':>7} {'calls saved':>12} "
        f"{'with example':>12} {'lost':>10} {'calls/ex':>9}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for label, t, m in rows:
        saved = 1 - m.summary["calls"] / s["calls"]
        lost = s["with_example"] - m.summary["with_example"]
        share = lost / s["with_example"] if s["with_example"] else 0.0
        print(
            f"  {label:<28} {t:>9.2f} {m.summary.get('skipped', 0):>8} {m.summary['calls']:>7} "
            f"{saved * 100:>11.1f}% {m.summary['with_example']:>12} "
            f"{lost:>4} ({share * 100:>3.0f}%) {m.calls_per_example:>9.2f}"
        )
    print(f"  {'none':<28} {'':>9} {0:>8} {s['calls']:>7} {'':>12} {s['with_example']:>12}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-source", type=int, default=100, help="questions per benchmark file")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    shared = cv_on_shared_file(args.folds, args.seed)
    asyncio.run(on_a_run(args.per_source, args.seed, shared))
    print(f"\nprefilter: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
