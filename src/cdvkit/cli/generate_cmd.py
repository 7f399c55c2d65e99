"""`cdv generate`: search CDV examples for a dataset against a target model.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.markup import escape

from cdvkit.api import RunHooks
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
from cdvkit.cli.layout import TEXT, Col, print_fitted
from cdvkit.search.config import SearchConfig

# Exit codes: 0 every question has its result; 1 questions incomplete (calls failed, server down,
# key refused); 2 bad input, option or model (nothing was run); 3 stopped by --max-calls/--max-cost.
STOPPED_BY_BUDGET = 3
# Questions ended between two refreshes of the progress bar's forecast.
FORECAST_EVERY = 5
# The progress bar's last column: calls paid and examples found so far (earlier sessions of the
# run included), then the forecast total once the run's own rates are known.
PROGRESS_COUNT = (
    "{task.fields[calls]} calls, {task.fields[examples]} examples{task.fields[forecast]}"
)


def generate(
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (resumable).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A setting by its config file key (repeatable), e.g. "
            "roles.target.concurrency=64. `cdv init` lists them.",
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_gpus_per_worker: RayGpusOption = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate", help="Only forecast calls, tokens and cost per role; run nothing."
        ),
    ] = False,
    **settings: Any,
) -> None:
    """Search CDV examples for every question of a dataset against a target model."""
    from cdvkit.api import estimate as run_estimate
    from cdvkit.api import generate as run_generate
    from cdvkit.executors import executor_from_options
    from cdvkit.models.preflight import PreflightError
    from cdvkit.search.config import check_options, parse_settings
    from cdvkit.store import ReadOnlyRunError

    data = settings.pop("data", None)
    quiet = quiet or as_json
    hooks = CliHooks(quiet)
    try:
        # Not given: None (a repeatable option: an empty list), so the file's value stays.
        given = {k: v for k, v in settings.items() if v is not None and v != []}
        check_options(given)  # a bad value is named as typed: --temperature
        # Dedicated options win over --set, which wins over the config file.
        settings = {**parse_settings(set_ or []), **given}
        if estimate:
            forecast = run_estimate(data, config=config, hooks=hooks, **settings)
            if as_json:
                rows = {"skipped_rows": hooks.skipped, "warnings": hooks.warnings}
                print(json.dumps(forecast.to_dict() | rows, indent=2))
            else:
                print_forecast(forecast)
            return
        # Where the search runs is not part of the run: a run started here resumes on Ray.
        ex = executor_from_options(executor, ray_address, ray_workers, ray_gpus_per_worker)
        result = run_generate(
            data, run_dir=run_dir, config=config, executor=ex, hooks=hooks, **settings
        )
    except ReadOnlyRunError as exc:
        raise _fail(str(exc.with_fix("pass another --run-dir"))) from None
    except (PreflightError, *USER_ERRORS) as exc:
        raise error_exit(exc) from None  # a full disk: exit 1, "disk full: N questions kept"
    summary = {
        **result.summary,
        "run_dir": str(result.run_dir),
        "stopped": result.stopped,
        "fatal": result.fatal,
    }
    if as_json:
        # What the text output prints as the data is read, so --json hides nothing.
        summary |= {"skipped_rows": hooks.skipped, "warnings": hooks.warnings}
        print(json.dumps(summary, indent=2))
    elif not quiet or result.fatal or summary["incomplete"]:
        print_summary(summary)
    if result.fatal:
        raise _fail(result.fatal, 1)
    if result.stopped:
        # The user's own ceiling: no failure, but no complete result either.
        said = f" ({result.forecast.line()})" if result.forecast else ""
        raise _fail(f"stopped early: {result.stopped}{said}. Rerun to continue.", STOPPED_BY_BUDGET)
    if summary["incomplete"]:
        # No result yet for these questions: the exit code says so until a rerun completes them.
        raise _fail(
            f"{summary['incomplete']} question(s) incomplete: some of their calls failed "
            "(see the failures above); rerun the same command to retry them",
            1,
        )


class CliHooks(RunHooks):
    """The run as the terminal shows it: repairs, a header, failures as they happen, progress."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.failures = FailurePrinter()
        # The rows --skip-invalid left out and the rows loaded after a repair, for --json.
        self.skipped: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self._moved: Any = None  # the progress bar's update while the search runs

    def loaded(self, result: Any) -> None:
        self.skipped = [row_problem(p) for p in result.skipped]
        self.warnings = [row_problem(p) for p in result.warnings]
        if self.quiet:
            return
        for what, problems in (("repaired", result.warnings), ("skipped", result.skipped)):
            if problems:
                rows = "rows" if what == "repaired" else "invalid rows"
                err.print(f"[yellow]{what} {len(problems)} {rows}:[/]")
                for problem in problems[:20]:
                    err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)

    def starting(self, cfg: Any, run_dir: Any, questions: list[Any]) -> None:
        if self.quiet:
            return
        targets = " + ".join(cfg.targets)
        console.print(
            f"[bold]cdv generate[/] {len(questions)} questions, target [cyan]{targets}[/], "
            f"proposer [cyan]{cfg.proposer}[/], judge [cyan]{cfg.judge or 'local checks'}[/], "
            f"run dir [cyan]{run_dir}[/]",
            highlight=False,
        )
        task = questions[0].task if questions else None
        console.print(f"protocol: {cfg.protocol_spec().describe(task)}", highlight=False)

    def failure(self, failure: dict[str, Any]) -> None:
        self.failures(failure)

    def forecast(self, forecast: Any) -> None:
        if not self.quiet:
            console.print(forecast.line(), highlight=False)

    @contextmanager
    def running(self, total: int, done: int, store: Any) -> Iterator[Any]:
        if self.quiet:
            yield None
            return
        from cdvkit.search.forecast import forecast_from_store
        from cdvkit.store.status import ROOT_ANSWERED

        # A resumed run starts from its real totals: the calls it paid, the examples it holds.
        fields = {
            "calls": store.paid_calls("search"),
            "examples": store.count_nodes("good"),
            "forecast": "",
        }
        with progress_bar(PROGRESS_COUNT) as progress:
            task = progress.add_task("searching", total=total, completed=done, **fields)
            ended_here = answered = 0
            partial = 0.0  # the questions in flight, by how far their searches have gone

            def show() -> None:
                progress.update(task, completed=done + ended_here + partial, **fields)

            def moved(p: Any) -> None:
                nonlocal partial
                partial = p.partial
                fields.update(calls=p.calls, examples=p.examples)
                show()

            def ended(_qid: str, status: str) -> None:
                nonlocal ended_here, answered
                if status == ROOT_ANSWERED:
                    # --prefilter auto asks every original before it decides what to search.
                    answered += 1
                    progress.update(task, description=f"prefilter auto: {answered} originals")
                    return
                ended_here += 1
                # Once enough questions have finished, the run's own rates replace the priors;
                # reading them scans every call, so not after every question.
                if ended_here % FORECAST_EVERY == 0:
                    fc = forecast_from_store(store)
                    if fc is not None and fc.cost[2] > 0:
                        fields["forecast"] = f", ~USD {fc.cost[1]:.2f} in all"
                fields["examples"] = store.count_nodes("good")
                progress.update(task, description="searching")
                show()

            self._moved = moved
            try:
                yield ended
            finally:
                self._moved = None

    def progress(self, progress: Any) -> None:
        if self._moved is not None:
            self._moved(progress)


def row_problem(problem: Any) -> dict[str, Any]:
    """A skipped or repaired row as --json carries it: file, row (1-based) and reason."""
    if not hasattr(problem, "row"):  # a message with no row, from a dataset reader of its own
        return {"file": None, "row": None, "reason": str(problem)}
    return {"file": problem.path, "row": problem.row, "reason": problem.message}


def print_forecast(fc: Any) -> None:
    """The forecast per role (the middle, then below it the range from easy to hard to fool),
    the models priced, then its one-line total; every number whole at 80 columns."""
    cols = [
        Col("role"),
        Col("calls", justify="right"),
        Col("tokens in", justify="right"),
        Col("tokens out", justify="right"),
        Col("USD", justify="right"),
    ]
    rows = []
    for r in fc.roles.values():
        usd = f"{r.cost[1]:.4f}\n({r.cost[0]:.4f}-{r.cost[2]:.4f})" if r.priced else "no price"
        rows.append(
            [
                r.role,
                f"{r.calls[1]:,.0f}\n({r.calls[0]:,.0f}-{r.calls[2]:,.0f})",
                f"{r.prompt_tokens:,.0f}",
                f"{r.completion_tokens:,.0f}",
                usd,
            ]
        )
    print_fitted(console, "Forecast per role: mid (low-high)", cols, rows)
    models = dict.fromkeys(f"{r.role} {r.model}" for r in fc.roles.values() if r.model)
    if models:
        console.print("models: " + ", ".join(models), highlight=False)
    console.print(fc.line(), highlight=False)


def print_summary(s: dict[str, Any]) -> None:
    from cdvkit.reporting.tables import summary_rows, usage_row

    rows = [[k, str(v)] for k, v in summary_rows(s)]
    print_fitted(
        console,
        "CDV search summary",
        [Col("what", TEXT), Col("value", justify="right")],
        rows,
        show_header=False,
    )
    if s["by_role"]:
        cols = [Col("role")] + [
            Col(h, justify="right")
            for h in ("calls", "samples", "prompt tokens", "completion tokens", "cost")
        ]
        usage = [usage_row(role, u) for role, u in s["by_role"].items()]
        print_fitted(console, "Calls and tokens per role", cols, usage)
    if s.get("failures"):
        cols = [
            Col("kind"),
            Col("role"),
            Col("count", justify="right"),
            Col("questions", justify="right"),
            Col("reason", TEXT),
        ]
        failed = [
            [g["kind"], g["role"], str(g["count"]), str(g["questions"]), g["reason"]]
            for g in s["failures"][:15]
        ]
        print_fitted(console, "Requests refused or failed, by reason", cols, failed)
    if s.get("protocol"):
        console.print(f"protocol: {s['protocol']}", highlight=False)
    if "run_dir" in s:
        console.print(f"run stored in [cyan]{escape(s['run_dir'])}[/]", highlight=False)


# `cdv generate --help` lists its settings in panels, by topic. Each panel is a table of its own,
# so its option names are sized by its own longest: at 80 columns none is cut. The on/off flags
# (two spellings each, --x/--no-x, in a column of their own) share one panel for that reason.
PANELS: dict[str, tuple[str, ...]] = {
    "Data": ("preset", "data", "split", "limit", "seed", "skip_invalid", "strict", "task"),
    "Models": ("target", "fool", "proposer", "judge", "extractor", "grader", "role", "base_url"),
    "Protocol: how the target is asked": (
        "protocol",
        "samples",
        "temperature",
        "target_prompt",
        "proposer_prompt",
        "judge_prompt",
        "prompts",
        "max_tokens",
        "choice_order",
        "threshold",
    ),
    "Search": (
        "scoring",
        "strategy",
        "k",
        "n",
        "max_expansions",
        "max_good",
        "max_depth",
        "proposals",
        "wrong_answers",
        "proposer_temperature",
    ),
    "On/off": (
        "sequential",
        "batch_samples",
        "always_extract",
        "judge_last",
        "proposer_batch",
        "leak_check",
    ),
    "Budgets and throughput": ("max_calls", "max_cost", "concurrency", "model_concurrency"),
    # The built-in constraints' options have shorthands (--similarity-floor for
    # --constraint similarity:floor=V); their declarations stand beside the parts.
    "Constraints": ("length_ratio", "similarity_floor", "constraints"),
    "Prefilter": (
        "prefilter",
        "prefilter_threshold",
        "prefilter_warmup",
        "prefilter_batch",
        "include_skipped",
    ),
}
OTHER_SETTINGS = "Other settings"  # a setting added without a panel still shows, here
# What a repeatable option takes, shown in place of its type (``<list[str]>``).
METAVARS = {
    "target": "MODEL",
    "max_tokens": "ROLE=N",
    "constraints": "NAME:OPTS",
    "role": "ROLE=MODEL",
}


def _panel(name: str) -> str:
    return next((p for p, names in PANELS.items() if name in names), OTHER_SETTINGS)


def _config_options() -> list[inspect.Parameter]:
    """One option per SearchConfig setting, from its declaration (help and spelling): the
    command declares none of them itself, so a new setting is an option at once."""
    hints = get_type_hints(SearchConfig)
    params = []
    for f in fields(SearchConfig):
        if "help" not in f.metadata:
            continue  # roles: a table, set in the config file or with --set roles.ROLE.X=...
        kind = f.metadata.get("cli") or hints[f.name]
        base = bool if kind in (bool, bool | None) else kind
        params.append(
            setting_option(
                f.name,
                base if "None" in str(base) else base | None,
                None,
                f.metadata,
                metavar=METAVARS.get(f.name),
                panel=_panel(f.name),
                show_default=False,
            )
        )
    return params


def register(app: typer.Typer) -> None:
    """Add `generate` to ``app``, replacing any command of that name."""
    # Settings first (as `cdv generate --help` always listed them), then the run's own options.
    add_command(app, "generate", with_options(generate, _config_options()))
