"""From scores to an evaluation's result entry: paired accuracy, drop, significance, transfer.

Scores arrive one answer at a time, from this process or from Ray workers; both paths tally them
here and assemble the same entry, so a result does not depend on where it was computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from cdvkit.evaluation.defenses import Defense
from cdvkit.evaluation.items import EvalItem, ExampleSet, Variant
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


def eval_jobs(sets: list[ExampleSet], models: list[str], all_examples: bool) -> list[Job]:
    """Every answer an evaluation needs, in a fixed order."""
    return [
        (si, model, item, v)
        for si, es in enumerate(sets)
        for model in models
        for item in es.items
        for v in item.variants(all_examples)
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
        per_model: dict[str, ModelResult] = {}
        for model in models:
            pairs: dict[str, list[tuple[float, float]]] = {OVERALL: []}
            items_out = []
            dropped = 0
            for item in es.items:
                orig = scores.get((si, model, item.id, item.original.key))
                chosen = item.variants(s.all_examples)[1:]
                dist = [scores.get((si, model, item.id, v.key)) for v in chosen]
                if orig is None or any(x is None for x in dist):
                    dropped += 1
                    continue
                # With --all-examples a question's distracted score is the mean over its
                # examples, so resampling stays per question.
                d = sum(x.accuracy for x in dist if x is not None) / len(dist)
                pairs[OVERALL].append((orig.accuracy, d))
                pairs.setdefault(item.dataset or "(none)", []).append((orig.accuracy, d))
                items_out.append([item.id, item.dataset, orig.accuracy, d])
            summary: dict[str, PairedResult] = {
                name: paired_bootstrap(
                    [p[0] for p in ps],
                    [p[1] for p in ps],
                    resamples=s.resamples,
                    seed=s.seed,
                    confidence=s.confidence,
                ).to_dict()
                for name, ps in pairs.items()
            }
            per_model[model] = ModelResult(
                mode="/".join(sorted(modes[model])) or None,
                overall=summary.pop(OVERALL),
                by_dataset=dict(sorted(summary.items())),
                dropped=dropped,
                items=items_out,
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
            "protocol": s.protocol(defense.text).describe(_task(sets)),
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


def _task(sets: list[ExampleSet]) -> str | None:
    """The shape of the evaluated questions (the first one's: a run holds one shape)."""
    return next((i.original.task for es in sets for i in es.items), None)
