"""Enhanceability prefilter: how well it ranks questions, and what skipping saves on a real run.

(1) 5-fold cross-validated ROC AUC of the prefilter (MiniLM embeddings + logistic regression) on
    the shared training file ``../shared/data/benchmarks/enhanceability_train.json``, its labels
    read as the reference's code wrote them ("Yes" = the search found at least one good
    question, originally failed questions included: enhanceable).
(2) On a run with the offline default (target embed/all-MiniLM-L6-v2, template proposer): the
    questions of the four shared benchmarks are split in two disjoint halves. An "earlier run"
    searches the first half with no prefilter; its stored outcomes train a prefilter (the way
    `cdv prefilter train --data <run dir>` does). The second half is then searched without a
    prefilter, and with it skipping the 10/20/30/50% of questions it rates least likely; the
    table shows the calls saved against the examples lost, both against the unfiltered run.
    A run's labels mean what the file's do: an originally failed question counts as enhanceable.
    The model trained on the shared file is applied the same way, for comparison (it was
    labelled against another target).
(3) ``--prefilter auto`` on the loopback OpenAI-compatible server (bench/_fakeserver.py), its
    simulated target made harder than the search benchmark's (a wider margin for the right
    answer) so that about half the questions can be made into examples, as in the reference's
    labelled file (52% "Yes"): with the default world nearly all can, and there is nothing to
    skip. Here labels are --prefilter auto's own: questions searched to the end only (auto
    decides only among questions the target answers right).
    400 questions (100 per benchmark) are searched without a prefilter, then with
    ``--prefilter auto`` at several thresholds; calls saved and questions with an example lost
    are both against the unfiltered run. Before that, which features carry the signal:
    out-of-fold AUC (5 folds) on the unfiltered run's outcomes of the text alone (the saved
    prefilter's classifier), the target's answers to the original alone, both (auto's model),
    and each answer feature on its own. Target: at the default threshold, at least 25% of the
    calls saved while losing at most 5% of the questions with an example. Then the same without
    log-probs (the target's answers are then only its near-greedy samples).

Usage: python bench/prefilter.py [--per-source N] [--auto-per-source N] [--seed S]
       [--skip-file-part] [--skip-auto] [--skip-no-logprobs]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import DATA_DIR, Measured, bench_questions, measure, server_config
from _fakeserver import FakeServer
from cdvkit.data.question import Question
from cdvkit.prefilter import (
    Labelled,
    as_text,
    auc,
    cross_validated_auc,
    embed_texts,
    load_labelled,
    load_run_outcomes,
    out_of_fold_probs,
    train_prefilter,
)
from cdvkit.prefilter.features import ROOT_FEATURES, OnlineModel, root_features
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore

# Shares of the questions to skip. Where P(enhanceable) sits depends on how many questions the
# training target let through, so thresholds are set at these quantiles of the predicted
# probabilities (known before any search), then passed to the run as --prefilter-threshold.
SKIP_SHARES = (0.1, 0.2, 0.3, 0.5)

# (3): the simulated target's world (bench/_fakeserver.py World). A right answer's latent margin
# ~ N(7.5, 2) instead of N(3.5, 1.5): about half the questions can be made into examples.
AUTO_WORLD = {"margin_mean": 7.5, "margin_sd": 2.0}
AUTO_THRESHOLDS = (0.1, 0.2, 0.3)  # 0.3: the default --prefilter-threshold
SAVED_TARGET, LOST_TARGET = 0.25, 0.05
# Each answer feature's direction: -1 where a lower value means more promising.
FEATURE_SIGN = {"share_right": -1, "logit_p_correct": -1, "log_margin": -1, "vote_entropy": 1,
                "prob_entropy": 1, "share_unread": 1}  # fmt: skip


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
            # AUC over the questions the later run could label (finished: searched to the end,
            # or failed undistracted, which counts as enhanceable as in the reference).
            scores = Prefilter.load(model).predict_proba(truth.texts)
            value = auc(truth.labels, scores.tolist())
            positives = sum(truth.labels)
            shown = (
                f"{value:.3f}"
                if value is not None
                else f"undefined: {positives} of the {len(truth.labels)} finished questions are "
                "enhanceable (one class only)"
            )
            meta = Prefilter.load(model).metadata
            print(
                f"  {label}: trained on {meta['n']} labelled questions, {meta['positives']} "
                f"enhanceable; AUC on the later run's outcomes {shown}"
            )
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


def run_features(run_dir: Path) -> tuple[list[Question], list[list[float]], list[int]]:
    """The questions of a run searched to the end, their answer features, and their labels."""
    with RunStore(run_dir, readonly=True, lock=False) as store:
        good = {n["question_id"] for n in store.nodes(status="good")}
        roots = {n["question_id"]: n for n in store.nodes() if n["path"] == "r"}
        rows = store.questions(status="done")
        qs = [d["question"] for d in rows]
        feats = [
            root_features({"outputs": roots[d["id"]]["outputs"], "accuracy": d["original_rate"]}, q)
            for d, q in zip(rows, qs, strict=True)
        ]
    return qs, feats, [int(q.id in good) for q in qs]


def oof_online(
    root: np.ndarray, text: np.ndarray | None, labels: list[int], folds: int, seed: int
) -> list[float]:
    """Out-of-fold P(enhanceable) of auto's own model (OnlineModel) on a run's outcomes."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    out = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(root, y):
        model = OnlineModel(seed=seed).fit(
            root[train], None if text is None else text[train], y[train].tolist()
        )
        out[test] = model.predict(root[test], None if text is None else text[test])
    return out.tolist()


