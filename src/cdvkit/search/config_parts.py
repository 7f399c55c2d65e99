"""The checks of a search's settings that name parts: roles, strategy, proposer, constraints (and
the options their specs give, against what each part declares) and model strings, each against
its registry (imported here, so the registries' modules need not import the settings back).

A part that calls a model under a role of its own declares it (``roles=("critic",)``); the run
names its model with ``--role critic=provider/model`` (the ``role`` setting) and its backend
options under ``[roles.critic]``, as the built-in roles'."""

from __future__ import annotations

from typing import Any

from cdvkit.allowed import SettingError
from cdvkit.models.registry import check_role_options, is_model, split_spec
from cdvkit.registry import Registry, parse_spec
from cdvkit.search.constraints import CONSTRAINTS
from cdvkit.search.goals_multi import target_roles
from cdvkit.search.proposers import PROPOSERS

ROLE_NAMES = ("target", "proposer", "judge", "extractor", "grader")
# ``--judge target``: the target model judges its own distractions, as the paper's code does.
JUDGE_IS_TARGET = "target"
# The proposers whose ``temperature`` --proposer-temperature sets.
REWRITE_AND_LLM = ("llm", "paraphrase-long", "background")


def part_specs(cfg: Any) -> list[tuple[Registry[Any], str, dict[str, Any]]]:
    """The parts a run of ``cfg`` names itself (its proposer and ``--constraint`` specs), each
    as (registry, name, the options its spec gives); a model string is the ``llm`` proposer."""
    proposer = ("llm", {"model": cfg.proposer}) if is_model(cfg.proposer) else None
    out = [(PROPOSERS, *(proposer or parse_spec(cfg.proposer)))]
    return out + [(CONSTRAINTS, *parse_spec(str(spec))) for spec in cfg.constraints]


def part_roles(cfg: Any) -> dict[str, str]:
    """The roles the parts of a run of ``cfg`` declare, each with the part that calls it."""
    return {
        role: f"{registry.kind} {name!r}"
        for registry, name, _ in part_specs(cfg)
        if name in registry
        for role in registry.entry(name).roles
    }


def check_part_roles(cfg: Any) -> None:
    """Each role a part declares has its model (``--role ROLE=provider/model``), and each
    ``--role`` names a role a part of this run declares."""
    if not isinstance(cfg.role, dict):
        raise ValueError("role must be a table of ROLE = provider/model, e.g. critic=openai/gpt-4o")
    declared = part_roles(cfg)
    for role, who in declared.items():
        if role in ROLE_NAMES:
            raise SettingError(f"{who} declares the role {role!r}, which the run fills itself")
        if role not in cfg.role:
            raise SettingError(f"{who} calls a {role} model: pass --role {role}=provider/model")
    for role, model in cfg.role.items():
        if role not in declared:
            calls = ", ".join(declared) or "none"
            raise SettingError(
                f"--role {role}: no part of this run calls a {role} model (roles called: {calls})"
            )
        try:
            split_spec(str(model))
        except ValueError as exc:
            raise ValueError(f"--role {role}: {exc}") from None


def check_parts(cfg: Any) -> None:
    """Raise ValueError naming the first setting of ``cfg`` (a SearchConfig) that names no
    known part, role or model string."""
    where = (
        "under [roles.target], [roles.proposer], [roles.judge], [roles.extractor] or [roles.grader]"
    )
    if not isinstance(cfg.roles, dict):
        raise ValueError(f"roles: per-role options go {where}")
    targets = target_roles(cfg.targets)
    own = part_roles(cfg) if isinstance(cfg.constraints, list) else {}
    for role, opts in cfg.roles.items():
        # A typo here would silently drop the options, the role's API key among them.
        if role not in ROLE_NAMES and role not in own and role not in (r for r, _, _ in targets):
            raise ValueError(f"roles: unknown role {role!r}; per-role options go {where}")
        if not isinstance(opts, dict):
            raise ValueError(f"roles.{role} must be a table of options, e.g. [roles.{role}]")
    if not is_model(cfg.proposer) and parse_spec(cfg.proposer)[0] not in PROPOSERS:
        raise ValueError(
            f"--proposer {cfg.proposer!r}: not a provider/model nor a registered proposer "
            f"({', '.join(PROPOSERS)})"
        )
    if not isinstance(cfg.constraints, list):
        raise ValueError("constraints must be a list of names, e.g. ['judge:model=...']")
    for spec in cfg.constraints:
        if parse_spec(str(spec))[0] not in CONSTRAINTS:
            raise ValueError(
                f"--constraint {spec!r}: unknown (registered: {', '.join(CONSTRAINTS)})"
            )
    # Each spec's options against what its part declares: a typo or a bad value is one line.
    for registry, name, given in part_specs(cfg):
        registry.settings(name, given)
    check_part_roles(cfg)
    models = [(r, spec) for r, _, spec in targets]
    models += [(role, getattr(cfg, role)) for role in ("extractor", "grader")]
    if cfg.judge != JUDGE_IS_TARGET:
        models.append(("judge", cfg.judge))
    if is_model(cfg.proposer):
        models.append(("proposer", cfg.proposer))
    for role, spec in models:
        if spec is not None:
            try:
                split_spec(spec)
            except ValueError as exc:
                raise ValueError(f"--{role}: {exc}") from None
    specs = role_specs(cfg)
    for role, opts in cfg.roles.items():
        check_role_options(role, opts, specs.get(role, ()))


def role_specs(cfg: Any) -> dict[str, set[str]]:
    """The models each role calls in a run of ``cfg``, which its ``[roles.<role>]`` options
    reach (as cdvkit.search.build.role_models and the parts' own ``model=`` options name them)."""
    out: dict[str, set[str]] = {role: {spec} for role, _, spec in target_roles(cfg.targets)}
    named = [("judge", cfg.judge_model), ("extractor", cfg.extractor), ("grader", cfg.grader)]
    if is_model(cfg.proposer):
        named.append(("proposer", cfg.proposer))
    else:
        named.append(("proposer", parse_spec(cfg.proposer)[1].get("model")))
    for spec in cfg.constraints:
        name, opts = parse_spec(str(spec))
        named.append((name, opts.get("model")))
    for role, model in named:
        if model == JUDGE_IS_TARGET:
            model = cfg.targets[0]
        if role in ROLE_NAMES and isinstance(model, str) and is_model(model):
            out.setdefault(role, set()).add(model)
    for role, model in cfg.role.items():  # a part's own roles (--role ROLE=provider/model)
        out.setdefault(role, set()).add(model)
    return out
