"""The settings of a search run (`cdv generate`): defaults < preset < config file < command line.

Named SearchConfig, not after the command, to keep it apart from GenerateRequest (one request to
a model); ``GenerateConfig`` is kept as an alias for code written before the rename.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cdvkit.prompts.templates import PromptSet
from cdvkit.protocol import NEAR_GREEDY, Protocol, prompts_from_config, protocol_from_config
from cdvkit.search.config_parts import JUDGE_IS_TARGET, check_parts

DEFAULT_TARGET = "embed/all-MiniLM-L6-v2"
CHOICE_ORDERS = ("keep", "shuffle")
# Role options that hold a credential: they reach the backend, never the run store or a report.
SECRET_OPTIONS = frozenset({"api_key"})


def setting(
    default: Any = None,
    help: str = "",
    *,
    flag: str | None = None,
    cli: Any = None,
    **kw: Any,
) -> Any:
    """A field of SearchConfig that is also a `cdv generate` option: declared once, here.

    ``flag`` overrides the option's spelling (``--judge-last/--no-judge-last``, ``--constraint``
    for the list ``constraints``); ``cli`` is the option's type where the setting's own cannot
    be typed on a command line (a table given as repeated ``ROLE=N``, a file read into its
    content); ``kw`` goes to ``dataclasses.field`` (default_factory).
    """
    if "default_factory" not in kw:
        kw["default"] = default
    return field(metadata={"help": help, "flag": flag, "cli": cli}, **kw)


@dataclass
class SearchConfig:
    preset: str | None = setting(
        None,
        "A recipe of settings: efficient (cheap, the defaults) | paper (the paper's procedure, "
        "to reproduce its numbers) | reference (the paper code's call pattern, to compare cost).",
    )
    data: str = setting("sample", "Built-in dataset name, 'sample' (default), or a file.")
    split: str | None = setting(None, "Dataset split (built-ins).")
    limit: int | None = setting(None, "Seeded sample of N questions.")
    seed: int = setting(0, "Random seed.")
    skip_invalid: bool = setting(False, "Skip and report bad rows.", flag="--skip-invalid")
    strict: bool = setting(False, "Repeated choices are an error, not collapsed.", flag="--strict")
    task: str = setting(
        "auto",
        "Task shape: auto (from the data) | multiple_choice | numeric | short_answer.",
    )
    # roles
    target: str = setting(DEFAULT_TARGET, "Model under attack (provider/model).")
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
    # Per-role backend options; in the config file or with --set roles.ROLE.OPTION=VALUE.
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The protocol (cdvkit.protocol): how the target is asked and when it counts as fooled.
    protocol: str = setting(
        "sample",
        "When the target counts as right/fooled: sample (n step-by-step answers, fooled when "
        "none is right) | exact (the most likely choice).",
    )
    samples: int = setting(5, "Protocol: answers per question (n).")
    temperature: float = setting(NEAR_GREEDY, "Protocol: sampling temperature.")
    target_prompt: str = setting(
        "letter",
        "letter (lettered choices) | paper (the paper's: choices as a list, answer by text; "
        "its extractor reads a JSON reply naming the choice).",
    )
    proposer_prompt: str = setting(
        "standard",
        "The LLM proposer's template: standard (sees the choices and the answer) | paper (sees "
        "only the question and one wrong option, as the paper's code).",
    )
    judge_prompt: str = setting(
        "standard",
        "The LLM judge's template: standard (sees the choices and the answer) | paper (sees only "
        "the original and the distracted question).",
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
    )
    threshold: float | None = setting(
        None, "Exact scoring: fooled only when P(correct) is also below this."
    )
    # The search's own, cheaper score; every example is confirmed under the protocol.
    scoring: str = setting(
        "auto",
        "The search's cheaper guide: auto (choice probabilities where the model gives them) | "
        "sample | exact. Examples are always confirmed under the protocol.",
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
        "best-first", "How the tree is searched (cdv parts lists them); reference: the preset."
    )
    k: float = setting(2.0, "Best-first priority exp(K / score) * depth**-N: K.")
    n: float = setting(1.0, "Best-first priority exp(K / score) * depth**-N: N.")
    max_expansions: int = setting(10, "Expansions per question.")
    max_good: int = setting(3, "Stop a question after N examples.")
    max_depth: int = setting(5, "Most distractions stacked.")
    max_calls: int | None = setting(None, "Run-wide ceiling on paid calls.")
    max_cost: float | None = setting(None, "Run-wide ceiling on cost (USD).")
    # constraints
    length_ratio: float = setting(10.0, "A distracted question is at most this x its parent.")
    similarity_floor: float = setting(0.5, "Embedding similarity floor; 0 turns it off.")
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
    prefilter_threshold: float = setting(0.3, "Skip questions with P(enhanceable) below this.")
    # --prefilter auto: searched in full before it first trains (a seeded random sample), then
    # questions searched between two retrainings. Both decide what is skipped, so neither may
    # change on resume (concurrency may: it is not what sizes a batch).
    prefilter_warmup: int = setting(
        30, "--prefilter auto: questions searched first, a seeded random sample, to learn from."
    )
    prefilter_batch: int = setting(
        32,
        "--prefilter auto: questions searched, by predicted promise, between retrainings (or "
        "a quarter of those searched so far, once more).",
    )
    include_skipped: bool = setting(
        False,
        "Search the questions a prefilter skipped earlier in this run (paid calls are reused).",
        flag="--include-skipped",
    )
    proposer_temperature: float = setting(0.7, "The LLM proposer's sampling temperature.")
    proposer_batch: bool = setting(
        True,
        "One proposer call per node for all wrong options (default), or one per option.",
        flag="--proposer-batch/--no-proposer-batch",
    )
    wrong_answers: int = setting(
        3, "Free-form questions: wrong answers aimed at per expanded node."
    )
    proposals: int = setting(
        1,
        "Distractions written per wrong answer at each expansion, in rounds; a further round "
        "only while examples are still wanted (more: a wider tree, shorter examples).",
    )
    # throughput
    concurrency: int = setting(16, "Questions searched at once.")
    model_concurrency: int = setting(8, "Requests in flight per model (a role may set its own).")

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
            values.update(load_toml(config_file))
        overrides = {k: v for k, v in overrides.items() if v is not None}
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
        if self.samples < 1:
            raise ValueError("--samples must be at least 1")
        if self.max_expansions < 1 or self.max_good < 1 or self.max_depth < 1:
            raise ValueError("--max-expansions, --max-good and --max-depth must be at least 1")
        if self.scoring not in ("auto", "sample", "exact"):
            raise ValueError("--scoring must be auto, sample or exact")
        if self.wrong_answers < 1:
            raise ValueError("--wrong-answers must be at least 1")
        if self.proposals < 1:
            raise ValueError("--proposals must be at least 1")
        from cdvkit.prompts import JUDGE_PROMPTS, PROPOSER_PROMPTS

        if self.proposer_prompt not in PROPOSER_PROMPTS:
            raise ValueError(f"--proposer-prompt must be one of {', '.join(PROPOSER_PROMPTS)}")
        if self.judge_prompt not in JUDGE_PROMPTS:
            raise ValueError(f"--judge-prompt must be one of {', '.join(JUDGE_PROMPTS)}")
        if self.choice_order not in CHOICE_ORDERS:
            raise ValueError(f"--choice-order must be one of {', '.join(CHOICE_ORDERS)}")
        self.prompt_set()  # raises PromptsError / ValueError naming a bad template or limit
        from cdvkit.data import resolve_task

        resolve_task(self.task)  # raises ValueError (DatasetError) on an unknown shape
        self.protocol_spec()  # raises ValueError on a bad protocol setting
        if self.preset is not None:
            from cdvkit.search.preset import preset_values

            preset_values(self.preset)
        if self.preset == "paper" and not self.extractor:
            raise ValueError(
                "--preset paper has the extractor read every answer, as the paper's code does "
                "(it used gpt-4o-mini): pass --extractor provider/model"
            )
        if not 0.0 <= self.prefilter_threshold <= 1.0:
            raise ValueError("--prefilter-threshold must lie between 0 and 1")
        if self.prefilter_warmup < 1 or self.prefilter_batch < 1:
            raise ValueError("--prefilter-warmup and --prefilter-batch must be at least 1")
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
        return self.target if self.judge == JUDGE_IS_TARGET else self.judge

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Settings that differ from a stored run's and would make resuming it wrong."""
        mine = self.to_dict()
        return sorted(
            k
            for k in mine
            if k not in self.RESUMABLE_CHANGES and k in stored and stored[k] != mine[k]
        )


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as settings: any field by name (``k=3``, ``leak-check=false``),
    role options by path (``roles.target.concurrency=64``); values read as JSON when they are
    (numbers, booleans, lists), else as text. Unknown keys are refused by ``from_sources``."""
    out: dict[str, Any] = {}
    names = {f.name: f for f in fields(SearchConfig)}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: not KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
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
    return out


def parse_max_tokens(items: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``--max-tokens`` items (``ROLE=N``, or ``N`` for the target) as {role: N}."""
    out: dict[str, int] = {}
    for item in items:
        role, eq, n = str(item).rpartition("=")
        role = role.strip() if eq else "target"
        try:
            out[role] = int(n)
        except ValueError:
            raise ValueError(f"--max-tokens {item!r}: not N or ROLE=N (e.g. judge=512)") from None
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file; keys may sit at the top level or under a [generate] table."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {p} is not valid TOML: {exc}") from None
    section = raw.pop("generate", {})
    return {
        **{k.replace("-", "_"): v for k, v in raw.items()},
        **{k.replace("-", "_"): v for k, v in section.items()},
    }


GenerateConfig = SearchConfig  # the name before it was SearchConfig