def feature_aucs(run_dir: Path, folds: int, seed: int) -> None:
    qs, feats, labels = run_features(run_dir)
    root = np.asarray(feats, dtype=float)
    text = embed_texts([as_text(q) for q in qs])
    pos = sum(labels)
    print(
        f"  which features carry the signal: {folds}-fold out-of-fold AUC on the unfiltered "
        f"run's {len(labels)} questions searched to the end ({pos} with an example)"
    )
    data = Labelled([as_text(q) for q in qs], labels, ["run"] * len(labels))
    rows = [
        (
            "question text (the saved prefilter's model)",
            out_of_fold_probs(data, folds=folds, seed=seed),
        ),
        ("target's answers to the original", oof_online(root, None, labels, folds, seed)),
        ("both (--prefilter auto's model)", oof_online(root, text, labels, folds, seed)),
    ]
    for name, probs in rows:
        print(f"    {name:<46} {fmt_auc(auc(labels, probs))}")
    singles = []
    for name, sign in FEATURE_SIGN.items():
        col = root[:, ROOT_FEATURES.index(name)]
        singles.append(f"{name} {fmt_auc(auc(labels, (sign * col).tolist()))}")
    print("    each answer feature alone: " + ", ".join(singles))


def search_requests(store: RunStore) -> Counter[str]:
    """Requests of the search phase per question, each counted once (a batch is one request)."""
    pairs = set(
        store.db.execute(
            "SELECT o.question_id, COALESCE(c.batch, c.key) FROM call_owners o "
            "JOIN calls c ON c.key = o.key WHERE c.phase = 'search'"
        ).fetchall()
    )
    return Counter(q for q, _ in pairs)


def trade_off(rows: list[tuple[float, bool, float]], total: int, shares: tuple[float, ...]) -> str:
    """Calls saved against questions with an example lost when the questions of ``rows``
    ((rank, has an example, calls saved)) are given up, the highest rank first, read at each
    share of ``total`` calls saved."""
    rows = sorted(rows, key=lambda r: -r[0])
    positives, saved, lost, out = sum(r[1] for r in rows), 0.0, 0, []
    todo = list(shares)
    for _, has_example, cost in rows:
        saved, lost = saved + cost, lost + has_example
        while todo and saved / total >= todo[0]:
            out.append(f"{saved / total * 100:.0f}% saved, {lost / positives * 100:.1f}% lost")
            todo.pop(0)
    return "; ".join(out)


def hindsight(run_dir: Path, shares: tuple[float, ...] = (0.2, 0.25, 0.3)) -> str:
    """What skipping by the target's own P(correct) on the original would do, chosen with
    hindsight on the unfiltered run, each skipped question costing nothing at all: a bound on
    any prefilter that reads those answers. Each request is counted once, for its question."""
    with RunStore(run_dir, readonly=True, lock=False) as store:
        good = {n["question_id"] for n in store.nodes(status="good")}
        roots = {n["question_id"]: n for n in store.nodes() if n["path"] == "r"}
        cost = search_requests(store)
        total = store.paid_calls("search")
        rows = []
        for d in store.questions(status="done"):
            root = roots[d["id"]]
            probs = root["outputs"].get("probs")
            if not probs:
                return "no log-probs: nothing to rank by"
            # The surest first: the least promising.
            rows.append((probs[root["answer"]], d["id"] in good, float(cost[d["id"]])))
    return trade_off(rows, total, shares)


def hindsight_after_first(run_dir: Path, shares: tuple[float, ...] = (0.2, 0.25, 0.3)) -> str:
    """What stopping searches after their first expansion would do, the least promising first by
    the log-odds of the best P(correct) found so far, chosen with hindsight on the unfiltered
    run: a bound on stopping hopeless searches early. The calls a stop saves are the question's
    search calls after its root, shared over its nodes, for the nodes after the first
    expansion's."""
    with RunStore(run_dir, readonly=True, lock=False) as store:
        good = {n["question_id"] for n in store.nodes(status="good")}
        cost = search_requests(store)
        total = store.paid_calls("search")
        by_question: dict[str, list[dict]] = {}
        for n in store.nodes():
            by_question.setdefault(n["question_id"], []).append(n)
        rows = []
        for d in store.questions(status="done"):
            nodes = by_question[d["id"]]
            root, rest = nodes[0], nodes[1:]
            if not rest or root["outputs"].get("probs") is None:
                continue
            first = [n for n in rest if n["parent_path"] == rest[0]["parent_path"]]
            best = min([root["rate"]] + [n["rate"] for n in first if n["rate"] is not None])
            best = min(max(best, 1e-9), 1 - 1e-9)
            after_root = cost[d["id"]] - 2  # less the root's 2
            later = after_root * (len(rest) - len(first)) / len(rest)
            rows.append((float(np.log(best / (1 - best))), d["id"] in good, later))
    if not rows:
        return "no log-probs: nothing to rank by"
    return trade_off(rows, total, shares)


