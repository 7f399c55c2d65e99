"""Paired statistics for original-vs-distracted accuracy.

Every question is answered twice by the same model (original and distracted), so the two
accuracies are paired: resampling and testing treat a question as the unit, never a single answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Below this many discordant pairs the chi-square approximation is poor; the exact test is used.
EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemar:
    b: int  # right on the original, wrong once distracted
    c: int  # wrong on the original, right once distracted
    statistic: float | None
    p_value: float
    method: str  # "exact" | "chi2" | "none" (no discordant pair)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(
    original: Sequence[bool | float],
    distracted: Sequence[bool | float],
    *,
    exact_below: int = EXACT_BELOW,
) -> McNemar:
    """Two-sided McNemar test on paired correctness.

    Fractional values (share of correct samples) are read as correct when above 0.5, i.e. by
    majority vote, because the test needs one right/wrong outcome per question.
    """
    if len(original) != len(distracted):
        raise ValueError("original and distracted must have the same length")
    o = np.asarray(original, dtype=float) > 0.5
    d = np.asarray(distracted, dtype=float) > 0.5
    b = int(np.sum(o & ~d))
    c = int(np.sum(~o & d))
    n = b + c
    if n == 0:
        return McNemar(b, c, None, 1.0, "none")
    if n < exact_below:
        # Under H0 the discordant pairs split Binomial(n, 1/2); two-sided = double the smaller
        # tail. Exact integer arithmetic: n is small here.
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
        return McNemar(b, c, None, min(1.0, 2.0 * tail), "exact")
    stat = (abs(b - c) - 1.0) ** 2 / n  # Edwards' continuity correction
    # Chi-square with one degree of freedom: P(X > x) = erfc(sqrt(x / 2)), no scipy needed.
    return McNemar(b, c, float(stat), math.erfc(math.sqrt(stat / 2.0)), "chi2")


@dataclass(frozen=True)
class PairedSummary:
    n: int
    original: float | None  # None only when there is no question at all
    distracted: float | None
    drop: float | None
    relative_drop: float | None
    original_ci: tuple[float, float] | None
    distracted_ci: tuple[float, float] | None
    drop_ci: tuple[float, float] | None
    relative_drop_ci: tuple[float, float] | None
    mcnemar: McNemar
    confidence: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mcnemar"] = self.mcnemar.to_dict()
        for k in ("original_ci", "distracted_ci", "drop_ci", "relative_drop_ci"):
            d[k] = None if d[k] is None else [float(x) for x in d[k]]
        return d


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_bootstrap(
    original: Sequence[float],
    distracted: Sequence[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedSummary:
    """Accuracies, absolute and relative drop, with percentile bootstrap intervals.

    One resample draws questions with replacement and keeps each question's original and
    distracted scores together, so the interval reflects the paired design (a question that is
    hard both ways does not widen the drop's interval). Relative drop is drop / original accuracy;
    resamples whose original accuracy is 0 leave it undefined and are left out of its interval.
    """
    o = np.asarray(original, dtype=float)
    d = np.asarray(distracted, dtype=float)
    if o.shape != d.shape or o.ndim != 1:
        raise ValueError("original and distracted must be 1-D and of the same length")
    n = int(o.size)
    test = mcnemar(o, d)
    if n == 0:
        return PairedSummary(
            0, None, None, None, None, None, None, None, None, test, confidence, resamples
        )
    acc_o, acc_d = float(o.mean()), float(d.mean())
    drop = acc_o - acc_d
    rel = drop / acc_o if acc_o > 0 else None
    if resamples <= 0:
        return PairedSummary(
            n, acc_o, acc_d, drop, rel, None, None, None, None, test, confidence, resamples
        )
    rng = np.random.default_rng(seed)
    ci_o = ci_d = ci_drop = ci_rel = None
    # Chunks bound memory (resamples x n indices) on large evaluations.
    chunk = max(1, min(resamples, 2_000_000 // max(n, 1)))
    mo_parts, md_parts = [], []
    done = 0
    while done < resamples:
        k = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(k, n))
        mo_parts.append(o[idx].mean(axis=1))
        md_parts.append(d[idx].mean(axis=1))
        done += k
    mo, md = np.concatenate(mo_parts), np.concatenate(md_parts)
    ci_o = _interval(mo, confidence)
    ci_d = _interval(md, confidence)
    ci_drop = _interval(mo - md, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_samples = np.where(mo > 0, (mo - md) / np.where(mo > 0, mo, 1.0), np.nan)
    ci_rel = _interval(rel_samples, confidence)
    return PairedSummary(
        n, acc_o, acc_d, drop, rel, ci_o, ci_d, ci_drop, ci_rel, test, confidence, resamples
    )


@dataclass(frozen=True)
class ColumnSummary:
    """Means of several per-question columns and differences between them, with intervals."""

    n: list[int]  # questions that have a value in each column
    means: list[float | None]
    cis: list[tuple[float, float] | None]
    diffs: dict[tuple[int, int], tuple[float | None, tuple[float, float] | None]]


def column_bootstrap(
    rows: Sequence[Sequence[float | None]],
    columns: int,
    *,
    differences: Sequence[tuple[int, int]] = (),
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ColumnSummary:
    """Per-question values in columns (None: the question has none there), their means and the
    ``differences`` (a, b) = mean a - mean b, with percentile bootstrap intervals.

    One resample draws questions with replacement and each column's mean is over the drawn
    questions that have a value in it, so a column over a subset of the questions (the paper's
    enhanced accuracy, over the questions with an example) stays paired with one over all of
    them (its original accuracy): the interval of their difference reflects that both come from
    the same questions.
    """
    k = columns
    v = np.array([[np.nan if x is None else float(x) for x in r] for r in rows], dtype=float)
    v = v.reshape(len(rows), k)
    n = [int(c) for c in (~np.isnan(v)).sum(axis=0)]

    def means_of(a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            have = ~np.isnan(a)
            return np.where(have, a, 0.0).sum(axis=-2) / have.sum(axis=-2)

    point = means_of(v) if len(rows) else np.full(k, np.nan)
    means = [None if np.isnan(m) else float(m) for m in point]
    diffs_point: dict[tuple[int, int], float | None] = {}
    for a, b in differences:
        ma, mb = means[a], means[b]
        diffs_point[(a, b)] = None if ma is None or mb is None else ma - mb
    if not len(rows) or resamples <= 0:
        return ColumnSummary(n, means, [None] * k, {d: (x, None) for d, x in diffs_point.items()})
    rng = np.random.default_rng(seed)
    size = len(rows)
    chunk = max(1, min(resamples, 2_000_000 // max(size * k, 1)))
    parts = []
    done = 0
    while done < resamples:
        m = min(chunk, resamples - done)
        idx = rng.integers(0, size, size=(m, size))
        parts.append(means_of(v[idx]))  # (m, k): NaN where a resample drew no value
        done += m
    sampled = np.concatenate(parts)
    cis = [_interval(sampled[:, j], confidence) for j in range(k)]
    diffs = {
        (a, b): (diffs_point[(a, b)], _interval(sampled[:, a] - sampled[:, b], confidence))
        for a, b in differences
    }
    return ColumnSummary(n, means, cis, diffs)
