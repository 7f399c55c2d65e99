"""`cdv evaluate`: accuracy of models on original vs. distracted questions.

Registered on the main app with ``register(app)``; consoles and error reporting come from
``cdvkit.cli.common``, so this module never imports the app (no import cycle).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.markup import escape

from cdvkit.api import EvalHooks
from cdvkit.cli.common import (
    USER_ERRORS,
    ExecutorOption,
    FailurePrinter,
    RayAddressOption,
    RayGpusOption,
    RayWorkersOption,
    add_command,
    console,
    err,
    error_exit,
    progress_bar,
    setting_option,
    with_options,
)
from cdvkit.cli.common import fail as _fail
from cdvkit.cli.eval_tables import print_results
from cdvkit.evaluation.config import LISTS, EvalConfig

# `cdv evaluate --help` in panels: each a table of its own, sized by its own longest option name,
# so none is cut at 80 columns.
ASKED = "What is asked"
PROTOCOL = "Protocol: how each model is asked"
RESULTS = "Results"
BUDGETS = "Budgets and throughput"
# Each EvalConfig setting's panel; the options are EvalConfig's declarations (help, default,
# spelling), so `cdv evaluate` and ``cdvkit.evaluate`` cannot drift apart.
PANELS: dict[str, tuple[str, ...]] = {
    ASKED: ("run", "examples", "models", "defense", "all_examples", "data"),
    PROTOCOL: (
        "protocol",
        "samples",
        "temperature",
        "target_prompt",
        "threshold",
        "preset",
        "order_control",
        "extractor",
        "grader",
        "base_url",
    ),
    RESULTS: ("by", "out", "bootstrap", "seed"),
    BUDGETS: ("max_calls", "max_cost", "concurrency"),
}
# What a repeatable option takes, shown in place of its type.
METAVARS = {"run": "DIR", "examples": "[LABEL=]PATH", "models": "MODEL", "defense": "DEFENSE"}
# Where a value may come from for it to count as typed (not a default shown in --help), by the
# name of click's ParameterSource (typer carries a click of its own: its enum is not click's).
TYPED = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def split_models(values: list[str]) -> list[str]:
    """`--models a b`, `--models a --models b` and `--models a,b` all name the same two models."""
    out: list[str] = []
    for v in values:
        out += [m.strip() for m in v.split(",") if m.strip()]
    return list(dict.fromkeys(out))


def evaluate_command(
    ctx: typer.Context,
    scoring: Annotated[
        str | None, typer.Option(hidden=True, help="Old name of --protocol.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="TOML config file of settings by option name (or in an evaluate table)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A setting by its config file key (repeatable), e.g. samples=3.",
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_gpus_per_worker: RayGpusOption = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    **options: Any,
) -> None:
    """Accuracy of models on original vs. distracted questions, with paired statistics."""
    from cdvkit.api import evaluate as run_evaluate
    from cdvkit.evaluation.config import check_settings, load_eval_toml, parse_eval_settings
    from cdvkit.executors import executor_from_options
    from cdvkit.models.errors import BudgetExceeded, ModelError
    from cdvkit.models.preflight import PreflightError
    from cdvkit.store import ReadOnlyRunError

    extra = list(ctx.args)
    stray = [a for a in extra if a.startswith("-")]
    if stray:
        raise _fail(f"unknown option(s): {' '.join(stray)}")
    # Only what was typed is a setting of the command line: a default shown in --help leaves a
    # config file's or --set's value in place.
    given = {k: v for k, v in options.items() if _typed(ctx, k)}
    if options["models"] or extra:
        given["models"] = split_models([*(options["models"] or []), *extra])
    if scoring not in (None, "auto") and "protocol" not in given:
        given["protocol"] = scoring
    try:
        # Dedicated options win over --set, which wins over the config file.
        from_set = parse_eval_settings(set_ or [])
        known = (load_eval_toml(config) if config is not None else {}) | from_set | given
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    if not known.get("models"):
        raise _fail("give the models to evaluate: --models provider/model [provider/model ...]")
    if not known.get("run") and not known.get("examples"):
        raise _fail("give the examples to evaluate: --run DIR and/or --examples FILE")
    quiet = quiet or as_json
    hooks = CliEvalHooks(quiet)
    try:
        # Named as typed (--bootstrap), before anything is read; the same declarations check
        # a config file's, --set's and the Python API's values.
        check_settings(given, option_label)
        cfg = EvalConfig.from_sources(config, **{**from_set, **given})
        ex = executor_from_options(executor, ray_address, ray_workers, ray_gpus_per_worker)
        result = run_evaluate(cfg, executor=ex, hooks=hooks)
    except ReadOnlyRunError as exc:
        fix = "choose another --out" if known.get("out") else "pass --out DIR to write elsewhere"
        raise _fail(str(exc.with_fix(fix))) from None
    except PreflightError as exc:
        raise _fail(str(exc)) from None
    except BudgetExceeded as exc:
        raise _fail(f"stopped: {exc}. Answers so far are stored; rerun to continue.", 1) from None
    except ModelError as exc:
        raise _fail(str(exc), 1) from None
    except USER_ERRORS as exc:
        raise error_exit(exc) from None  # a full disk: exit 1
    entries = result.entries
    if as_json:
        # The entries the text output lists as left out, so --json hides nothing.
        out = {"results_dir": str(result.results_dir), "evaluations": entries}
        print(json.dumps(out | {"skipped_rows": hooks.skipped}, indent=2))
        return
    print_results(entries)
    console.print(
        f"results written to [cyan]{escape(str(result.results_dir / 'evaluation.json'))}[/]",
        highlight=False,
    )


class CliEvalHooks(EvalHooks):
    """The evaluation as the terminal shows it: what was left out, failures, progress."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.failures = FailurePrinter()
        self.task: str | None = None  # the evaluated questions' shape, once loaded
        self.skipped: list[dict[str, Any]] = []  # entries left out as examples, for --json

    def loaded(self, sets: list[Any]) -> None:
        self.task = next((i.original.task for s in sets for i in s.every), None)
        self.skipped = [skipped_entry(s.path, why) for s in sets for why in s.skipped]
        for s in sets:
            if s.skipped and not self.quiet:
                also = " (their questions still count in the accuracy over every question)"
                err.print(
                    f"[yellow]{s.path}: left out {len(s.skipped)} entries as examples"
                    f"{also if s.whole else ''}[/]"
                )
                for why in s.skipped[:10]:
                    err.print(f"  {why}", highlight=False, markup=False)

    def starting(self, protocol: Any) -> None:
        if not self.quiet:
            console.print(f"protocol: {protocol.describe(self.task)}", highlight=False)

    def failure(self, failure: dict[str, Any]) -> None:
        self.failures(failure)

    @contextmanager
    def running(self, defense: Any) -> Iterator[Any]:
        if self.quiet:
            yield None
            return
        # "from the store": answers that needed no paid request (see evaluation.evaluator).
        with progress_bar("{task.fields[cached]} from the store") as progress:
            task = progress.add_task(f"evaluating ({defense.label})", total=None, cached=0)

            def update(p: Any) -> None:
                progress.update(task, total=p.total, completed=p.done, cached=p.cached)

            yield update