def fmt_auc(value: float | None) -> str:
    return "undefined (one class)" if value is None else f"{value:.3f}"


async def auto_on_server(
    per_source: int, seed: int, folds: int, thresholds: tuple[float, ...], logprobs: bool
) -> None:
    questions = bench_questions(per_source, seed)
    what = "with log-probs" if logprobs else "WITHOUT log-probs"
    with (
        tempfile.TemporaryDirectory(prefix="cdv-bench-auto-") as tmp,
        FakeServer(questions, seed=seed, logprobs=logprobs, world=AUTO_WORLD) as fs,
    ):
        base = server_config(fs.base_url, seed)
        fs.reset()
        full = await measure("no prefilter", base, questions, keep_dir=Path(tmp) / "full")
        s = full.summary
        print(
            f"\n(3) --prefilter auto: loopback OpenAI-compatible server {what}, world "
            f"{AUTO_WORLD}, cdvkit's defaults, {len(questions)} questions ({per_source} per "
            f"benchmark), seed {seed}\n  without a prefilter: {s['calls']} calls, "
            f"{full.examples} examples, {s['with_example']} of {s['originally_correct']} "
            f"originally correct questions with an example ({full.seconds:.0f}s)"
        )
        feature_aucs(Path(tmp) / "full", folds, seed)
        head = (
            f"  {'--prefilter auto':<22} {'threshold':>9} {'skipped':>8} {'calls':>7} "
            f"{'calls saved':>12} {'with example':>12} {'lost':>10} {'calls/ex':>9} {'s':>5}"
        )
        print(head)
        print("  " + "-" * (len(head) - 2))
        verdicts = []
        for t in thresholds:
            fs.reset()
            cfg = replace(base, prefilter="auto", prefilter_threshold=t)
            m = await measure(f"auto @ {t}", cfg, questions)
            a = m.summary
            saved = 1 - a["calls"] / s["calls"]
            lost = s["with_example"] - a["with_example"]
            share = lost / s["with_example"] if s["with_example"] else 0.0
            default = t == SearchConfig().prefilter_threshold
            print(
                f"  {'default' if default else '':<22} {t:>9.2f} {a['skipped']:>8} "
                f"{a['calls']:>7} {saved * 100:>11.1f}% {a['with_example']:>12} "
                f"{lost:>4} ({share * 100:>3.0f}%) {m.calls_per_example:>9.2f} {m.seconds:>5.0f}"
            )
            if default:
                ok = saved >= SAVED_TARGET and share <= LOST_TARGET
                verdicts.append(
                    f"  --prefilter auto at the default threshold {t:g}: {saved * 100:.1f}% of "
                    f"the calls saved (target >= {SAVED_TARGET * 100:.0f}%), {share * 100:.1f}% "
                    f"of the questions with an example lost (target <= {LOST_TARGET * 100:.0f}%)"
                    f" -> {'MET' if ok else 'NOT MET'}"
                )
        print(f"  {'none':<22} {'':>9} {0:>8} {s['calls']:>7} {'':>12} {s['with_example']:>12}")
        if logprobs:
            print(
                "  with hindsight, skipping by the target's P(correct) on the original, the "
                f"skipped questions free: {hindsight(Path(tmp) / 'full')}"
            )
            print(
                "  with hindsight, stopping searches after their first expansion by the best "
                f"P(correct) found: {hindsight_after_first(Path(tmp) / 'full')}"
            )
        for line in verdicts:
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-source", type=int, default=100, help="(2): questions per benchmark")
    ap.add_argument(
        "--auto-per-source", type=int, default=100, help="(3): questions per benchmark file"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-file-part", action="store_true", help="only (3), --prefilter auto")
    ap.add_argument("--skip-auto", action="store_true", help="only (1) and (2)")
    ap.add_argument("--skip-no-logprobs", action="store_true", help="(3) with log-probs only")
    args = ap.parse_args()
    start = time.perf_counter()
    if not args.skip_file_part:
        shared = cv_on_shared_file(args.folds, args.seed)
        asyncio.run(on_a_run(args.per_source, args.seed, shared))
    if not args.skip_auto:
        default = (SearchConfig().prefilter_threshold,)
        for logprobs, thresholds in ((True, AUTO_THRESHOLDS), (False, default)):
            if logprobs or not args.skip_no_logprobs:
                asyncio.run(
                    auto_on_server(
                        args.auto_per_source, args.seed, args.folds, thresholds, logprobs
                    )
                )
    print(f"\nprefilter: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
