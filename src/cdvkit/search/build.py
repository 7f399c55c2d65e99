"""Build a search from its settings: a client per role, then the searcher of one question.

Executors call this wherever they run (this process, or each Ray worker), so the search is built
the same way everywhere; it knows nothing of where it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.models.client import CallStore, RoleClient
from cdvkit.models.preflight import Wanted, preflight
from cdvkit.models.registry import is_model, load_backend
from cdvkit.registry import Registry, parse_spec
from cdvkit.search.config import SearchConfig
from cdvkit.search.constraints import CONSTRAINTS, Constraint
from cdvkit.search.context import BuildContext
from cdvkit.search.engine import Searcher, SearchLimits
from cdvkit.search.goal import Goal, TargetGoal
from cdvkit.search.goals_multi import MultiTargetGoal, required_targets, target_roles
from cdvkit.search.proposers import PROPOSERS, Proposer, rewrites
from cdvkit.search.strategies import make_strategy


@dataclass
class Roles:
    target: RoleClient
    proposer: RoleClient | None
    judge: RoleClient | None
    extractor: RoleClient | None
    grader: RoleClient | None = None
    # The target again, for the protocol's confirmations (originals and candidates), so their
    # cost shows on a line of its own.
    verify: RoleClient | None = None
    # The second and further targets of a multi-target run, each with its confirmation client
    # (the same model under its own role): (target2, verify2), (target3, verify3)...
    more_targets: list[tuple[RoleClient, RoleClient]] = field(default_factory=list)
    # Builds the client of any other (role, model) a registered part asks for, once each.
    make: Callable[[str, str], RoleClient] | None = None
    others: dict[tuple[str, str], RoleClient] = field(default_factory=dict)

    def client(self, role: str, spec: str) -> RoleClient:
        """The client a part uses for ``spec`` under ``role`` (the role's own when it matches)."""
        known = getattr(self, role, None) if role in ROLES else None
        if isinstance(known, RoleClient) and known.model.name == spec:
            return known
        if (role, spec) not in self.others:
            if self.make is None:
                raise ValueError(f"no client for the {role} model {spec}")
            self.others[(role, spec)] = self.make(role, spec)
        return self.others[(role, spec)]

    def all(self) -> list[RoleClient]:
        fixed = [
            r for r in (self.target, self.proposer, self.judge, self.extractor, self.grader) if r
        ]
        return fixed + [t for t, _ in self.more_targets] + list(self.others.values())


ROLES = ("target", "proposer", "judge", "extractor", "grader")


def proposer_spec(cfg: SearchConfig) -> tuple[str, dict[str, Any]]:
    """The proposer as (registered name, options); a model string is the ``llm`` proposer."""
    if is_model(cfg.proposer):
        return "llm", {"model": cfg.proposer}
    return parse_spec(cfg.proposer)


def constraint_specs(cfg: SearchConfig) -> list[tuple[str, dict[str, Any]]]:
    """The constraints a run applies: the built-in checks its settings turn on, then any given
    by name (``--constraint NAME:key=value``), in that order. A spec naming a constraint the run
    applies already sets that one's options (``similarity:floor=0.6``) instead of adding a
    second, unless it names another model (a second judge)."""
    # A rewrite baseline lengthens the question on purpose (about tenfold), which the length
    # and similarity checks exist to stop; the paper applies neither to its baselines.
    baseline = rewrites(cfg.proposer)
    specs: list[tuple[str, dict[str, Any]]] = [] if baseline else [("length", {})]
    if cfg.leak_check:
        specs.append(("leak", {}))
    if cfg.similarity_floor > 0 and not baseline:
        specs.append(("similarity", {}))
    if cfg.judge:
        specs.append(("judge", {}))
    for name, opts in (parse_spec(str(s)) for s in cfg.constraints):
        same = next(
            (
                o
                for n, o in specs
                if n == name and opts.get("model", o.get("model")) == o.get("model")
            ),
            None,
        )
        if same is None:
            specs.append((name, dict(opts)))
        else:
            same.update(opts)
    return specs


def shorthands(cfg: SearchConfig, kind: str, name: str) -> dict[str, Any]:
    """The options of the ``kind`` part ``name`` that settings of ``cfg`` are shorthands for
    (``similarity_floor`` for the similarity constraint's ``floor``; see search.setting)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        part = f.metadata.get("part")
        if part is not None and part[0] == kind and name in part[1]:
            out[part[2]] = getattr(cfg, f.name)
    return out


def part_options(
    cfg: SearchConfig, registry: Registry[Any], name: str, given: dict[str, Any]
) -> dict[str, Any]:
    """The options the part ``name`` is built with: its spec's over the run's shorthands for
    them over its declared defaults (checked; a part that declares nothing gets its spec's)."""
    return registry.settings(name, given, over=shorthands(cfg, registry.kind, name))


def proposer_style(cfg: SearchConfig) -> tuple[bool, str]:
    """Whether the run's proposer writes every wrong option's sentence in one call, and its
    template (``standard`` or ``paper``), as the ``llm`` proposer is built with them (a spec's
    ``llm:batch=...,prompt=...`` over the shorthands); the settings' own for any other."""
    name, given = proposer_spec(cfg)
    if name != "llm":
        return cfg.proposer_batch, cfg.proposer_prompt
    options = part_options(cfg, PROPOSERS, name, given)
    prompt = options.get("prompt") or cfg.proposer_prompt
    # The paper's template writes for one option at a time: it has no batched form.
    return bool(options.get("batch", cfg.proposer_batch)) and prompt != "paper", prompt


def role_models(cfg: SearchConfig) -> dict[str, str]:
    """Every model the run will call, by the role it is paid under."""
    out = {role: spec for role, _, spec in target_roles(cfg.targets)}
    _, options = proposer_spec(cfg)
    if isinstance(options.get("model"), str):
        out["proposer"] = options["model"]
    for name, opts in constraint_specs(cfg):
        model = opts.get("model") or (cfg.judge_model if name == "judge" else None)
        if model == "target":
            model = cfg.targets[0]
        if isinstance(model, str):
            out.setdefault(name, model)
    if cfg.extractor:
        out["extractor"] = cfg.extractor
    if cfg.grader:
        out["grader"] = cfg.grader
    # The roles registered parts declare and call, with the models --role names for them.
    return out | {role: model for role, model in cfg.role.items() if role not in out}


def load_role_model(cfg: SearchConfig, role: str, spec: str, **defaults: Any) -> Model:
    """The backend of ``role``'s model ``spec``, with the run's options (``defaults`` yield to
    them); nothing is sent."""
    options = {**defaults, **cfg.roles.get(role, {})}
    return load_backend(
        spec, concurrency=cfg.model_concurrency, base_url=cfg.base_url, options=options
    )


async def check_models(cfg: SearchConfig) -> dict[str, Model]:
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
                lambda role=role, spec=spec: load_role_model(cfg, role, spec),
            )
            for role, spec in role_models(cfg).items()
        ]
    )


