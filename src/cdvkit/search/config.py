"""The settings of a search run (`cdv generate`): defaults < preset < config file < command line.

Named SearchConfig, not after the command, to keep it apart from GenerateRequest (one request to
a model).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cdvkit.allowed import SettingError, Shape, check_fields, check_values, declared
from cdvkit.prompts import JUDGE_PROMPTS, PROPOSER_PROMPTS, TARGET_PROMPTS
from cdvkit.prompts.templates import PromptSet
from cdvkit.protocol import (
    NEAR_GREEDY,
    SCORINGS,
    Protocol,
    prompts_from_config,
    protocol_from_config,
)
from cdvkit.search.config_files import load_toml, parse_max_tokens, parse_role_models
from cdvkit.search.config_parts import JUDGE_IS_TARGET, REWRITE_AND_LLM, check_parts
from cdvkit.search.constraints import CONSTRAINTS
from cdvkit.search.goals_multi import check_targets
from cdvkit.search.preset import PRESETS
from cdvkit.search.proposers import PROPOSERS
from cdvkit.search.setting import TEMPERATURE, setting, shorthand, task_key
from cdvkit.search.strategies import STRATEGIES
from cdvkit.tasks import shape_names

DEFAULT_TARGET = "embed/all-MiniLM-L6-v2"
CHOICE_ORDERS = ("keep", "shuffle")
# Settings read into another form before they are checked: a prompts file's path into its
# content, --max-tokens items into a table (their own checks name them); and the role tables,
# which check_parts reads option by option (never quoting a value: it may be a key); --fool read
# as text (a TOML 2 is "2") and checked against the number of targets (goals_multi).
CONVERTED = ("prompts", "max_tokens", "roles", "fool", "role")
# Role options that hold a credential: they reach the backend, never the run store or a report.
SECRET_OPTIONS = frozenset({"api_key"})


def option_name(name: str) -> str:
    """A setting's `cdv generate` option as typed (``--judge-last``, ``--constraint``)."""
    spelled = next((f.metadata.get("flag") for f in fields(SearchConfig) if f.name == name), None)
    return str(spelled).split("/")[0] if spelled else "--" + name.replace("_", "-")


