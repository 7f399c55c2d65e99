"""Paired bootstrap and McNemar on cases whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from cdvkit.evaluation.stats import mcnemar, paired_bootstrap


def chi2_1df_sf(x: float) -> float:
    # Survival function of chi-square with one degree of freedom, without scipy.
    return math.erfc(math.sqrt(x / 2))


def test_mcnemar_exact_small_counts():
    # b=5, c=0: P = 2 * P(X <= 0 | Bin(5, 1/2)) = 2 / 32.
    r = mcnemar([1] * 5 + [0, 1], [0] * 5 + [0, 1])
    assert (r.b, r.c, r.method) == (5, 0, "exact")
    assert r.p_value == pytest.approx(2 / 32)
    # b=3, c=1: P = 2 * (C(4,0) + C(4,1)) / 16 = 10/16.
    r = mcnemar([1, 1, 1, 0], [0, 0, 0, 1])
    assert (r.b, r.c) == (3, 1)
    assert r.p_value == pytest.approx(10 / 16)
    # Balanced discordance: the doubled tail exceeds 1 and is capped.
    assert mcnemar([1, 0], [0, 1]).p_value == 1.0


def test_mcnemar_chi_square_with_continuity_correction():
    # b=30, c=10: (|30-10| - 1)^2 / 40 = 361/40.
    orig = [1] * 30 + [0] * 10 + [1] * 7
    dist = [0] * 30 + [1] * 10 + [1] * 7
    r = mcnemar(orig, dist)
    assert (r.b, r.c, r.method) == (30, 10, "chi2")
    assert r.statistic == pytest.approx(361 / 40)
    assert r.p_value == pytest.approx(chi2_1df_sf(361 / 40), rel=1e-9)
    assert r.p_value == pytest.approx(0.002663, abs=1e-5)


def test_mcnemar_switches_to_chi_square_at_25_discordant_pairs():
    assert mcnemar([1] * 24, [0] * 24).method == "exact"
    assert mcnemar([1] * 25, [0] * 25).method == "chi2"


def test_mcnemar_no_discordant_pair_and_majority_reading():
    r = mcnemar([1, 0, 1], [1, 0, 1])
    assert (r.b, r.c, r.p_value, r.method) == (0, 0, 1.0, "none")
    # Shares of correct samples are read by majority: 0.6 right, 0.4 wrong, 0.5 not right.
    r = mcnemar([0.6, 0.6, 0.5], [0.4, 0.8, 0.0])
    assert (r.b, r.c) == (1, 0)
    with pytest.raises(ValueError):
        mcnemar([1], [1, 0])


def test_bootstrap_two_questions_hand_enumerated():
    # Per-question drops are 1 and 0; a resample of two questions has mean drop 0, 1/2 or 1
    # with probabilities 1/4, 1/2, 1/4, so the 95% percentile interval is [0, 1].
    s = paired_bootstrap([1, 1], [0, 1], resamples=4000, seed=1)
    assert (s.n, s.original, s.distracted, s.drop, s.relative_drop) == (2, 1.0, 0.5, 0.5, 0.5)
    assert s.drop_ci == (0.0, 1.0)
    assert s.original_ci == (1.0, 1.0)
    assert s.distracted_ci == (0.0, 1.0)
    assert s.relative_drop_ci == (0.0, 1.0)


def test_bootstrap_binomial_interval():
    # Original always right, distracted right on 5 of 10: the resampled drop is Bin(10, 1/2)/10,
    # whose 2.5% and 97.5% quantiles are 0.2 and 0.8 (P(X<=1)=1.1%, P(X<=2)=5.5%).
    s = paired_bootstrap([1] * 10, [1] * 5 + [0] * 5, resamples=20000, seed=0)
    assert s.drop == 0.5
    assert s.drop_ci == pytest.approx((0.2, 0.8))
    assert s.relative_drop_ci == pytest.approx((0.2, 0.8))


def test_bootstrap_resamples_pairs_together():
    # Identical scores on both sides: every paired resample has drop exactly 0, although each
    # accuracy on its own varies a lot. Unpaired resampling would give a wide drop interval.
    scores = [1, 0] * 8
    s = paired_bootstrap(scores, scores, resamples=2000, seed=3)
    assert s.drop == 0.0 and s.drop_ci == (0.0, 0.0)
    lo, hi = s.original_ci
    assert lo < 0.35 and hi > 0.65


def test_bootstrap_is_seeded_and_handles_edge_cases():
    o, d = [1, 1, 0, 1, 1, 0, 1], [0, 1, 0, 0, 1, 1, 0]
    a = paired_bootstrap(o, d, resamples=500, seed=7)
    b = paired_bootstrap(o, d, resamples=500, seed=7)
    assert a == b
    # An original accuracy of 0 leaves the relative drop undefined, never a division error.
    z = paired_bootstrap([0, 0], [0, 1], resamples=100)
    assert z.relative_drop is None and z.relative_drop_ci is None
    assert z.drop == -0.5
    empty = paired_bootstrap([], [], resamples=100)
    assert empty.n == 0 and empty.original is None and empty.drop_ci is None
    assert empty.to_dict()["mcnemar"]["method"] == "none"
    # A fractional score (share of correct samples) is averaged as is.
    f = paired_bootstrap([1.0, 0.6], [0.2, 0.6], resamples=0)
    assert f.original == pytest.approx(0.8) and f.drop == pytest.approx(0.4)
    assert f.drop_ci is None


def test_mcnemar_agrees_with_scipy():
    sps = pytest.importorskip("scipy.stats")
    for b, c in [(0, 3), (7, 2), (12, 12), (24, 0), (30, 10), (55, 31)]:
        r = mcnemar([1] * b + [0] * c, [0] * b + [1] * c)
        n = b + c
        if r.method == "exact":
            expected = min(1.0, 2 * sps.binom.cdf(min(b, c), n, 0.5))
        else:
            expected = sps.chi2.sf((abs(b - c) - 1) ** 2 / n, 1)
        assert r.p_value == pytest.approx(expected, rel=1e-9)