def build_roles(
    cfg: SearchConfig,
    store: CallStore | None,
    budget: Budget,
    models: dict[str, Model] | None = None,
) -> Roles:
    """A client per role; ``models`` lets a caller (tests, the Python API) pass ready backends."""
    models = models or {}
    cache: dict[str, Model] = {}
    wanted = role_models(cfg)

    def make(role: str, spec: str) -> RoleClient:
        if role in models and wanted.get(role) == spec:
            model = models[role]
        elif spec in cache:
            model = cache[spec]  # one backend per model string: a local model is loaded once
        else:
            model = cache[spec] = load_role_model(cfg, role, spec)
        return RoleClient(model, role, store=store, budget=budget)

    def get(role: str) -> RoleClient | None:
        return make(role, wanted[role]) if role in wanted else None

    target = get("target")
    assert target is not None
    more = []
    for role, verify, _ in target_roles(cfg.targets)[1:]:
        client = get(role)
        assert client is not None
        more.append((client, RoleClient(client.model, verify, store=store, budget=budget)))
    return Roles(
        target,
        get("proposer"),
        get("judge"),
        get("extractor"),
        get("grader"),
        RoleClient(target.model, "verify", store=store, budget=budget),
        more_targets=more,
        make=make,
    )


def build_goal(cfg: SearchConfig, roles: Roles) -> Goal:
    """The target goal, or with several targets one goal over all of them (each target asked
    under the run's protocol through its own clients)."""

    def one(target: RoleClient, verify: RoleClient | None) -> TargetGoal:
        return TargetGoal(
            target,
            protocol=cfg.protocol_spec(),
            scoring=cfg.scoring,
            extractor=roles.extractor,
            verifier=verify,
            grader=roles.grader,
        )

    first = one(roles.target, roles.verify)
    if not roles.more_targets:
        return first
    goals = {roles.target.name: first} | {t.name: one(t, v) for t, v in roles.more_targets}
    return MultiTargetGoal(goals, required_targets(cfg.fool, len(goals)))


def build_searcher(cfg: SearchConfig, roles: Roles, store: Any | None) -> Searcher:
    """The search of one question; ``store`` is the run store or a worker's EventRecorder."""
    ctx = BuildContext(cfg, roles.client)
    name, options = proposer_spec(cfg)
    proposer: Proposer = PROPOSERS.get(name)(ctx, **part_options(cfg, PROPOSERS, name, options))
    constraints: list[Constraint] = [
        CONSTRAINTS.get(name)(ctx, **part_options(cfg, CONSTRAINTS, name, opts))
        for name, opts in constraint_specs(cfg)
    ]
    return Searcher(
        proposer=proposer,
        constraints=constraints,
        goal=build_goal(cfg, roles),  # type: ignore[arg-type]  # the engine takes any Goal
        strategy_factory=lambda: make_strategy(cfg.strategy, k=cfg.k, n=cfg.n),
        limits=SearchLimits(cfg.max_expansions, cfg.max_good, cfg.max_depth),
        seed=cfg.seed,
        store=store,
        judge_last=cfg.judge_last,
        wrong_answers=cfg.wrong_answers,
        proposals=cfg.proposals,
        choice_order=cfg.choice_order,
    )
