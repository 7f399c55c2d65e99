"""Run a whole search: questions in parallel, every step in the run store, resumable."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import Question
from cdvkit.executors.base import Executor, ExecutorUnavailableError
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import CallStore, RoleClient
from cdvkit.models.errors import BackendUnavailableError, ModelError
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.models.registry import load_model
from cdvkit.protocol import protocol_from_config
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
    # The target again, for the protocol's confirmations (originals and candidates), so their
    # cost shows on a line of its own.
    verify: RoleClient | None = None

    def all(self) -> list[RoleClient]:
        return [r for r in (self.target, self.proposer, self.judge, self.extractor) if r]


ROLES = ("target", "proposer", "judge", "extractor")


def _role_specs(cfg: GenerateConfig) -> dict[str, str]:
    specs = {role: getattr(cfg, role) for role in ROLES}
    return {
        role: spec
        for role, spec in specs.items()
        if spec is not None and not (role == "proposer" and spec == "template")
    }


def _load_role_model(cfg: GenerateConfig, role: str, spec: str) -> Model:
    opts: dict[str, Any] = {"concurrency": cfg.model_concurrency}
    if spec.startswith(("openai/", "openai-compatible/")):
        # --base-url names an OpenAI-compatible server; other providers keep their own.
        opts["base_url"] = cfg.base_url
    opts.update(cfg.roles.get(role, {}))
    return load_model(spec, **opts)


async def check_models(cfg: GenerateConfig) -> dict[str, Model]:
    """Build every role's backend and check it once (key, server, model name) before anything
    is paid or written; returns them by role for ``run_search(models=...)``.

    Raises PreflightError naming the role, the model and what to fix.
    """
    return await preflight(
        [
            Wanted(
                role,
                role,
                spec,
                (spec, repr(sorted(cfg.roles.get(role, {}).items()))),
                lambda role=role, spec=spec: _load_role_model(cfg, role, spec),
            )
            for role, spec in _role_specs(cfg).items()
        ]
    )


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
            model = cache[spec] = _load_role_model(cfg, role, spec)
        return RoleClient(model, role, store=store, budget=budget)

    target = get("target", cfg.target)
    assert target is not None
    return Roles(
        target,
        get("proposer", cfg.proposer),
        get("judge", cfg.judge),
        get("extractor", cfg.extractor),
        RoleClient(target.model, "verify", store=store, budget=budget),
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
        protocol=cfg.protocol_spec(),
        scoring=cfg.scoring,
        extractor=roles.extractor,
        verifier=roles.verify,
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
        todo = [d["question"] for d in store.questions() if d["status"] in UNFINISHED]
        await executor.run(todo, store, outcome, on_question_done)
    finally:
        await executor.aclose()
    return outcome


# Statuses of a question that is not a result yet: a rerun searches it (again).
UNFINISHED = ("pending", "running", "incomplete", "failed")


def failure_reason(error: str) -> str:
    """A failure's reason without what differs between occurrences (ids, counts, timings), so
    the same fault on many calls is listed once with its count."""
    text = re.sub(r"\b[0-9a-f]{8,}\b", "…", error)
    text = re.sub(r"\d+(\.\d+)?s\b", "Ns", text)
    return text[:200]


def failures_by_reason(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed requests grouped by kind, role, model and reason, most frequent first."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["kind"], r["role"], failure_reason(r["error"]))
        g = groups.setdefault(
            key, {"kind": key[0], "role": key[1], "reason": key[2], "count": 0, "questions": set()}
        )
        g["count"] += 1
        if r.get("question_id"):
            g["questions"].add(r["question_id"])
    out = sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["role"]))
    return [{**g, "questions": len(g["questions"])} for g in out]


def summarize(store: RunStore) -> dict[str, Any]:
    """The run's summary, computed from the store's rows alone so both always agree.

    Only the search's own calls are counted here (``cdv evaluate`` reports its calls itself).
    ``requests_failed`` counts every request that brought no usable answer (refused, failed and
    retried, failed for good): with ``calls`` it adds up to every request sent.
    """
    qs = store.questions()
    by_status: dict[str, int] = {}
    for d in qs:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    examples = list(store.examples())
    with_example = len({e["question_id"] for e in examples})
    correct = by_status.get("done", 0)
    usage = store.usage_by_role("search")
    calls = store.paid_calls("search")
    failures = store.failures("search")
    verified = [n["verified"] for n in store.nodes() if n.get("verified") is not None]
    incomplete = sum(by_status.get(s, 0) for s in ("running", "incomplete", "failed"))
    config = store.get_config() or {}
    try:
        protocol = protocol_from_config(config).describe() if config else None
    except (TypeError, ValueError):  # a stored config this version cannot read
        protocol = None
    return {
        "questions": len(qs),
        "searched": correct + by_status.get("original_failed", 0),
        "originally_correct": correct,
        "originally_failed": by_status.get("original_failed", 0),
        "with_example": with_example,
        "examples": len(examples),
        "success_rate": (with_example / correct) if correct else 0.0,
        "candidates": len(verified),
        "verified": sum(verified),
        "rejected_by_verification": len(verified) - sum(verified),
        "incomplete": incomplete,
        "pending": by_status.get("pending", 0),
        "skipped": by_status.get("skipped", 0),  # by the enhanceability prefilter
        "unfinished": incomplete + by_status.get("pending", 0),
        "calls": calls,
        "requests_failed": len(failures),
        "cost": store.total_cost("search"),
        "calls_per_example": (calls / len(examples)) if examples else None,
        "failures": failures_by_reason(failures),
        "by_role": usage,
        "protocol": protocol,
    }
