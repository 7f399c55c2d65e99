"""Build a search from its settings: a client per role, then the searcher of one question.

Executors call this wherever they run (this process, or each Ray worker), so the search is built
the same way everywhere; it knows nothing of where it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import CallStore, RoleClient
from cdvkit.models.errors import BackendUnavailableError
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.models.registry import load_model
from cdvkit.search.config import GenerateConfig
from cdvkit.search.constraints import Constraint, LeakCheck, LengthRatio, LLMJudge
from cdvkit.search.engine import Searcher, SearchLimits
from cdvkit.search.goal import TargetGoal
from cdvkit.search.proposers import LLMProposer, Proposer, TemplateProposer
from cdvkit.search.strategies import make_strategy


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
