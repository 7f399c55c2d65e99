"""The numbers beyond the paired ones, from each question's scores: accuracy on every question of
the dataset, the order-only control, the paper's original/enhanced/drop, and whether the paired
numbers are true by construction.

Every figure here resamples questions (``stats.column_bootstrap``), like the paired numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import EvalItem, ExampleSet
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.evaluation.stats import ColumnSummary, column_bootstrap
from cdvkit.store.records import OrderResult, PaperResult, Split, WholeResult

R = TypeVar("R")


@dataclass(frozen=True)
class QuestionScores:
    """One question's scores for one model (1.0 right, 0.0 wrong, under the protocol)."""

    item: EvalItem
    original: float
    distracted: float | None = None  # mean over the evaluated examples; None without one
    first: float | None = None  # the first example's (the paper's enhanced question)
    reordered: float | None = None  # mean over the examples' orders; None: no order control


def _ci(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(x) for x in ci]


def _summary(
    rows: Sequence[Sequence[float | None]],
    k: int,
    s: EvalSettings,
    diffs: Sequence[tuple[int, int]] = (),
) -> ColumnSummary:
    return column_bootstrap(
        rows,
        k,
        differences=diffs,
        resamples=s.resamples,
        seed=s.seed,
        confidence=s.confidence,
    )


def whole_result(qs: list[QuestionScores], s: EvalSettings) -> WholeResult:
    c = _summary([[q.original] for q in qs], 1, s)
    return WholeResult(
        n=len(qs),
        original=c.means[0],
        original_ci=_ci(c.cis[0]),
        with_example=sum(q.distracted is not None for q in qs),
        originally_failed=sum(q.item.failed for q in qs),
    )


def order_result(qs: list[QuestionScores], s: EvalSettings) -> OrderResult:
    rows = [
        [q.original, q.reordered, q.distracted]
        for q in qs
        if q.reordered is not None and q.distracted is not None
    ]
    c = _summary(rows, 3, s, diffs=[(0, 2), (0, 1), (1, 2)])
    drop, order, distraction = (c.diffs[d] for d in ((0, 2), (0, 1), (1, 2)))
    return OrderResult(
        n=len(rows),
        original=c.means[0],
        reordered=c.means[1],
        distracted=c.means[2],
        drop=drop[0],
        order_drop=order[0],
        distraction_drop=distraction[0],
        reordered_ci=_ci(c.cis[1]),
        drop_ci=_ci(drop[1]),
        order_drop_ci=_ci(order[1]),
        distraction_drop_ci=_ci(distraction[1]),
    )


def enhanced_score(q: QuestionScores) -> float | None:
    """The paper's enhanced score: the first example's, or for a question the target originally
    failed, the original's own (the paper stores it as its own good question)."""
    if q.first is not None:
        return q.first
    return q.original if q.item.failed else None


def paper_result(qs: list[QuestionScores], s: EvalSettings) -> PaperResult:
    rows = [[q.original, enhanced_score(q)] for q in qs]
    c = _summary(rows, 2, s, diffs=[(0, 1)])
    drop = c.diffs[(0, 1)]
    return PaperResult(
        n_original=c.n[0],
        n_enhanced=c.n[1],
        originally_failed=sum(q.first is None and q.item.failed for q in qs),
        original=c.means[0],
        enhanced=c.means[1],
        drop=drop[0],
        original_ci=_ci(c.cis[0]),
        enhanced_ci=_ci(c.cis[1]),
        drop_ci=_ci(drop[1]),
    )


def split(
    qs: list[QuestionScores],
    result: Callable[[list[QuestionScores], EvalSettings], R],
    s: EvalSettings,
) -> Split[R]:
    """``result`` over every question, per dataset, and per subject with ``--by subject``."""

    def groups(by: str) -> dict[str, R]:
        out: dict[str, list[QuestionScores]] = {}
        for q in qs:
            out.setdefault(q.item.group(by), []).append(q)
        return {name: result(g, s) for name, g in sorted(out.items())}

    return Split(
        overall=result(qs, s),
        by_dataset=groups("dataset"),
        by_subject=groups("subject") if s.by == "subject" else None,
    )


def by_construction(es: ExampleSet, model: str, s: EvalSettings, defense: Defense) -> bool:
    """Whether ``model`` is the run's own target asked under the run's own protocol: then its
    examples are exactly the questions it failed, and its distracted accuracy is 0% by
    construction (a rewrite baseline keeps rewrites that did not fool it: never)."""
    if es.kind != "run" or es.baseline or model not in es.targets or es.protocol is None:
        return False
    if defense.text:
        return False
    mine, run = s.protocol(), es.protocol
    same = ("scoring", "threshold", "always_extract")
    if mine.scoring == "sample":
        same += ("samples", "temperature", "prompt")
    return all(getattr(mine, f) == getattr(run, f, None) for f in same)
