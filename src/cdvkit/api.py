"""The one-call Python API: ``cdvkit.generate``, ``cdvkit.evaluate``, ``cdvkit.report``.

Each does what its `cdv` command does, and the commands call them: the CLI only adds its
progress bar, its printing and its exit codes (through ``RunHooks``).

    import cdvkit
    run = cdvkit.generate(data="sample", run_dir="runs/api")
    print(run.summary["examples"], run.examples[0]["question"])
    cdvkit.evaluate(run=run.run_dir, models=["embed/all-MiniLM-L6-v2"])
    cdvkit.report(run.run_dir)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdvkit.evaluation.config import EvalConfig
from cdvkit.executors import Executor, LocalExecutor
from cdvkit.models.base import Model
from cdvkit.reporting.summary import summarize
from cdvkit.runs import AUTO, SearchProgress, prepare_store, run_search, settle_skips
from cdvkit.search.build import check_models, role_models
from cdvkit.search.config import SearchConfig
from cdvkit.search.forecast import Forecast, forecast_from_store, forecast_run, role_prices
from cdvkit.search.goals_multi import target_roles
from cdvkit.store import RunStore
from cdvkit.store.records import EvaluationResult, Example, RunSpec, RunStats
from cdvkit.store.status import UNFINISHED, QuestionStatus

OnQuestionDone = Callable[[str, str], None]


class RunHooks:
    """What a caller sees of a run while it happens; every hook is optional (a no-op here)."""

    def loaded(self, result: Any) -> None:
        """The dataset was read (``result.warnings`` and ``result.skipped`` list its repairs)."""

    def starting(self, cfg: SearchConfig, run_dir: Path, questions: list[Any]) -> None:
        """Everything is checked; the search starts."""

    def forecast(self, forecast: Forecast) -> None:
        """What the run will cost: made before it starts (and on resume, for what is left)."""

    def failure(self, failure: dict[str, Any]) -> None:
        """A request failed (kind, role, model, error), as it is recorded."""

    @contextmanager
    def running(self, total: int, done: int, store: RunStore) -> Iterator[OnQuestionDone | None]:
        """Wraps the search; what it yields is called as each question ends, with its id and
        status (and with ``ROOT_ANSWERED`` as ``--prefilter auto`` answers an original first)."""
        yield None

    def progress(self, progress: SearchProgress) -> None:
        """The search moved while questions are in flight: a node or a paid call was stored
        (``progress`` holds the calls paid, the examples found, each running question's share)."""


@dataclass
class RunResult:
    """A finished (or stopped) run: where it is stored and its summary."""

    run_dir: Path
    summary: RunStats
    stopped: str | None = None  # why a budget stopped it early
    fatal: str | None = None  # why it could not go on (bad key, server down)
    forecast: Forecast | None = None  # what the run was forecast to cost when it started

    @property
    def spec(self) -> RunSpec:
        """The run's settings and the schema and cdvkit version that wrote it."""
        with RunStore(self.run_dir, lock=False, readonly=True) as store:
            return store.run_spec()

    @property
    def examples(self) -> list[Example]:
        with RunStore(self.run_dir, lock=False, readonly=True) as store:
            return list(store.examples())

    @property
    def complete(self) -> bool:
        """Every question has its result (none incomplete, none left, nothing stopped)."""
        return not (self.fatal or self.stopped or self.summary["unfinished"])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(text).stem if "/" in text else text).strip("-")[:40]


