"""From scores to an evaluation's result entry: paired accuracy, drop, significance, transfer.

Scores arrive one answer at a time, from this process or from Ray workers; both paths tally them
here and assemble the same entry, so a result does not depend on where it was computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from cdvkit.evaluation.breakdown import (
    QuestionScores,
    by_construction,
    order_result,
    paper_result,
    split,
    whole_result,
)
from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import ORIGINAL, EvalItem, ExampleSet, Variant
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.evaluation.stats import paired_bootstrap
from cdvkit.store.records import EvaluationResult, ModelResult, PairedResult, Transfer

OVERALL = "overall"


@dataclass
class ItemScore:
    accuracy: float  # 1.0 when answered right under the protocol, else 0.0
    mode: str
    cached: bool


@dataclass
class EvalProgress:
    total: int = 0
    done: int = 0
    cached: int = 0
    errors: list[str] = field(default_factory=list)


Job = tuple[int, str, EvalItem, Variant]  # (example set, model, item, variant)


def question_variants(item: EvalItem, s: EvalSettings) -> list[Variant]:
    """What one model is asked of one question: its original, the evaluated examples and, with
    the order control, the original in each of their choice orders (once per order)."""
    out = item.variants(s.all_examples)
    if s.order_control:
        for v in item.chosen(s.all_examples):
            r = item.reordered(v)
            if r is not None and all(r.key != w.key for w in out):
                out.append(r)
    return out


def eval_jobs(sets: list[ExampleSet], models: list[str], settings: EvalSettings) -> list[Job]:
    """Every answer an evaluation needs, in a fixed order: the questions with an example, then
    (where the set knows its whole dataset) every other question's original."""
    return [
        (si, model, item, v)
        for si, es in enumerate(sets)
        for model in models
        for item in (es.every if es.whole else es.items)
        for v in question_variants(item, settings)
    ]


@dataclass
class Tally:
    """Scores as they arrive, wherever they are computed (this process or Ray workers)."""

    models: list[str]
    progress: EvalProgress
    on_progress: Callable[[EvalProgress], None] | None = None
    scores: dict[tuple[int, str, str, str], ItemScore | None] = field(default_factory=dict)
    modes: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.modes = {m: set() for m in self.models}

    def record(self, si: int, model: str, item_id: str, vkey: str, sc: ItemScore | None) -> None:
        """One answer's score, or None when it failed (the question drops out for the model)."""
        self.scores[(si, model, item_id, vkey)] = sc
        if sc is not None:
            self.modes[model].add(sc.mode)
            self.progress.cached += sc.cached
        self.progress.done += 1
        if self.on_progress:
            self.on_progress(self.progress)


def assemble_results(
    models: list[str],
    defense: Defense,
    settings: EvalSettings,
    sets: list[ExampleSet],
    scores: dict[tuple[int, str, str, str], ItemScore | None],
    modes: dict[str, set[str]],
    progress: EvalProgress,
) -> EvaluationResult:
    """One defense's result entry from the scores, wherever they were computed."""
    s = settings
    results: dict[str, dict[str, ModelResult]] = {}
    for si, es in enumerate(sets):
        # Nothing to control where every example kept its original's choice order.
        reorders = s.order_control and any(
            item.reordered(v) not in (None, item.original)
            for item in es.items
            for v in item.chosen(s.all_examples)
        )
        per_model: dict[str, ModelResult] = {}
        for model in models:
            qs, dropped = question_scores(si, model, es, s, scores)
            paired = [q for q in qs if q.distracted is not None]
            by_dataset = _paired_groups(paired, "dataset", s)
            per_model[model] = ModelResult(
                mode="/".join(sorted(modes[model])) or None,
                overall=_paired(paired, s),
                by_dataset=by_dataset,
                dropped=dropped,
                items=[[q.item.id, q.item.dataset, q.original, q.distracted] for q in paired],
                by_subject=_paired_groups(paired, "subject", s) if s.by == "subject" else None,
                whole=split(qs, whole_result, s) if es.whole else None,
                order=split(paired, order_result, s) if reorders else None,
                paper=split(qs, paper_result, s) if s.preset == "paper" and es.whole else None,
                by_construction=by_construction(es, model, s, defense),
            )
        results[es.label] = per_model
    rows = [es.label for es in sets]
    return EvaluationResult(
        defense=defense.label,
        defense_text=defense.text,
        defense_path=defense.path,
        defense_sha=defense.sha,
        settings={
            **asdict(s),
            "samples": s.protocol().samples,
            "temperature": s.effective_temperature,
            "protocol": s.protocol(defense.text).describe(_task(sets))
            + ("; the extractor reads every reply" if s.always_extract else ""),
        },
        models=models,
        sources=[es.describe() for es in sets],
        results=results,
        transfer=Transfer(
            rows=rows,
            cols=models,
            **{
                metric: [[results[r][m][OVERALL][metric] for m in models] for r in rows]
                for metric in ("original", "distracted", "drop", "relative_drop")
            },
        ),
        answers={"total": progress.total, "cached": progress.cached},
        errors=progress.errors,
        created=time.time(),
    )


def question_scores(
    si: int,
    model: str,
    es: ExampleSet,
    s: EvalSettings,
    scores: dict[tuple[int, str, str, str], ItemScore | None],
) -> tuple[list[QuestionScores], int]:
    """Each question's scores for ``model``, and how many questions were left out because one
    of their answers failed (a question's numbers must come whole)."""
    out: list[QuestionScores] = []
    dropped = 0
    for item in es.every if es.whole else es.items:
        got = {v.key: scores.get((si, model, item.id, v.key)) for v in question_variants(item, s)}
        if any(x is None for x in got.values()):
            dropped += 1
            continue
        acc = {k: x.accuracy for k, x in got.items() if x is not None}
        chosen = item.chosen(s.all_examples)
        if not chosen:
            out.append(QuestionScores(item, acc[ORIGINAL]))
            continue
        # With --all-examples a question's distracted score is the mean over its examples, so
        # resampling stays per question; the paper's enhanced question stays the first.
        orders = [item.reordered(v) for v in chosen] if s.order_control else []
        out.append(
            QuestionScores(
                item,
                acc[ORIGINAL],
                sum(acc[v.key] for v in chosen) / len(chosen),
                acc[chosen[0].key],
                None
                if not orders or None in orders
                else sum(acc[r.key] for r in orders if r is not None) / len(orders),
            )
        )
    return out, dropped


def _paired(qs: list[QuestionScores], s: EvalSettings) -> PairedResult:
    return paired_bootstrap(
        [q.original for q in qs],
        [q.distracted or 0.0 for q in qs],
        resamples=s.resamples,
        seed=s.seed,
        confidence=s.confidence,
    ).to_dict()


def _paired_groups(qs: list[QuestionScores], by: str, s: EvalSettings) -> dict[str, PairedResult]:
    groups: dict[str, list[QuestionScores]] = {}
    for q in qs:
        groups.setdefault(q.item.group(by), []).append(q)
    return {name: _paired(g, s) for name, g in sorted(groups.items())}


def _task(sets: list[ExampleSet]) -> str | None:
    """The shape of the evaluated questions (the first one's: a run holds one shape)."""
    return next((i.original.task for es in sets for i in es.items), None)
