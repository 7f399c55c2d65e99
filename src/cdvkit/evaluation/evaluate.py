"""Evaluate models on original vs. distracted questions: accuracy, drop, significance, transfer.

Every answer goes through a ``RoleClient`` (role ``eval``) bound to the run store, and each scored
item is written with ``put_eval`` as soon as it is known, so an interrupted evaluation resumes
where it stopped and a repeated one costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.evaluation.items import EvalItem, ExampleSet, Variant
from cdvkit.evaluation.stats import paired_bootstrap
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import RoleClient, current_question
from cdvkit.models.errors import (
    AuthenticationError,
    BackendUnavailableError,
    ModelError,
    OutageError,
    UnsupportedError,
)
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.models.registry import load_model
from cdvkit.prompts import DEFENSES
from cdvkit.protocol import SCORINGS, Asker, Protocol, protocol_from_config
from cdvkit.store import RunStore

EVALUATION_FILE = "evaluation.json"
RESULTS_VERSION = 1
OVERALL = "overall"
# Errors no other question would escape (bad key, missing backend, a server that is down, an
# exact protocol on a model without choice probabilities): stop at once instead of recording one
# failure per answer.
FATAL = (AuthenticationError, BackendUnavailableError, OutageError, UnsupportedError)


@dataclass(frozen=True)
class Defense:
    label: str  # built-in name, or the file name of a custom system prompt
    text: str
    path: str | None = None

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


def resolve_defense(spec: str) -> Defense:
    """A built-in defense name, or a path (optionally ``file:PATH``) to a file holding a system
    prompt addition. ``file:`` reads a file even when its name is also a built-in's."""
    if spec in DEFENSES:
        return Defense(spec, DEFENSES[spec])
    p = Path(spec.removeprefix("file:"))
    if p.is_file():
        text = p.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"defense file {p} is empty")
        return Defense(p.name, text, str(p))
    if spec.startswith("file:"):
        raise ValueError(f"defense file {p} not found")
    raise ValueError(
        f"unknown defense {spec!r}: use one of {', '.join(DEFENSES)} or a path to a text file"
    )


@dataclass
class EvalSettings:
    """How an evaluation asks: the protocol (shared with the search, see cdvkit.protocol) and
    the statistics. Fields left None take the protocol's defaults (5 near-greedy answers)."""

    samples: int | None = None
    temperature: float | None = None
    scoring: str = "sample"  # the protocol's: sample | exact
    prompt: str = "letter"  # letter | paper
    threshold: float | None = None
    all_examples: bool = False
    resamples: int = 10_000
    seed: int = 0
    confidence: float = 0.95
    concurrency: int = 16

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError("--protocol must be sample or exact")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        self.protocol()  # validates samples, temperature, prompt and threshold

    @classmethod
    def from_protocol(cls, protocol: Protocol, **rest: Any) -> EvalSettings:
        return cls(
            samples=protocol.samples,
            temperature=protocol.temperature,
            scoring=protocol.scoring,
            prompt=protocol.prompt,
            threshold=protocol.threshold,
            **rest,
        )

    def protocol(self, defense: str = "") -> Protocol:
        base = Protocol()
        return Protocol(
            scoring=self.scoring,
            samples=self.samples if self.samples is not None else base.samples,
            temperature=self.temperature if self.temperature is not None else base.temperature,
            prompt=self.prompt,
            threshold=self.threshold,
            defense=defense,
        )

    @property
    def effective_temperature(self) -> float:
        return self.protocol().temperature