def default_run_dir(data: str, target: str | list[str], seed: int) -> Path:
    """Same command, same directory: rerunning it resumes instead of starting over. Several
    targets name it after all of them (each slug cut short, the digest tells runs apart)."""
    digest = hashlib.sha256(json.dumps([data, target, seed]).encode()).hexdigest()[:8]
    names = [target] if isinstance(target, str) else target
    slugs = [_slug(t.split("/", 1)[-1])[: 40 // len(names)] for t in names]
    return Path("runs") / f"{_slug(data)}-{'+'.join(slugs)}-{digest}"


def generate(
    data: str | None = None,
    *,
    run_dir: str | Path | None = None,
    config: str | Path | None = None,
    executor: Executor | None = None,
    models: dict[str, Model] | None = None,
    hooks: RunHooks | None = None,
    **settings: Any,
) -> RunResult:
    """Search CDV examples for ``data`` (a built-in name, ``sample`` or a file) and store them.

    ``settings`` are SearchConfig's fields (``target="openai/gpt-4o-mini"``, ``max_good=1``...),
    over those of ``config`` (a TOML file). Rerunning with the same ``run_dir`` resumes. Every
    model is checked before anything is written or paid (PreflightError), unless ``models``
    hands in ready backends by role. Raises ValueError (bad settings or data), ReadOnlyRunError,
    RunLockedError, IncompatibleRunError, PreflightError.
    """
    cfg = SearchConfig.from_sources(config, data=data, **settings)
    executor = executor or LocalExecutor()
    hooks = hooks or RunHooks()
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg.data, cfg.target, cfg.seed)

    def load() -> list[Any]:
        return _load_questions(cfg, hooks)

    def open_store(questions: Callable[[], list[Any]]) -> tuple[RunStore, list[Any]]:
        store = RunStore(run_dir)
        try:
            return store, prepare_store(store, cfg, questions)
        except BaseException:
            store.close()
            raise

    opened: tuple[RunStore, list[Any]] | None = None
    preloaded: list[Any] = []
    if (run_dir / "run.db").exists():
        # An existing run is checked first (its version, lock and settings): nothing is created.
        opened = open_store(load)
    else:
        # A dataset that cannot be read leaves no half-made run directory behind.
        preloaded = load()
    try:
        # Every role's model is checked before anything is written or paid.
        built = models if models is not None else asyncio.run(check_models(cfg))
        loaded = opened[1] if opened is not None else preloaded
        free = next((q for q in loaded if q.free_form), None)
        for role, _, spec in target_roles(cfg.targets):
            target = built.get(role)
            if free is not None and target is not None and not target.writes_text:
                raise ValueError(
                    f"{spec} only scores choices, so it cannot answer {free.task} questions: "
                    "use a target that writes text (openai/..., openai-compatible/..., hf/...)"
                )
    except BaseException:
        if opened is not None:
            opened[0].close()
        raise
    if executor.distributed:
        built = {}  # workers build their own backends (these cannot be shipped to them)
    store, questions = opened or open_store(lambda: preloaded)
    with store:
        hooks.starting(cfg, run_dir, questions)
        forecast = forecast_of(cfg, store, built)
        hooks.forecast(forecast)
        store.on_failure = hooks.failure
        done = len(questions) - sum(1 for d in store.questions() if d["status"] in UNFINISHED)
        with hooks.running(len(questions), done, store) as on_question_done:
            outcome = asyncio.run(
                run_search(
                    cfg,
                    store,
                    models=built,
                    executor=executor,
                    on_question_done=on_question_done,
                    on_progress=hooks.progress,
                )
            )
        summary = summarize(store)
    return RunResult(run_dir, summary, outcome.stopped, outcome.fatal, forecast)


def forecast_of(cfg: SearchConfig, store: RunStore, models: dict[str, Model]) -> Forecast:
    """A run's forecast as it starts: from its own rates once enough questions have finished,
    else from the settings for the questions left plus what earlier sessions paid."""
    # What a saved prefilter skips is known before any call; a model it cannot use is left to
    # the run, which stops on it with the same message.
    settle_skips(cfg, store)
    fc = forecast_from_store(store) or _forecast_left(cfg, store, models)
    fc.skipped = sum(1 for d in store.questions() if d["status"] == QuestionStatus.SKIPPED)
    fc.auto_prefilter = cfg.prefilter == AUTO and not cfg.include_skipped
    return fc


def _forecast_left(cfg: SearchConfig, store: RunStore, models: dict[str, Model]) -> Forecast:
    statuses = store.questions()
    left = [d["question"] for d in statuses if d["status"] in UNFINISHED]
    prices, guided = role_prices(cfg)
    for role, model in models.items():  # the checked backends know best
        prices[role] = model.price_per_mtok if model.price_per_mtok else prices.get(role)
        if role == "target" and cfg.scoring == "auto" and not model.supports_choice_probs:
            guided = False
    fc = forecast_run(cfg, left, prices, exact_guided=guided, models=role_models(cfg))
    fc.questions = len(statuses)
    fc.spent_cost, fc.spent_calls = store.total_cost("search"), store.paid_calls("search")
    return fc


def estimate(
    data: str | None = None,
    *,
    config: str | Path | None = None,
    hooks: RunHooks | None = None,
    **settings: Any,
) -> Forecast:
    """What ``generate`` with these arguments would cost, before anything is paid or written:
    the data is read (``hooks.loaded`` sees its repairs) and each role's price looked up, no
    model is called."""
    cfg = SearchConfig.from_sources(config, data=data, **settings)
    questions = _load_questions(cfg, hooks or RunHooks())
    searched, skipped = questions, []
    if cfg.prefilter and cfg.prefilter != AUTO:
        from cdvkit.prefilter import apply_prefilter

        try:
            searched, skipped = apply_prefilter(questions, cfg.prefilter, cfg.prefilter_threshold)
        except (ImportError, OSError, ValueError) as exc:
            raise ValueError(f"prefilter: {exc}") from exc
    prices, guided = role_prices(cfg)
    fc = forecast_run(cfg, searched, prices, exact_guided=guided, models=role_models(cfg))
    fc.questions, fc.skipped = len(questions), len(skipped)
    fc.auto_prefilter = cfg.prefilter == AUTO
    return fc


def _load_questions(cfg: SearchConfig, hooks: RunHooks) -> list[Any]:
    """The run's questions, as its settings choose them; raises ValueError on bad data."""
    from cdvkit.tasks import load_questions

    result = load_questions(
        cfg.data,
        split=cfg.split,
        limit=cfg.limit,
        seed=cfg.seed,
        skip_invalid=cfg.skip_invalid,
        strict=cfg.strict,
        task=cfg.task,
    )
    hooks.loaded(result)
    if not result.questions:
        raise ValueError(f"no valid questions in {cfg.data}")
    free = next((q for q in result.questions if q.free_form), None)
    if free is not None and "exact" in (cfg.protocol, cfg.scoring):
        raise ValueError(
            f"{cfg.data} holds {free.task} questions, which have no choices to score "
            "exactly: use --protocol sample and --scoring auto or sample"
        )
    return result.questions


def report(run_dir: str | Path, output: str | Path | None = None, fmt: str = "html") -> Path:
    """Write the run's report (``html``: one self-contained file; ``md``); returns its path."""
    from cdvkit.reporting import build_report

    return build_report(run_dir, output, fmt)


class EvalHooks:
    """What a caller sees of an evaluation while it happens; every hook is optional."""

    def loaded(self, sets: list[Any]) -> None:
        """Every example set was read (``set.skipped`` says what was left out and why)."""

    def starting(self, protocol: Any) -> None:
        """Everything is checked; the answers are asked under ``protocol``."""

    def failure(self, failure: dict[str, Any]) -> None:
        """A request failed (kind, role, model, error), as it is recorded."""

    @contextmanager
    def running(self, defense: Any) -> Iterator[Callable[[Any], None] | None]:
        """Wraps one defence's evaluation; what it yields is told the progress."""
        yield None


@dataclass
class EvaluationRun:
    """Where the answers and ``evaluation.json`` went, and one result entry per defence."""

    results_dir: Path
    entries: list[EvaluationResult]


def parse_examples_arg(value: str) -> tuple[str, str | None]:
    """`PATH` or `LABEL=PATH` (the label names the row of the transfer matrix)."""
    if "=" in value and not Path(value).exists():
        label, path = value.split("=", 1)
        return path, label or None
    return value, None


def default_eval_dir(paths: list[str]) -> Path:
    digest = hashlib.sha256(json.dumps(sorted(paths)).encode()).hexdigest()[:8]
    return Path("runs") / f"eval-{digest}"


def evaluate(
    models_or_config: list[str] | EvalConfig | None = None,
    *,
    config: EvalConfig | str | Path | None = None,
    executor: Executor | None = None,
    backends: dict[str, Model] | None = None,
    hooks: EvalHooks | None = None,
    **settings: Any,
) -> EvaluationRun:
    """Accuracy of ``models`` on the original and distracted questions of runs (``run``) and
    examples files (``examples``: paths, or ``LABEL=PATH``), under each ``defense``, and on every
    question of the dataset (a run's own questions; ``data`` for examples files).

    The settings are an EvalConfig (cdvkit.evaluation.config): given ready (first argument or
    ``config=``; ``config`` may also name a TOML file), as keywords (its field names: ``run``,
    ``examples``, ``models``, ``protocol``, ``samples``, ``bootstrap``...), or both, the keywords
    over the config. ``executor``, ``backends`` (ready models by name) and ``hooks`` are what it
    runs with, not settings. The protocol is the first run's unless given (``protocol``,
    ``samples``, ...); ``preset`` ``"paper"`` asks the paper's way (one answer at temperature
    0.0001, its prompt, the extractor on every reply: ``extractor``, else the run's) and adds its
    numbers. ``order_control`` also asks each original in its example's choice order; ``by``
    splits rows by ``dataset`` or ``subject``. Everything is read and every model checked before
    anything is written; answers are stored in ``out`` (default: the first run), so a rerun is
    free. Raises ValueError (bad input; SettingError for a bad setting), PreflightError,
    ReadOnlyRunError, BudgetExceeded, ModelError (a run-stopping failure), TypeError (a keyword
    that is no setting).
    """
    cfg = EvalConfig.from_call(models_or_config, config, settings)
    return evaluate_config(cfg, executor=executor, backends=backends, hooks=hooks)


def evaluate_config(
    cfg: EvalConfig,
    *,
    executor: Executor | None = None,
    backends: dict[str, Model] | None = None,
    hooks: EvalHooks | None = None,
) -> EvaluationRun:
    """Run the evaluation ``cfg`` describes (see ``evaluate``)."""
    from cdvkit.evaluation import check_eval_models, resolve_defense, save_evaluation
    from cdvkit.evaluation import evaluate as evaluate_sets
    from cdvkit.evaluation.inputs import check_something_to_ask, read_inputs
    from cdvkit.models.budget import Budget

    hooks = hooks or EvalHooks()
    cfg.require_inputs()
    models, runs, files = cfg.models, cfg.run, cfg.examples
    defenses = [resolve_defense(d) for d in cfg.defense]
    results_dir = cfg.out if cfg.out else (runs[0] if runs else default_eval_dir(files))
    # Every input is read before anything is written: a malformed file leaves nothing behind.
    inputs = read_inputs(
        runs,
        [parse_examples_arg(f) for f in files],
        data=cfg.data,
        preset=cfg.preset,
        extractor=cfg.extractor,
        protocol=cfg.protocol,
        samples=cfg.samples,
        temperature=cfg.temperature,
        target_prompt=cfg.target_prompt,
        threshold=cfg.threshold,
        all_examples=cfg.all_examples,
        resamples=cfg.bootstrap,
        seed=cfg.seed,
        concurrency=cfg.concurrency,
        order_control=cfg.order_control,
        by=cfg.by,
    )
    sets, settings, extractor = inputs.sets, inputs.settings, inputs.extractor
    hooks.loaded(sets)
    check_something_to_ask(sets)
    ext_model: Model | None = None
    grader_model: Model | None = None
    grader, base_url = cfg.grader, cfg.base_url
    if backends is None:
        backends, ext_model, grader_model = asyncio.run(
            check_eval_models(models, extractor, base_url, cfg.concurrency, grader)
        )
    if executor is not None and executor.distributed:
        backends, ext_model, grader_model = {}, None, None  # Ray workers build their own
    entries: list[EvaluationResult] = []
    with RunStore(results_dir) as store:
        hooks.starting(settings.protocol())
        store.on_failure = hooks.failure
        budget = Budget(cfg.max_calls, cfg.max_cost)
        for d in defenses:
            paid_before = store.paid_calls("evaluate")
            cost_before = store.total_cost("evaluate")
            with hooks.running(d) as on_progress:
                entry = asyncio.run(
                    evaluate_sets(
                        sets,
                        models,
                        store=store,
                        defense=d,
                        settings=settings,
                        budget=budget,
                        backends=backends,
                        extractor=ext_model or extractor,
                        grader=grader_model or grader,
                        base_url=base_url,
                        on_progress=on_progress,
                        executor=executor,
                    )
                )
            # This evaluation's own paid calls (the search's are the run summary's).
            entry["paid_calls"] = store.paid_calls("evaluate") - paid_before
            entry["cost"] = store.total_cost("evaluate") - cost_before
            save_evaluation(results_dir, entry)
            entries.append(entry)
    return EvaluationRun(results_dir, entries)
