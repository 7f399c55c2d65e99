"""The settings of an evaluation (`cdv evaluate`, ``cdvkit.evaluate``), declared once.

Each field of EvalConfig is declared with ``setting(...)`` (cdvkit.search.setting), as
SearchConfig's are: its default, its help (the `cdv evaluate` option's) and the values it allows.
The command builds its options from these declarations and the Python API its keywords, and every
way a value arrives (the command line, ``--set``, a config file, the API) is checked against the
same declaration, so the two cannot drift. Precedence: defaults < config file < ``--set`` < the
command line's own options (or the API's keywords).

EvalConfig says what to evaluate and how; ``EvalSettings`` (cdvkit.evaluation.settings) is how
the answers are then asked and counted, once the run's own protocol and a preset are settled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cdvkit.allowed import SettingError, Shape, check_fields, check_values, declared
from cdvkit.evaluation.presets import EVAL_PRESETS
from cdvkit.prompts import TARGET_PROMPTS
from cdvkit.protocol import SCORINGS
from cdvkit.search.setting import TEMPERATURE, setting
from cdvkit.tomlfile import read_toml

# How the results are split into rows: by the questions' dataset (source) or subject.
SPLITS = ("dataset", "subject")
# The config file's own table (keys may also sit at its top level).
SECTION = "evaluate"


@dataclass
class EvalConfig:
    """What `cdv evaluate` evaluates and how: every setting that is data. The objects an
    evaluation is run with (an executor, ready backends, hooks) are not settings: they are
    ``cdvkit.evaluate``'s own keyword arguments. Built directly (``EvalConfig(models=[...])``),
    from a config file (``EvalConfig.from_sources``) or by ``cdvkit.evaluate``'s keywords; each
    value is checked against its declaration as the config is built (SettingError, one line)."""

    # What is asked. A path, a text or a list of them is read as a list.
    run: list[Path] = setting(  # noqa: RUF009 - a field, via setting()
        help="Run directory whose examples to evaluate (repeatable).", default_factory=list
    )
    examples: list[str] = setting(  # noqa: RUF009 - a field, via setting()
        help="cdvkit JSONL or the reference's JSON output; PATH or LABEL=PATH (repeatable).",
        default_factory=list,
    )
    models: list[str] = setting(  # noqa: RUF009 - a field, via setting()
        help="Models to evaluate: --models M1 M2 ..., or comma-separated, or repeated.",
        default_factory=list,
    )
    defense: list[str] = setting(  # noqa: RUF009 - a field, via setting()
        help="none | ignore-irrelevant | cot | a system prompt file (PATH or file:PATH); "
        "repeat to compare defenses side by side.",
        default_factory=lambda: ["none"],
    )
    # The protocol: None takes the first run's own (else the protocol's defaults).
    protocol: str | None = setting(
        None,
        "sample (n step-by-step answers; right when one is) | exact (the most likely "
        "choice). Default: the first --run's protocol, else sample.",
        choices=SCORINGS,
    )
    samples: int | None = setting(
        None, "Protocol: answers per question (default: the run's, or 5).", min=1
    )
    temperature: float | None = setting(
        None,
        "Protocol: sampling temperature (default: the run's, or 0.01).",
        allowed=TEMPERATURE,
    )
    target_prompt: str | None = setting(
        None, "Protocol: letter | paper (default: the run's, or letter).", choices=TARGET_PROMPTS
    )
    threshold: float | None = setting(
        None, "Exact protocol: wrong only when P(correct) is also below this.", above=0, max=1
    )
    all_examples: bool = setting(
        False, "Every example per question, not the first.", flag="--all-examples"
    )
    preset: str | None = setting(
        None,
        "paper: the paper's evaluation (one answer at temperature 0.0001 in its prompt "
        "format, the extractor on every answer) and its numbers: original accuracy over "
        "every question, enhanced over the first example (originally failed questions as "
        "themselves), drop.",
        choices=lambda: tuple(EVAL_PRESETS),
    )
    data: str | None = setting(
        None,
        "The dataset (built-in name or file) the --examples were found on, so accuracy "
        "covers every question of it, not only those with an example.",
    )
    by: str = setting(
        "dataset",
        "Rows per dataset or per subject (the questions' subject field).",
        choices=SPLITS,
    )
    order_control: bool = setting(
        True,
        "Also ask each original with its example's choice order, splitting the drop "
        "into the order's part and the distraction's (one more answer per example).",
        flag="--order-control/--no-order-control",
    )
    out: Path | None = setting(  # noqa: RUF009 - a field, via setting()
        None, "Where answers and evaluation.json go (default: the first --run)."
    )
    extractor: str | None = setting(None, "provider/model mapping unparsable answers to a choice.")
    grader: str | None = setting(
        None, "provider/model deciding free-form answers the readers cannot settle."
    )
    base_url: str | None = setting(None, "Base URL of an OpenAI-compatible server.")
    # Ceilings for this evaluation alone; 0 is a ceiling too (only stored answers are used).
    max_calls: int | None = setting(None, "Ceiling on paid calls for this command.", min=0)
    max_cost: float | None = setting(None, "Ceiling on cost (USD) for this command.", min=0)
    concurrency: int = setting(16, "Answers requested at once.", min=1)
    # 0: no intervals, only the point estimates.
    bootstrap: int = setting(10_000, "Paired bootstrap resamples.", min=0)
    seed: int = setting(0, "Bootstrap seed.", min=0)

    def __post_init__(self) -> None:
        for name, value in normalized(vars(self)).items():
            setattr(self, name, value)
        check_fields(self)

    @classmethod
    def from_sources(cls, config_file: str | Path | None = None, **overrides: Any) -> EvalConfig:
        """Settings from a TOML config file (top-level keys or an ``[evaluate]`` table), with
        ``overrides`` over them. A bad file value is named with its file; an unknown key is a
        ValueError."""
        values: dict[str, Any] = {}
        if config_file is not None:
            from_file = load_eval_toml(config_file)
            unknown = sorted(set(from_file) - set(field_names()))
            if unknown:
                raise ValueError(f"{config_file}: unknown evaluate settings: {', '.join(unknown)}")
            check_values(cls, from_file, lambda k: f"{config_file}: {k}")
            values.update(from_file)
        values.update(normalized(overrides))
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ValueError(f"unknown evaluate settings: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_call(
        cls,
        models_or_config: list[str] | EvalConfig | None,
        config: EvalConfig | str | Path | None,
        settings: Mapping[str, Any],
    ) -> EvalConfig:
        """``cdvkit.evaluate``'s arguments as one EvalConfig: the ready config (or the file's),
        then the models given first, then the keywords over them. TypeError for a keyword that
        is no setting, as a function's own keywords would be."""
        known = set(field_names())
        for name in settings:
            if name not in known:
                raise TypeError(f"evaluate() got an unexpected keyword argument {name!r}")
        if isinstance(models_or_config, EvalConfig):
            if config is not None:
                raise TypeError("evaluate() got two configs: pass one EvalConfig")
            config = models_or_config
        elif models_or_config is not None:
            if "models" in settings:
                raise TypeError("evaluate() got multiple values for argument 'models'")
            settings = {"models": models_or_config, **settings}
        if isinstance(config, EvalConfig):
            return config.with_values(**settings) if settings else config
        return cls.from_sources(config, **settings)

    def with_values(self, **values: Any) -> EvalConfig:
        """A copy with ``values`` in place of its own, checked as any other."""
        return replace(self, **values)

    def require_inputs(self) -> None:
        """ValueError when there is nothing to evaluate: no model, or no run and no file."""
        if not self.models:
            raise ValueError("give the models to evaluate")
        if not self.run and not self.examples:
            raise ValueError(
                "give the examples to evaluate: a run directory and/or an examples file"
            )