def skipped_entry(path: Any, why: str) -> dict[str, Any]:
    """An entry left out as an example, as --json carries it: file, row (when the reason
    names one: "row 3: ...") and reason."""
    found = re.match(r"row (\d+): ", why)
    return {"file": str(path), "row": int(found[1]) if found else None, "reason": why}


def option_label(name: str) -> str:
    """An EvalConfig setting's `cdv evaluate` option as typed (``--order-control``)."""
    return "--" + name.replace("_", "-")


def _typed(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in TYPED


def _panel(name: str) -> str | None:
    return next((p for p, names in PANELS.items() if name in names), None)


def config_options() -> list[inspect.Parameter]:
    """One option per EvalConfig setting, from its declaration: its help, its spelling and
    (for a setting of one value) its default; the command declares none of them itself."""
    hints = get_type_hints(EvalConfig)
    params = []
    for f in fields(EvalConfig):
        hint = f.metadata.get("cli") or hints[f.name]
        # A list's default is its setting's (defense: none), shown in its help, not as a value.
        default = None if f.name in LISTS or f.default is MISSING else f.default
        if f.name in LISTS:
            hint = hint | None
        params.append(
            setting_option(
                f.name,
                hint,
                default,
                f.metadata,
                metavar=METAVARS.get(f.name),
                panel=_panel(f.name),
            )
        )
    return params


# The context first, then the settings (as `cdv evaluate --help` lists them), then the command's
# own options.
with_options(evaluate_command, config_options(), after=1)


def register(app: typer.Typer) -> None:
    """Add `evaluate` to ``app``, replacing any command of that name."""
    add_command(
        app,
        "evaluate",
        evaluate_command,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )
