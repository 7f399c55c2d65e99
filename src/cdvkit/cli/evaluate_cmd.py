"""`cdv evaluate`: accuracy of models on original vs. distracted questions.

Registered on the main app with ``register(app)``; consoles and error reporting come from
``cdvkit.cli.common``, so this module never imports the app (no import cycle).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
)
from cdvkit.cli.common import fail as _fail
from cdvkit.cli.eval_tables import print_results

# `cdv evaluate --help` in panels: each a table of its own, sized by its own longest option name,
# so none is cut at 80 columns.
ASKED = "What is asked"
PROTOCOL = "Protocol: how each model is asked"
RESULTS = "Results"
BUDGETS = "Budgets and throughput"


def split_models(values: list[str]) -> list[str]:
    """`--models a b`, `--models a --models b` and `--models a,b` all name the same two models."""
    out: list[str] = []
    for v in values:
        out += [m.strip() for m in v.split(",") if m.strip()]
    return list(dict.fromkeys(out))


def evaluate_command(
    ctx: typer.Context,
    run: Annotated[
        list[Path] | None,
        typer.Option(
            "--run",
            help="Run directory whose examples to evaluate (repeatable).",
            metavar="DIR",
            rich_help_panel=ASKED,
        ),
    ] = None,
    examples: Annotated[
        list[str] | None,
        typer.Option(
            "--examples",
            help="cdvkit JSONL or the reference's JSON output; PATH or LABEL=PATH (repeatable).",
            metavar="[LABEL=]PATH",
            rich_help_panel=ASKED,
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Models to evaluate: --models M1 M2 ..., or comma-separated, or repeated.",
            metavar="MODEL",
            rich_help_panel=ASKED,
        ),
    ] = None,
    defense: Annotated[
        list[str] | None,
        typer.Option(
            "--defense",
            help="none | ignore-irrelevant | cot | a system prompt file (PATH or file:PATH); "
            "repeat to compare defenses side by side.",
            metavar="DEFENSE",
            rich_help_panel=ASKED,
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="sample (n step-by-step answers; right when one is) | exact (the most likely "
            "choice). Default: the first --run's protocol, else sample.",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            help="Protocol: answers per question (default: the run's, or 5).",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Protocol: sampling temperature (default: the run's, or 0.01).",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    target_prompt: Annotated[
        str | None,
        typer.Option(
            help="Protocol: letter | paper (default: the run's, or letter).",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Exact protocol: wrong only when P(correct) is also below this.",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    scoring: Annotated[
        str | None, typer.Option(hidden=True, help="Old name of --protocol.")
    ] = None,
    all_examples: Annotated[
        bool,
        typer.Option(
            "--all-examples",
            help="Every example per question, not the first.",
            rich_help_panel=ASKED,
        ),
    ] = False,
    preset: Annotated[
        str | None,
        typer.Option(
            help="paper: the paper's evaluation (one answer at temperature 0.0001 in its prompt "
            "format, the extractor on every answer) and its numbers: original accuracy over "
            "every question, enhanced over the first example (originally failed questions as "
            "themselves), drop.",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="The dataset (built-in name or file) the --examples were found on, so accuracy "
            "covers every question of it, not only those with an example.",
            rich_help_panel=ASKED,
        ),
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            help="Rows per dataset or per subject (the questions' subject field).",
            rich_help_panel=RESULTS,
        ),
    ] = "dataset",
    order_control: Annotated[
        bool,
        typer.Option(
            "--order-control/--no-order-control",
            help="Also ask each original with its example's choice order, splitting the drop "
            "into the order's part and the distraction's (one more answer per example).",
            rich_help_panel=PROTOCOL,
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where answers and evaluation.json go (default: the first --run).",
            rich_help_panel=RESULTS,
        ),
    ] = None,
    extractor: Annotated[
        str | None,
        typer.Option(
            help="provider/model mapping unparsable answers to a choice.", rich_help_panel=PROTOCOL
        ),
    ] = None,
    grader: Annotated[
        str | None,
        typer.Option(
            help="provider/model deciding free-form answers the readers cannot settle.",
            rich_help_panel=PROTOCOL,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="Base URL of an OpenAI-compatible server.", rich_help_panel=PROTOCOL),
    ] = None,
    max_calls: Annotated[
        int | None,
        typer.Option(help="Ceiling on paid calls for this command.", rich_help_panel=BUDGETS),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Ceiling on cost (USD) for this command.", rich_help_panel=BUDGETS),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Answers requested at once.", rich_help_panel=BUDGETS)
    ] = 16,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_gpus_per_worker: RayGpusOption = 0.0,
    bootstrap: Annotated[
        int, typer.Option(help="Paired bootstrap resamples.", rich_help_panel=RESULTS)
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.", rich_help_panel=RESULTS)] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Accuracy of models on original vs. distracted questions, with paired statistics."""
    from cdvkit.api import evaluate as run_evaluate
    from cdvkit.evaluation.settings import check_eval_options
    from cdvkit.executors import executor_from_options
    from cdvkit.models.errors import BudgetExceeded, ModelError
    from cdvkit.models.preflight import PreflightError
    from cdvkit.store import ReadOnlyRunError

    extra = list(ctx.args)
    stray = [a for a in extra if a.startswith("-")]
    if stray:
        raise _fail(f"unknown option(s): {' '.join(stray)}")
    model_list = split_models([*(models or []), *extra])
    if not model_list:
        raise _fail("give the models to evaluate: --models provider/model [provider/model ...]")
    if not run and not examples:
        raise _fail("give the examples to evaluate: --run DIR and/or --examples FILE")
    quiet = quiet or as_json
    protocol = protocol or (None if scoring in (None, "auto") else scoring)
    hooks = CliEvalHooks(quiet)
    try:
        # Named as typed (--bootstrap), before anything is read; the same declarations check
        # the Python API's values.
        check_eval_options(
            {
                "protocol": protocol,
                "samples": samples,
                "temperature": temperature,
                "target_prompt": target_prompt,
                "threshold": threshold,
                "preset": preset,
                "by": by,
                "max_calls": max_calls,
                "max_cost": max_cost,
                "concurrency": concurrency,
                "bootstrap": bootstrap,
                "seed": seed,
            },
            lambda name: "--" + name.replace("_", "-"),
        )
        ex = executor_from_options(executor, ray_address, ray_workers, ray_gpus_per_worker)
        result = run_evaluate(
            model_list,
            run=list(run or []),
            examples=list(examples or []),
            out=out,
            defense=list(defense or ["none"]),
            protocol=protocol,
            samples=samples,
            temperature=temperature,
            target_prompt=target_prompt,
            threshold=threshold,
            all_examples=all_examples,
            preset=preset,
            data=data,
            by=by,
            order_control=order_control,
            extractor=extractor,
            grader=grader,
            base_url=base_url,
            max_calls=max_calls,
            max_cost=max_cost,
            concurrency=concurrency,
            bootstrap=bootstrap,
            seed=seed,
            executor=ex,
            hooks=hooks,
        )
    except ReadOnlyRunError as exc:
        fix = "choose another --out" if out is not None else "pass --out DIR to write elsewhere"
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


def register(app: typer.Typer) -> None:
    """Add `evaluate` to ``app``, replacing any command of that name."""
    add_command(
        app,
        "evaluate",
        evaluate_command,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )
