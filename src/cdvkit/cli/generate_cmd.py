"""`cdv generate`: search CDV examples for a dataset against a target model.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
)
from cdvkit.cli.common import fail as _fail
from cdvkit.search.constraints import CONSTRAINTS
from cdvkit.search.proposers import PROPOSERS
from cdvkit.search.strategies import STRATEGIES

# Exit codes: 0 every question has its result; 1 questions incomplete (calls failed, server down,
# key refused); 2 bad input, option or model (nothing was run); 3 stopped by --max-calls/--max-cost.
STOPPED_BY_BUDGET = 3


def generate(
    data: Annotated[
        str | None, typer.Option(help="Built-in dataset name, 'sample' (default), or a file.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model under attack (provider/model).")] = None,
    proposer: Annotated[
        str | None,
        typer.Option(
            help="A provider/model that writes distractions, or a registered proposer with "
            f"options, e.g. llm:model=openai/gpt-4o,temperature=0.9 ({', '.join(PROPOSERS)})."
        ),
    ] = None,
    judge: Annotated[str | None, typer.Option(help="provider/model for the LLM judge.")] = None,
    extractor: Annotated[
        str | None, typer.Option(help="provider/model mapping unparsable answers to a choice.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible server.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Dataset split (built-ins).")] = None,
    limit: Annotated[int | None, typer.Option(help="Seeded sample of N questions.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    skip_invalid: Annotated[
        bool | None, typer.Option("--skip-invalid", help="Skip and report bad rows.")
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option("--strict", help="Repeated choices are an error, not collapsed."),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="When the target counts as right/fooled: sample (n step-by-step answers, "
            "fooled when none is right; default) | exact (the most likely choice)."
        ),
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Protocol: answers per question (n).")] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Protocol: sampling temperature (default 0.01).")
    ] = None,
    target_prompt: Annotated[
        str | None,
        typer.Option(help="letter (lettered choices) | paper (the paper's: answer by text)."),
    ] = None,
    scoring: Annotated[
        str | None,
        typer.Option(
            help="The search's cheaper guide: auto (choice probabilities where the model gives "
            "them) | sample | exact. Examples are always confirmed under the protocol."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Exact scoring: fooled only when P(correct) is also below this."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help=f"{' | '.join(STRATEGIES)} | reference (the reference preset)."),
    ] = None,
    max_expansions: Annotated[int | None, typer.Option(help="Expansions per question.")] = None,
    max_good: Annotated[int | None, typer.Option(help="Stop a question after N examples.")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Most distractions stacked.")] = None,
    max_calls: Annotated[int | None, typer.Option(help="Run-wide ceiling on paid calls.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Run-wide ceiling on cost (USD).")] = None,
    similarity_floor: Annotated[
        float | None, typer.Option(help="Embedding similarity floor; 0 turns it off.")
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint",
            help="Another check a distraction must pass, by name with options (repeatable), "
            f"e.g. judge:model=openai/gpt-4o ({', '.join(CONSTRAINTS)}).",
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Questions searched at once.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="efficient (cheap defaults) | reference (the paper's call pattern)."),
    ] = None,
    proposer_batch: Annotated[
        bool | None,
        typer.Option(
            "--proposer-batch/--no-proposer-batch",
            help="One proposer call per node for all wrong options (default), or one per option.",
        ),
    ] = None,
    judge_last: Annotated[
        bool | None,
        typer.Option(
            "--judge-last/--no-judge-last",
            help="Ask the LLM judge only about examples and nodes to expand (default), or all.",
        ),
    ] = None,
    prefilter: Annotated[
        Path | None,
        typer.Option(help="Enhanceability model from `cdv prefilter train`: skip hopeless ones."),
    ] = None,
    prefilter_threshold: Annotated[
        float | None, typer.Option(help="Skip questions with P(enhanceable) below this.")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (resumable).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any other setting, KEY=VALUE (repeatable): e.g. --set k=3, --set "
            "roles.target.concurrency=64. The config file's keys; `cdv init` lists them.",
        ),
    ] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_gpus_per_worker: RayGpusOption = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Search CDV examples for every question of a dataset against a target model."""
    from cdvkit.api import generate as run_generate
    from cdvkit.executors import executor_from_options
    from cdvkit.models.preflight import PreflightError
    from cdvkit.search.config import parse_settings
    from cdvkit.store import ReadOnlyRunError

    settings = {
        "target": target,
        "proposer": proposer,
        "judge": judge,
        "extractor": extractor,
        "base_url": base_url,
        "split": split,
        "limit": limit,
        "seed": seed,
        "skip_invalid": skip_invalid,
        "strict": strict,
        "protocol": protocol,
        "samples": samples,
        "temperature": temperature,
        "target_prompt": target_prompt,
        "scoring": scoring,
        "threshold": threshold,
        "strategy": strategy,
        "max_expansions": max_expansions,
        "max_good": max_good,
        "max_depth": max_depth,
        "max_calls": max_calls,
        "max_cost": max_cost,
        "similarity_floor": similarity_floor,
        "constraints": constraint or None,
        "concurrency": concurrency,
        "preset": preset,
        "proposer_batch": proposer_batch,
        "judge_last": judge_last,
        "prefilter": str(prefilter) if prefilter is not None else None,
        "prefilter_threshold": prefilter_threshold,
    }
    quiet = quiet or as_json
    try:
        # Dedicated options win over --set, which wins over the config file.
        settings = {
            **parse_settings(set_ or []),
            **{k: v for k, v in settings.items() if v is not None},
        }
        # Where the search runs is not part of the run: a run started here resumes on Ray.
        ex = executor_from_options(executor, ray_address, ray_workers, ray_gpus_per_worker)
        result = run_generate(
            data, run_dir=run_dir, config=config, executor=ex, hooks=CliHooks(quiet), **settings
        )
    except ReadOnlyRunError as exc:
        raise _fail(str(exc.with_fix("pass another --run-dir"))) from None
    except (PreflightError, *USER_ERRORS) as exc:
        raise _fail(str(exc)) from None
    summary = {
        **result.summary,
        "run_dir": str(result.run_dir),
        "stopped": result.stopped,
        "fatal": result.fatal,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    elif not quiet or result.fatal or summary["incomplete"]:
        print_summary(summary)
    if result.fatal:
        raise _fail(result.fatal, 1)
    if result.stopped:
        # The user's own ceiling: no failure, but no complete result either.
        raise _fail(f"stopped early: {result.stopped}. Rerun to continue.", STOPPED_BY_BUDGET)
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

    def loaded(self, result: Any) -> None:
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
        console.print(
            f"[bold]cdv generate[/] {len(questions)} questions, target [cyan]{cfg.target}[/], "
            f"proposer [cyan]{cfg.proposer}[/], judge [cyan]{cfg.judge or 'local checks'}[/], "
            f"run dir [cyan]{run_dir}[/]",
            highlight=False,
        )
        console.print(f"protocol: {cfg.protocol_spec().describe()}", highlight=False)

    def failure(self, failure: dict[str, Any]) -> None:
        self.failures(failure)

    @contextmanager
    def running(self, total: int, done: int, store: Any) -> Iterator[Any]:
        if self.quiet:
            yield None
            return
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[examples]} examples"),
            console=err,
            transient=False,
        ) as progress:
            task = progress.add_task("searching", total=total, completed=done, examples=0)

            def ended(_qid: str, _status: str) -> None:
                progress.update(task, advance=1, examples=len(store.nodes(status="good")))

            yield ended