def field_names() -> tuple[str, ...]:
    """EvalConfig's settings, in declaration order (the options' order in `cdv evaluate`)."""
    return tuple(f.name for f in fields(EvalConfig))


# Settings a caller may give as one item, read as a list of them.
LISTS = ("run", "examples", "models", "defense")


def normalized(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` in the form EvalConfig holds them: one path or text for a list setting is a
    list of one, paths as Path (run, out), examples as text; anything else is left as it is,
    for the declarations' check to name."""
    out = dict(values)
    for name in LISTS:
        if name in out:
            v = out[name]
            if v is None:
                out[name] = ["none"] if name == "defense" else []  # each one's default
            elif isinstance(v, str | Path):
                out[name] = [v]
            elif isinstance(v, tuple):
                out[name] = list(v)
    if isinstance(out.get("run"), list):
        out["run"] = [Path(r) if isinstance(r, str) else r for r in out["run"]]
    if isinstance(out.get("examples"), list):
        out["examples"] = [str(e) if isinstance(e, Path) else e for e in out["examples"]]
    if isinstance(out.get("out"), str):
        out["out"] = Path(out["out"])
    return out


def load_eval_toml(path: str | Path) -> dict[str, Any]:
    """A config file's evaluate settings: its top-level keys, then its ``[evaluate]`` table
    over them; ``-`` and ``_`` in keys are one."""
    p = Path(path)
    raw = read_toml(p, "config file")
    section = raw.pop(SECTION, {})
    if not isinstance(section, dict):
        raise ValueError(f"config file {p}: {SECTION} must be a table, [{SECTION}]")
    merged = {
        **{k.replace("-", "_"): v for k, v in raw.items()},
        **{k.replace("-", "_"): v for k, v in section.items()},
    }
    return normalized(merged)


def parse_eval_settings(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as evaluate settings (``samples=3``, ``order-control=false``):
    values read as JSON when they are (numbers, booleans, lists), else as text; a list setting
    given item by item collects them. Raises ValueError (SettingError) naming the item."""
    out: dict[str, Any] = {}
    shapes = {name: Shape.of(hint) for name, (hint, _) in declared(EvalConfig).items()}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: not KEY=VALUE")
        if key not in shapes:
            raise ValueError(f"--set {item!r}: unknown setting {key!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        shape = shapes[key]
        if str in shape.types and not isinstance(value, str):
            value = raw  # a text setting keeps what was typed (--set data=2021)
        if key in LISTS and not isinstance(value, list):
            value = [*out.get(key, []), raw]  # a list setting given one item at a time
        out[key] = value
    out = normalized(out)
    check_values(EvalConfig, out, lambda k: f"--set {k}")
    return out


def check_settings(values: Mapping[str, Any], label: Callable[[str], str] = str) -> None:
    """Check ``values`` (settings by field name) against EvalConfig's declarations, naming a bad
    one with ``label`` (``--bootstrap`` on the command line). Raises SettingError."""
    check_values(EvalConfig, normalized(values), label)


__all__ = [
    "SPLITS",
    "EvalConfig",
    "SettingError",
    "check_settings",
    "field_names",
    "load_eval_toml",
    "parse_eval_settings",
]