def eval_key(
    model: str,
    item_id: str,
    variant: Variant,
    defense: Defense,
    s: EvalSettings,
    extractor: str | None = None,
) -> str:
    """Everything that changes an answer is in the key, the text included: a file of examples
    that reuses a question id with other text is not mistaken for a cached answer."""
    payload = {
        "model": model,
        "item": item_id,
        "variant": variant.key,
        "question": variant.question,
        "choices": list(variant.choices),
        "answer": variant.answer,
        "defense": defense.text,
        "protocol": {k: v for k, v in s.protocol().to_dict().items() if k != "defense"},
        "extractor": extractor,  # it can turn an unreadable reply into a right or wrong answer
    }
    return "eval:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load(spec: str, concurrency: int, base_url: str | None) -> Model:
    opts: dict[str, Any] = {"concurrency": concurrency}
    if spec.startswith(("openai/", "openai-compatible/")):
        # --base-url names an OpenAI-compatible server; other providers keep their own endpoint.
        opts["base_url"] = base_url
    return load_model(spec, **opts)


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


class Evaluator:
    """Scores items for several models under one defense; answers live in the run store."""

    def __init__(
        self,
        models: list[str],
        *,
        store: RunStore | None,
        defense: Defense,
        settings: EvalSettings,
        budget: Budget | None = None,
        backends: dict[str, Model] | None = None,
        extractor: str | Model | None = None,
        base_url: str | None = None,
    ) -> None:
        if not models:
            raise ValueError("give at least one model to evaluate (--models)")
        self.models = list(dict.fromkeys(models))
        self.store = store
        self.defense = defense
        self.settings = settings
        self.budget = budget or Budget()
        self._memory: dict[str, dict[str, Any]] = {}  # answers when no store is attached
        self._owned: list[Model] = []
        backends = dict(backends or {})
        self.clients: dict[str, RoleClient] = {}
        for spec in self.models:
            model = backends.get(spec)
            if model is None:
                model = _load(spec, settings.concurrency, base_url)
                self._owned.append(model)
            self.clients[spec] = RoleClient(
                model, "eval", store=store, budget=self.budget, phase="evaluate"
            )
        self.extractor: RoleClient | None = None
        if extractor is not None:
            ext = (
                extractor
                if isinstance(extractor, Model)
                else _load(extractor, settings.concurrency, base_url)
            )
            if not isinstance(extractor, Model):
                self._owned.append(ext)
            self.extractor = RoleClient(
                ext, "extractor", store=store, budget=self.budget, phase="evaluate"
            )
        protocol = settings.protocol(defense.text)
        self.askers = {
            spec: Asker(client, protocol, extractor=self.extractor)
            for spec, client in self.clients.items()
        }

    async def aclose(self) -> None:
        # Every backend's clients belong to this event loop, lent ones included: closing them
        # here leaves nothing open when the loop ends (a later loop opens its own).
        models = [c.model for c in self.clients.values()] + self._owned
        if self.extractor is not None:
            models.append(self.extractor.model)
        for m in dict.fromkeys(models):
            await m.aclose()

    def _get(self, key: str) -> dict[str, Any] | None:
        if self.store is not None:
            return self.store.get_eval(key)
        return self._memory.get(key)

    def _put(self, key: str, data: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.put_eval(key, data)
        else:
            self._memory[key] = data

    async def score(self, model: str, item: EvalItem, variant: Variant) -> ItemScore:
        ext = self.extractor.name if self.extractor else None
        key = eval_key(model, item.id, variant, self.defense, self.settings, ext)
        hit = self._get(key)
        if hit is not None:
            return ItemScore(float(hit["accuracy"]), hit["mode"], True)
        current_question.set(item.id)
        try:
            out = await self.askers[model].ask(variant.question, variant.choices, variant.answer)
        except UnsupportedError as exc:
            raise UnsupportedError(
                f"cannot evaluate {model} with --protocol {self.settings.scoring} ({exc}); exact "
                "needs a backend with choice probabilities, sample one that generates text"
            ) from exc
        accuracy = 1.0 if out.correct else 0.0
        self._put(
            key,
            {
                "model": model,
                "item": item.id,
                "variant": variant.key,
                "defense": self.defense.label,
                "defense_sha": self.defense.sha,
                "protocol": self.askers[model].protocol.describe(),
                "samples": self.askers[model].protocol.samples,
                "temperature": self.askers[model].protocol.temperature,
                "scoring": self.settings.scoring,
                "mode": out.mode,
                "accuracy": accuracy,
                "correct": out.correct,
                "sample_accuracy": out.accuracy,
                "outputs": out.to_dict(),
                "created": time.time(),
            },
        )
        return ItemScore(accuracy, out.mode, False)

    async def run(
        self,
        sets: list[ExampleSet],
        *,
        on_progress: Callable[[EvalProgress], None] | None = None,
    ) -> dict[str, Any]:
        """Score every (set, model, item, variant) and return this defense's result entry."""
        s = self.settings
        jobs = eval_jobs(sets, self.models, s.all_examples)
        tally = Tally(self.models, EvalProgress(total=len(jobs)), on_progress)
        sem = asyncio.Semaphore(max(1, s.concurrency))

        async def one(si: int, model: str, item: EvalItem, v: Variant) -> None:
            async with sem:
                try:
                    sc = await self.score(model, item, v)
                except FATAL:
                    raise
                except ModelError as exc:
                    # One failed answer drops the question for this model (pairs must be whole).
                    tally.progress.errors.append(f"{model} on {item.id} ({v.key}): {exc}")
                    sc = None
            tally.record(si, model, item.id, v.key, sc)

        tasks = [asyncio.create_task(one(*j)) for j in jobs]
        try:
            # Let every job settle before raising: calls already in flight when the budget runs
            # out are paid for, and their answers must reach the store so a rerun reuses them.
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
        return self._assemble(sets, tally.scores, tally.modes, tally.progress)

    def _assemble(
        self,
        sets: list[ExampleSet],
        scores: dict[tuple[int, str, str, str], ItemScore | None],
        modes: dict[str, set[str]],
        progress: EvalProgress,
    ) -> dict[str, Any]:
        return assemble_results(
            self.models, self.defense, self.settings, sets, scores, modes, progress
        )


def assemble_results(
    models: list[str],
    defense: Defense,
    settings: EvalSettings,
    sets: list[ExampleSet],
    scores: dict[tuple[int, str, str, str], ItemScore | None],
    modes: dict[str, set[str]],
    progress: EvalProgress,
) -> dict[str, Any]:
    """One defense's result entry from the scores; shared by the local and distributed paths."""
    s = settings
    results: dict[str, dict[str, Any]] = {}
    for si, es in enumerate(sets):
        per_model: dict[str, Any] = {}
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
            summary = {
                name: paired_bootstrap(
                    [p[0] for p in ps],
                    [p[1] for p in ps],
                    resamples=s.resamples,
                    seed=s.seed,
                    confidence=s.confidence,
                ).to_dict()
                for name, ps in pairs.items()
            }
            per_model[model] = {
                "mode": "/".join(sorted(modes[model])) or None,
                OVERALL: summary.pop(OVERALL),
                "by_dataset": dict(sorted(summary.items())),
                "dropped": dropped,
                # [question id, dataset, original accuracy, distracted accuracy]
                "items": items_out,
            }
        results[es.label] = per_model
    rows = [es.label for es in sets]
    transfer = {
        "rows": rows,
        "cols": models,
        **{
            metric: [[results[r][m][OVERALL][metric] for m in models] for r in rows]
            for metric in ("original", "distracted", "drop", "relative_drop")
        },
    }
    return {
        "defense": defense.label,
        "defense_text": defense.text,
        "defense_path": defense.path,
        "defense_sha": defense.sha,
        "settings": {
            **asdict(s),
            "samples": s.protocol().samples,
            "temperature": s.effective_temperature,
            "protocol": s.protocol(defense.text).describe(),
        },
        "models": models,
        "sources": [es.describe() for es in sets],
        "results": results,
        "transfer": transfer,
        "answers": {"total": progress.total, "cached": progress.cached},
        "errors": progress.errors,
        "created": time.time(),
    }


async def evaluate(
    sets: list[ExampleSet],
    models: list[str],
    *,
    store: RunStore | None,
    defense: str | Defense = "none",
    settings: EvalSettings | None = None,
    budget: Budget | None = None,
    backends: dict[str, Model] | None = None,
    extractor: str | Model | None = None,
    base_url: str | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
    executor: Any | None = None,
) -> dict[str, Any]:
    """Evaluate ``models`` on every example set under one defense; returns the result entry.

    ``backends`` maps a model string to a ready backend (tests, the Python API); other strings
    are loaded with ``load_model``. A distributed ``executor`` (cdvkit.executors) scores on its
    workers, this process still the only writer of ``store``.
    """
    d = defense if isinstance(defense, Defense) else resolve_defense(defense)
    options: dict[str, Any] = {
        "store": store,
        "defense": d,
        "settings": settings or EvalSettings(),
        "budget": budget,
        "backends": backends,
        "extractor": extractor,
        "base_url": base_url,
    }
    if executor is not None and executor.distributed:
        return await executor.evaluate(sets, models, **options, on_progress=on_progress)
    ev = Evaluator(models, **options)
    try:
        return await ev.run(sets, on_progress=on_progress)
    finally:
        await ev.aclose()


def run_protocol(run_dir: str | Path) -> Protocol:
    """The protocol a run was searched under, so evaluating its examples asks the same way."""
    with RunStore(run_dir, lock=False, readonly=True) as store:
        config = store.get_config() or {}
    try:
        return protocol_from_config(config)
    except (TypeError, ValueError):  # a config this version cannot read: the defaults
        return Protocol()


async def check_eval_models(
    models: list[str],
    extractor: str | None = None,
    base_url: str | None = None,
    concurrency: int = 16,
) -> tuple[dict[str, Model], Model | None]:
    """Build and check every evaluated model (and the extractor) before anything is written or
    paid; returns the backends by model string, and the extractor's. Raises PreflightError."""
    wanted = [
        Wanted(spec, "evaluated", spec, spec, lambda spec=spec: _load(spec, concurrency, base_url))
        for spec in dict.fromkeys(models)
    ]
    if extractor is not None:
        wanted.append(
            Wanted(
                "\0extractor",
                "extractor",
                extractor,
                extractor,
                lambda: _load(extractor, concurrency, base_url),
            )
        )
    built = await preflight(wanted)
    ext = built.pop("\0extractor", None)
    return built, ext


def load_evaluation(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's evaluation file, or None when the run was never evaluated."""
    p = Path(run_dir) / EVALUATION_FILE
    if not p.is_file():
        return None
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "evaluations" not in data:
        raise ValueError(f"{p} is not a cdvkit evaluation file")
    return data


def save_evaluation(run_dir: str | Path, entry: dict[str, Any]) -> Path:
    """Add or replace this defense's entry, keeping the others so defenses can be compared.

    Entries are keyed by the defense's label; a defense file whose name is already taken by
    another text (two ``prompt.txt`` in different folders, or an edited file) gets its own entry
    under ``<label>@<sha>`` instead of replacing the other one's results.
    """
    p = Path(run_dir) / EVALUATION_FILE
    data = load_evaluation(run_dir) or {"version": RESULTS_VERSION, "evaluations": {}}
    old = data["evaluations"].get(entry["defense"])
    if old is not None and old.get("defense_text") != entry.get("defense_text"):
        sha = (
            entry.get("defense_sha")
            or hashlib.sha256(str(entry.get("defense_text")).encode()).hexdigest()[:12]
        )
        entry["defense"] = f"{entry['defense']}@{sha}"
    data["evaluations"][entry["defense"]] = entry
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(p)  # atomic: a report never reads half a file
    return p