def print_summary(s: dict[str, Any]) -> None:
    from cdvkit.reporting.tables import summary_rows, usage_row

    t = Table(title="CDV search summary", show_header=False, title_justify="left")
    t.add_column("what")
    t.add_column("value", justify="right")
    rows = summary_rows(s)
    for k, v in rows:
        t.add_row(k, str(v))
    console.print(t)
    if s["by_role"]:
        r = Table(title="Calls and tokens per role", title_justify="left")
        for col in ("role", "calls", "samples", "prompt tokens", "completion tokens", "cost"):
            r.add_column(col, justify="right" if col != "role" else "left")
        for role, u in s["by_role"].items():
            r.add_row(*usage_row(role, u))
        console.print(r)
    if s.get("failures"):
        f = Table(title="Requests refused or failed, by reason", title_justify="left")
        for col in ("kind", "role", "count", "questions", "reason"):
            f.add_column(col, justify="right" if col in ("count", "questions") else "left")
        for g in s["failures"][:15]:
            f.add_row(g["kind"], g["role"], str(g["count"]), str(g["questions"]), g["reason"])
        console.print(f)
    if s.get("protocol"):
        console.print(f"protocol: {s['protocol']}", highlight=False)
    if "run_dir" in s:
        console.print(f"run stored in [cyan]{s['run_dir']}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `generate` to ``app``, replacing any command of that name."""
    add_command(app, "generate", generate)