@dataclass
class SearchConfig:
    preset: str | None = setting(
        None,
        "A recipe of settings: efficient (cheap, the defaults) | paper (the paper's procedure, "
        "to reproduce its numbers) | reference (the paper code's call pattern, to compare cost).",
        choices=lambda: tuple(PRESETS),
    )
    data: str = setting("sample", "Built-in dataset name, 'sample' (default), or a file.")
    split: str | None = setting(None, "Dataset split (built-ins).")
    limit: int | None = setting(None, "Seeded sample of N questions.", min=1)
    seed: int = setting(0, "Random seed.", min=0)
    skip_invalid: bool = setting(False, "Skip and report bad rows.", flag="--skip-invalid")
    strict: bool = setting(False, "Repeated choices are an error, not collapsed.", flag="--strict")
    task: str = setting(
        "auto",
        "Task shape: auto (from the data) | multiple_choice | numeric | short_answer | a "
        "plugin's (cdv parts lists them).",
        choices=lambda: ("auto", *shape_names()),
        fold=task_key,
    )
    # roles
    # One target is a plain string (as every run stored before several existed), several a list.
    target: str | list[str] = setting(  # noqa: RUF009 - a field, via setting()
        DEFAULT_TARGET,
        "Model under attack (provider/model); repeat it to fool several at once (--fool).",
        cli=list[str],
    )
    fool: str | int = setting(
        "all", "With several targets, an example fools: all | any | K of them.", cli=str
    )
    # A registered proposer ("template", "llm:model=...,temperature=0.9") or a provider/model
    # string (the LLM proposer with that model).
    proposer: str = setting(
        "template",
        "A provider/model that writes distractions, or a registered proposer with options, "
        "e.g. llm:model=openai/gpt-4o,temperature=0.9 (cdv parts lists them).",
    )
    judge: str | None = setting(
        None,
        "provider/model for the LLM judge, or 'target' (the target model judges, as in the "
        "paper); default: local checks only.",
    )
    extractor: str | None = setting(
        None, "provider/model mapping replies the reader cannot decide to a choice."
    )
    grader: str | None = setting(
        None,
        "provider/model deciding free-form answers the readers cannot settle (short answers "
        "that match no alias, replies with no readable answer).",
    )
    base_url: str | None = setting(None, "Base URL of an OpenAI-compatible server.")
    # The models of the roles a registered part calls beyond these (cdvkit.search.config_parts).
    role: dict[str, str] = setting(  # noqa: RUF009 - a dataclasses.field, via setting()
        help="ROLE=provider/model for a role a part calls (repeatable), e.g. critic=openai/gpt-4o.",
        flag="--role",
        cli=list[str],
        default_factory=dict,
    )
    # Per-role backend options; in the config file or with --set roles.ROLE.OPTION=VALUE.
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The protocol (cdvkit.protocol): how the target is asked and when it counts as fooled.
    protocol: str = setting(
        "sample",
        "When the target counts as right/fooled: sample (n step-by-step answers, fooled when "
        "none is right) | exact (the most likely choice).",
        choices=SCORINGS,
    )
    samples: int = setting(5, "Protocol: answers per question (n).", min=1)
    temperature: float = setting(
        NEAR_GREEDY, "Protocol: sampling temperature.", allowed=TEMPERATURE
    )
    target_prompt: str = setting(
        "letter",
        "letter (lettered choices) | paper (the paper's: choices as a list, answer by text; "
        "its extractor reads a JSON reply naming the choice).",
        choices=TARGET_PROMPTS,
    )
    proposer_prompt: str = setting(
        "standard",
        "The LLM proposer's template: standard (sees the choices and the answer) | paper (sees "
        "only the question and one wrong option, as the paper's code).",
        choices=PROPOSER_PROMPTS,
    )
    judge_prompt: str = setting(
        "standard",
        "The LLM judge's template: standard (sees the choices and the answer) | paper (sees only "
        "the original and the distracted question).",
        choices=JUDGE_PROMPTS,
    )
    # A prompts file's content (cdvkit.prompts.templates): recorded in the run, so a resume
    # asks every model exactly as the run began.
    prompts: dict[str, dict[str, Any]] | None = setting(  # noqa: RUF009 - a field, via setting()
        None,
        "A TOML file replacing any role's template and how its reply is read (cdv prompts "
        "prints those in effect).",
        cli=Path,
    )
    max_tokens: dict[str, int] = setting(  # noqa: RUF009 - a dataclasses.field, via setting()
        help="Longest reply of a role, ROLE=N (repeatable; N alone: the target). Defaults: "
        "target 4096, the others their template's.",
        cli=list[str],
        default_factory=dict,
    )
    choice_order: str = setting(
        "keep",
        "A child's choices: keep (the parent's order, so a drop is the distraction's alone) | "
        "shuffle (the paper's).",
        choices=CHOICE_ORDERS,
    )
    threshold: float | None = setting(
        None, "Exact scoring: fooled only when P(correct) is also below this.", above=0, max=1
    )
    # The search's own, cheaper score; every example is confirmed under the protocol.
    scoring: str = setting(
        "auto",
        "The search's cheaper guide: auto (choice probabilities where the model gives them) | "
        "sample | exact. Examples are always confirmed under the protocol.",
        choices=("auto", *SCORINGS),
    )
    sequential: bool = setting(
        False,
        "Stop sampling a node at its first right answer.",
        flag="--sequential/--no-sequential",
    )
    batch_samples: bool = setting(
        True,
        "n samples in one request (default), or one request each (the reference's).",
        flag="--batch-samples/--no-batch-samples",
    )
    always_extract: bool = setting(
        False,
        "Send every reply to the extractor (the reference's), not only undecided ones.",
        flag="--always-extract/--no-always-extract",
    )
    judge_last: bool = setting(
        True,
        "Ask the LLM judge only about examples and nodes to expand (default), or all.",
        flag="--judge-last/--no-judge-last",
    )
    # strategy and budgets
    strategy: str = setting(
        "best-first",
        "How the tree is searched (cdv parts lists them); reference: the preset.",
        # "reference" names the reference preset; from_sources turns it into that.
        choices=lambda: (*STRATEGIES, "reference"),
    )
    k: float = setting(2.0, "Best-first priority exp(K / score) * depth**-N: K.", min=0)
    n: float = setting(1.0, "Best-first priority exp(K / score) * depth**-N: N.", min=0)
    max_expansions: int = setting(10, "Expansions per question.", min=1)
    max_good: int = setting(3, "Stop a question after N examples.", min=1)
    max_depth: int = setting(5, "Most distractions stacked.", min=1)
    # 0 is a ceiling too: only what the store already holds is used (a free replay).
    max_calls: int | None = setting(None, "Run-wide ceiling on paid calls.", min=0)
    max_cost: float | None = setting(None, "Run-wide ceiling on cost (USD).", min=0)
    # constraints
    # Shorthands for the built-in parts' options, declared beside the parts (kept: stored runs
    # and config files name them); 0 leaves the similarity constraint out.
    length_ratio: float = shorthand(CONSTRAINTS, "length", "max_ratio")
    similarity_floor: float = shorthand(CONSTRAINTS, "similarity", "floor")
    leak_check: bool = setting(
        True,
        "Drop distractions that name the answer or label options (default).",
        flag="--leak-check/--no-leak-check",
    )
    constraints: list[str] = setting(  # noqa: RUF009 - a dataclasses.field, via setting()
        help="Another check a distraction must pass, by name with options (repeatable), e.g. "
        "judge:model=openai/gpt-4o (cdv parts lists them).",
        flag="--constraint",
        default_factory=list,
    )
    # enhanceability prefilter: questions with P(enhanceable) below the threshold are skipped
    prefilter: str | None = setting(
        None,
        "Skip hopeless questions: a model file from `cdv prefilter train`, or 'auto' (learn "
        "from this run's own outcomes as they arrive).",
    )
    prefilter_threshold: float = setting(
        0.3, "Skip questions with P(enhanceable) below this.", min=0, max=1
    )
    # --prefilter auto: searched in full before it first trains (a seeded random sample), then
    # questions searched between two retrainings. Both decide what is skipped, so neither may
    # change on resume (concurrency may: it is not what sizes a batch).
    prefilter_warmup: int = setting(
        30,
        "--prefilter auto: questions searched first, a seeded random sample, to learn from.",
        min=1,
    )
    prefilter_batch: int = setting(
        32,
        "--prefilter auto: questions searched, by predicted promise, between retrainings (or "
        "a quarter of those searched so far, once more).",
        min=1,
    )
    include_skipped: bool = setting(
        False,
        "Search the questions a prefilter skipped earlier in this run (paid calls are reused).",
        flag="--include-skipped",
    )
    proposer_temperature: float = shorthand(PROPOSERS, REWRITE_AND_LLM, "temperature")
    proposer_batch: bool = shorthand(
        PROPOSERS, "llm", "batch", flag="--proposer-batch/--no-proposer-batch"
    )
    wrong_answers: int = setting(
        3, "Free-form questions: wrong answers aimed at per expanded node.", min=1
    )
    proposals: int = setting(
        1,
        "Distractions written per wrong answer at each expansion, in rounds; a further round "
        "only while examples are still wanted (more: a wider tree, shorter examples).",
        min=1,
    )
    # throughput
    concurrency: int = setting(16, "Questions searched at once.", min=1)
    model_concurrency: int = setting(
        8, "Requests in flight per model (a role may set its own).", min=1
    )

    # Fields a resumed run may change without invalidating what is stored.
    RESUMABLE_CHANGES = frozenset(
        {
            "max_calls",
            "max_cost",
            "concurrency",
            "model_concurrency",
            "base_url",
            "roles",
            "include_skipped",
        }
    )

    def __post_init__(self) -> None:
        if isinstance(self.target, list | tuple):
            self.target = self.target[0] if len(self.target) == 1 else list(self.target)
        self.fool = str(self.fool).strip().lower()  # a TOML ``fool = 2`` is stored as "2"

    @property
    def targets(self) -> list[str]:
        """Every target, first (the one ``--judge target`` names) first."""
        return [self.target] if isinstance(self.target, str) else list(self.target)

    def to_dict(self) -> dict[str, Any]:
        """The settings as the run store keeps them: a key from the config file is masked."""
        d = asdict(self)
        d["roles"] = {
            role: (
                {k: "***" if k in SECRET_OPTIONS and v else v for k, v in opts.items()}
                if isinstance(opts, dict)
                else opts
            )
            for role, opts in d["roles"].items()
        }
        return d

    @classmethod
    def from_sources(cls, config_file: str | Path | None = None, **overrides: Any) -> SearchConfig:
        values: dict[str, Any] = {}
        if config_file is not None:
            from_file = load_toml(config_file)
            # Named as the file names them; CONVERTED ones are checked once they have their form.
            check_values(cls, from_file, lambda k: f"{config_file}: {k}", skip=CONVERTED)
            values.update(from_file)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        check_values(cls, overrides, str, skip=CONVERTED)
        if isinstance(values.get("roles"), dict) and isinstance(overrides.get("roles"), dict):
            # A role option given on the command line adds to the file's, role by role.
            roles = {r: dict(o) for r, o in values["roles"].items() if isinstance(o, dict)}
            for role, opts in overrides["roles"].items():
                roles[role] = {**roles.get(role, {}), **opts}
            overrides["roles"] = roles
        values.update(overrides)
        if values.get("strategy") == "reference":
            # `--strategy reference` names the reference implementation's whole call pattern,
            # which is more than a search order: it is the `reference` preset (best-first).
            if values.get("preset") not in (None, "reference"):
                raise ValueError("--strategy reference is the reference preset; drop --preset")
            del values["strategy"]
            values["preset"] = "reference"
        if values.get("preset") is not None:
            from cdvkit.search.preset import preset_values

            # A preset fills in what neither the config file nor the command line set.
            values = {**preset_values(values["preset"]), **values}
        if isinstance(values.get("prompts"), str | Path):
            from cdvkit.prompts.templates import load_prompts_file

            # The file's content is the setting: the run records it, not the path.
            values["prompts"] = load_prompts_file(values["prompts"])
        if isinstance(values.get("role"), list | tuple | str):
            values["role"] = parse_role_models(values["role"])
        if isinstance(values.get("max_tokens"), list | tuple):
            values["max_tokens"] = parse_max_tokens(values["max_tokens"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(unknown)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError (SettingError for a declared rule) naming the first bad setting."""
        # Every field's type, range and choices, as declared above: one rule per setting.
        check_fields(self, skip=("roles",))
        if self.strategy == "reference":
            raise SettingError(
                "strategy 'reference' is the reference preset: pass it to "
                "SearchConfig.from_sources, or use preset 'reference'"
            )
        self.prompt_set()  # raises PromptsError / ValueError naming a bad template or limit
        self.protocol_spec()  # the protocol's own checks (all declared here too)
        if self.preset == "paper" and not self.extractor:
            raise ValueError(
                "--preset paper has the extractor read every answer, as the paper's code does "
                "(it used gpt-4o-mini): pass --extractor provider/model"
            )
        check_targets(self.targets, self.fool)
        check_parts(self)

    def as_recorded_before(self, stored: dict[str, Any], free_form: bool) -> None:
        """Resume a run stored before a setting existed as it began: choices were shuffled, and
        the target's replies were capped at 512 tokens (768 for free-form questions), which its
        stored calls' keys hold. Settings the run recorded are compared, not filled in."""
        if "choice_order" not in stored:
            self.choice_order = "shuffle"
        if "max_tokens" not in stored:
            self.max_tokens = {"target": 768 if free_form else 512, **self.max_tokens}

    def protocol_spec(self) -> Protocol:
        """The protocol these settings define (see cdvkit.protocol)."""
        return protocol_from_config(self)

    def prompt_set(self) -> PromptSet:
        """The templates every role is asked with (cdvkit.prompts.templates)."""
        return prompts_from_config(self)

    @property
    def judge_model(self) -> str | None:
        """The judge's provider/model: the target's own when ``judge`` is 'target'."""
        return self.targets[0] if self.judge == JUDGE_IS_TARGET else self.judge

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Settings that differ from a stored run's and would make resuming it wrong."""
        mine = self.to_dict()
        return sorted(
            k
            for k in mine
            if k not in self.RESUMABLE_CHANGES and k in stored and stored[k] != mine[k]
        )


def check_options(values: dict[str, Any]) -> None:
    """Check `cdv generate`'s own options (settings by field name), naming a bad one as it was
    typed (``--temperature``); the command line's values are checked before any other's."""
    check_values(SearchConfig, values, option_name, skip=CONVERTED)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as settings: any field by name (``k=3``, ``leak-check=false``),
    role options by path (``roles.target.concurrency=64``); values read as JSON when they are
    (numbers, booleans, lists), else as text. Unknown keys are refused by ``from_sources``."""
    out: dict[str, Any] = {}
    names = {f.name: f for f in fields(SearchConfig)}
    shapes = {name: Shape.of(hint) for name, (hint, _) in declared(SearchConfig).items()}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: not KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        shape = shapes.get(key)
        if shape is not None and shape.types == (str,) and not isinstance(value, str):
            value = raw  # a text setting keeps what was typed (--set split=2021)
        path = key.split(".")
        if path[0] == "roles":
            if len(path) != 3:
                raise ValueError(f"--set {item!r}: role options are roles.ROLE.OPTION=VALUE")
            out.setdefault("roles", {}).setdefault(path[1], {})[path[2]] = value
            continue
        if len(path) != 1:
            raise ValueError(f"--set {item!r}: unknown setting {key!r}")
        if key in names and "list" in str(names[key].type) and not isinstance(value, list):
            value = [*out.get(key, []), raw]  # a list setting given one item at a time
        out[key] = value
    check_values(SearchConfig, out, lambda k: f"--set {k}", skip=CONVERTED)
    return out
