"""Run a whole search: questions in parallel, every step in the run store, resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import Question
from cdvkit.executors.base import Executor, ExecutorUnavailableError
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import CallStore, RoleClient
from cdvkit.models.errors import BackendUnavailableError, ModelError
from cdvkit.models.registry import load_model
from cdvkit.search.config import GenerateConfig
from cdvkit.search.constraints import Constraint, LeakCheck, LengthRatio, LLMJudge
from cdvkit.search.engine import Searcher, SearchLimits
from cdvkit.search.goal import TargetGoal
from cdvkit.search.proposers import LLMProposer, Proposer, TemplateProposer
from cdvkit.search.strategies import make_strategy
from cdvkit.store import RunStore


class ConfigMismatchError(ValueError):
    pass


@dataclass
class Roles:
    target: RoleClient
    proposer: RoleClient | None
    judge: RoleClient | None
    extractor: RoleClient | None

    def all(self) -> list[RoleClient]:
        return [r for r in (self.target, self.proposer, self.judge, self.extractor) if r]


def build_roles(
    cfg: GenerateConfig,
    store: CallStore | None,
    budget: Budget,
    models: dict[str, Model] | None = None,
) -> Roles:
    """A client per role; ``models`` lets a caller (tests, the Python API) pass ready backends."""
    models = models or {}
    cache: dict[str, Model] = {}

    def get(role: str, spec: str | None) -> RoleClient | None:
        if spec is None or (role == "proposer" and spec == "template"):
            return None
        if role in models:
            model = models[role]
        elif spec in cache:
            model = cache[spec]  # one backend per model string: a local model is loaded once
        else:
            opts: dict[str, Any] = {"concurrency": cfg.model_concurrency}
            if spec.startswith(("openai/", "openai-compatible/")):
                # --base-url names an OpenAI-compatible server; other providers keep their own.
                opts["base_url"] = cfg.base_url
            opts.update(cfg.roles.get(role, {}))
            model = cache[spec] = load_model(spec, **opts)
        return RoleClient(model, role, store=store, budget=budget)

    target = get("target", cfg.target)
    assert target is not None
    return Roles(
        target,
        get("proposer", cfg.proposer),
        get("judge", cfg.judge),
        get("extractor", cfg.extractor),
    )


def build_searcher(cfg: GenerateConfig, roles: Roles, store: Any | None) -> Searcher:
    """The search of one question; ``store`` is the run store or a worker's EventRecorder."""
    proposer: Proposer = (
        LLMProposer(roles.proposer, temperature=cfg.proposer_temperature, batch=cfg.proposer_batch)
        if roles.proposer
        else TemplateProposer()
    )
    constraints: list[Constraint] = [LengthRatio(cfg.length_ratio)]
    if cfg.leak_check:
        constraints.append(LeakCheck())
    if cfg.similarity_floor > 0:
        from cdvkit.search.constraints import SemanticSimilarity

        try:
            from cdvkit.models.embed_backend import get_embedder
        except ImportError as exc:
            raise BackendUnavailableError(
                "the similarity constraint needs sentence-transformers: "
                "pip install 'cdvkit[local]', or pass --similarity-floor 0"
            ) from exc
        constraints.append(SemanticSimilarity(get_embedder(), cfg.similarity_floor))
    if roles.judge:
        constraints.append(LLMJudge(roles.judge))
    goal = TargetGoal(
        roles.target,
        samples=cfg.samples,
        temperature=cfg.temperature,
        scoring=cfg.scoring,
        threshold=cfg.threshold,
        extractor=roles.extractor,
        sequential=cfg.sequential,
        always_extract=cfg.always_extract,
        batch_samples=cfg.batch_samples,
    )
    return Searcher(
        proposer=proposer,
        constraints=constraints,
        goal=goal,
        strategy_factory=lambda: make_strategy(cfg.strategy, k=cfg.k, n=cfg.n),
        limits=SearchLimits(cfg.max_expansions, cfg.max_good, cfg.max_depth),
        seed=cfg.seed,
        store=store,
        judge_last=cfg.judge_last,
    )


@dataclass
class RunOutcome:
    stopped: str | None = None  # why the run ended early, if it did
    fatal: str | None = None
    errors: list[str] = field(default_factory=list)


def prepare_store(
    store: RunStore, cfg: GenerateConfig, load: Callable[[], list[Question]]
) -> list[Question]:
    """Record config and questions on a new run; on an existing one, check it is the same run."""
    stored = store.get_config()
    if stored is not None:
        diff = cfg.differences(stored)
        if diff:
            detail = ", ".join(f"{k}: stored {stored[k]!r}, now {getattr(cfg, k)!r}" for k in diff)
            raise ConfigMismatchError(
                f"{store.run_dir} holds a run with other settings ({detail}); "
                "use a new --run-dir, or the same settings to resume"
            )
        return [d["question"] for d in store.questions()]
    questions = load()
    store.add_questions(questions)
    store.set_config(cfg.to_dict())
    return questions


async def run_search(
    cfg: GenerateConfig,
    store: RunStore,
    *,
    models: dict[str, Model] | None = None,
    on_question_done: Callable[[str, str], None] | None = None,
    executor: Executor | None = None,
) -> RunOutcome:
    """Search every unfinished question of ``store``; ``executor`` decides where (default: here).

    Whatever the executor, this process is the only writer of ``store``.
    """
    from cdvkit.executors import LocalExecutor

    executor = executor or LocalExecutor()
    outcome = RunOutcome()
    try:
        try:
            await executor.open(cfg, store, models)
        except (ValueError, ModelError, ExecutorUnavailableError) as exc:
            # A model (or worker) that cannot be built stops the run before anything is paid.
            outcome.fatal = str(exc)
            return outcome
        if cfg.prefilter:
            try:
                from cdvkit.prefilter import skip_in_store

                skip_in_store(store, cfg.prefilter, cfg.prefilter_threshold)
            except (ImportError, OSError, ValueError) as exc:
                outcome.fatal = f"prefilter: {exc}"
                return outcome
        todo = [
            d["question"]
            for d in store.questions()
            if d["status"] in ("pending", "running", "incomplete", "failed")
        ]
        await executor.run(todo, store, outcome, on_question_done)
    finally:
        await executor.aclose()
    return outcome


def summarize(store: RunStore) -> dict[str, Any]:
    """The run's summary, computed from the store's rows alone so both always agree."""
    qs = store.questions()
    by_status: dict[str, int] = {}
    for d in qs:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    examples = list(store.examples())
    with_example = len({e["question_id"] for e in examples})
    correct = by_status.get("done", 0)
    usage = store.usage_by_role()
    calls = store.paid_calls()
    return {
        "questions": len(qs),
        "searched": correct + by_status.get("original_failed", 0),
        "originally_correct": correct,
        "originally_failed": by_status.get("original_failed", 0),
        "with_example": with_example,
        "examples": len(examples),
        "success_rate": (with_example / correct) if correct else 0.0,
        "failed": by_status.get("failed", 0),
        "skipped": by_status.get("skipped", 0),  # by the enhanceability prefilter
        "unfinished": sum(by_status.get(s, 0) for s in ("pending", "running", "incomplete")),
        "calls": calls,
        "cost": store.total_cost(),
        "calls_per_example": (calls / len(examples)) if examples else None,
        "failures": len(store.failures()),
        "by_role": usage,
    }
