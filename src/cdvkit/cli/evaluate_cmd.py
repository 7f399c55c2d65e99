"""`cdv evaluate`: accuracy of models on original vs. distracted questions.

Registered on the main app with ``register(app)``; consoles and error reporting come from
``cdvkit.cli.common``, so this module never imports the app (no import cycle).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
from cdvkit.cli.eval_tables import print_defense_comparison, print_evaluation


def split_models(values: list[str]) -> list[str]:
    """`--models a b`, `--models a --models b` and `--models a,b` all name the same two models."""
    out: list[str] = []
    for v in values:
        out += [m.strip() for m in v.split(",") if m.strip()]
    return list(dict.fromkeys(out))


def parse_examples_arg(value: str) -> tuple[str, str | None]:
    """`PATH` or `LABEL=PATH` (the label names the row of the transfer matrix)."""
    if "=" in value and not Path(value).exists():
        label, path = value.split("=", 1)
        return path, label or None
    return value, None


def default_eval_dir(paths: list[str]) -> Path:
    digest = hashlib.sha256(json.dumps(sorted(paths)).encode()).hexdigest()[:8]
    return Path("runs") / f"eval-{digest}"


def evaluate_command(
    ctx: typer.Context,
    run: Annotated[
        list[Path] | None,
        typer.Option("--run", help="Run directory whose examples to evaluate (repeatable)."),
    ] = None,
    examples: Annotated[
        list[str] | None,
        typer.Option(
            "--examples",
            help="cdvkit JSONL or the reference's JSON output; PATH or LABEL=PATH (repeatable).",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Models to evaluate: --models M1 M2 ..., or comma-separated, or repeated.",
        ),
    ] = None,
    defense: Annotated[
        list[str] | None,
        typer.Option(
            "--defense",
            help="none | ignore-irrelevant | cot | a system prompt file (PATH or file:PATH); "
            "repeat to compare defenses side by side.",
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="sample (n step-by-step answers; right when one is) | exact (the most likely "
            "choice). Default: the first --run's protocol, else sample."
        ),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Protocol: answers per question (default: the run's, or 5).")
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="Protocol: sampling temperature (default: the run's, or 0.01)."),
    ] = None,
    target_prompt: Annotated[
        str | None, typer.Option(help="Protocol: letter | paper (default: the run's, or letter).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Exact protocol: wrong only when P(correct) is also below this."),
    ] = None,
    scoring: Annotated[
        str | None, typer.Option(hidden=True, help="Old name of --protocol.")
    ] = None,
    all_examples: Annotated[
        bool, typer.Option("--all-examples", help="Every example per question, not the first.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Where answers and evaluation.json go (default: the first --run)."),
    ] = None,
    extractor: Annotated[
        str | None, typer.Option(help="provider/model mapping unparsable answers to a choice.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible server.")
    ] = None,
    max_calls: Annotated[
        int | None, typer.Option(help="Ceiling on paid calls for this command.")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(help="Ceiling on cost (USD) for this command.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Answers requested at once.")] = 16,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_gpus_per_worker: RayGpusOption = 0.0,
    bootstrap: Annotated[int, typer.Option(help="Paired bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Accuracy of models on original vs. distracted questions, with paired statistics."""
    from cdvkit.evaluation import (
        EvalSettings,
        check_eval_models,
        evaluate,
        from_run_dir,
        load_examples_file,
        resolve_defense,
        run_protocol,
        save_evaluation,
    )
    from cdvkit.executors import executor_from_options
    from cdvkit.models.budget import Budget
    from cdvkit.models.errors import BudgetExceeded, ModelError
    from cdvkit.models.preflight import PreflightError
    from cdvkit.protocol import Protocol
    from cdvkit.store import ReadOnlyRunError, RunStore

    extra = list(ctx.args)
    stray = [a for a in extra if a.startswith("-")]
    if stray:
        raise _fail(f"unknown option(s): {' '.join(stray)}")
    model_list = split_models([*(models or []), *extra])
    if not model_list:
        raise _fail("give the models to evaluate: --models provider/model [provider/model ...]")
    runs = list(run or [])
    files = list(examples or [])
    if not runs and not files:
        raise _fail("give the examples to evaluate: --run DIR and/or --examples FILE")
    quiet = quiet or as_json
    try:
        defenses = [resolve_defense(d) for d in (defense or ["none"])]
        ex = executor_from_options(executor, ray_address, ray_workers, ray_gpus_per_worker)
        results_dir = out or (runs[0] if runs else default_eval_dir(files))
        for r in runs:
            if not (r / "run.db").exists():
                raise FileNotFoundError(f"{r} holds no cdvkit run (run.db is missing)")
        # Every input is read before anything is written: a malformed file leaves nothing behind.
        sets = [from_run_dir(r) for r in runs]
        for f in files:
            path, label = parse_examples_arg(f)
            sets.append(load_examples_file(path, label))
        base = run_protocol(runs[0]) if runs else Protocol()
        chosen = protocol or ("sample" if scoring == "auto" else scoring)
        settings = EvalSettings(
            samples=samples if samples is not None else base.samples,
            temperature=temperature if temperature is not None else base.temperature,
            scoring=chosen or base.scoring,
            prompt=target_prompt or base.prompt,
            threshold=threshold if threshold is not None else base.threshold,
            all_examples=all_examples,
            resamples=bootstrap,
            seed=seed,
            concurrency=concurrency,
        )
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        raise _fail(
            f"two example sets share the label {labels!r}; name them with --examples LABEL=PATH"
        )
    for s in sets:
        if s.skipped and not quiet:
            err.print(f"[yellow]{s.path}: left out {len(s.skipped)} entries[/]")
            for why in s.skipped[:10]:
                err.print(f"  {why}", highlight=False, markup=False)
    if not any(s.items for s in sets):
        raise _fail("no question with a CDV example to evaluate")
    try:
        backends, ext_model = asyncio.run(
            check_eval_models(model_list, extractor, base_url, concurrency)
        )
    except PreflightError as exc:
        raise _fail(str(exc)) from None
    if ex.distributed:
        backends, ext_model = {}, None  # Ray workers build their own
    try:
        store = RunStore(results_dir)
    except ReadOnlyRunError as exc:
        fix = "choose another --out" if out is not None else "pass --out DIR to write elsewhere"
        raise _fail(str(exc.with_fix(fix))) from None
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        console.print(f"protocol: {settings.protocol().describe()}", highlight=False)
    entries: list[dict[str, Any]] = []
    with store:
        store.on_failure = FailurePrinter()
        budget = Budget(max_calls, max_cost)
        for d in defenses:
            paid_before = store.paid_calls("evaluate")
            cost_before = store.total_cost("evaluate")
            try:
                entry = _run_one(
                    evaluate,
                    sets,
                    model_list,
                    store,
                    d,
                    settings,
                    budget,
                    ext_model or extractor,
                    base_url,
                    quiet,
                    executor=ex,
                    backends=backends,
                )
            except BudgetExceeded as exc:
                raise _fail(
                    f"stopped: {exc}. Answers so far are stored; rerun to continue.", 1
                ) from None
            except (*USER_ERRORS, ModelError) as exc:
                raise _fail(str(exc), 1) from None
            # This evaluation's own paid calls (the search's are the run summary's).
            entry["paid_calls"] = store.paid_calls("evaluate") - paid_before
            entry["cost"] = store.total_cost("evaluate") - cost_before
            save_evaluation(results_dir, entry)
            entries.append(entry)
    if as_json:
        print(json.dumps({"results_dir": str(results_dir), "evaluations": entries}, indent=2))
        return
    for entry in entries:
        print_evaluation(entry)
    if len(entries) > 1:
        print_defense_comparison(entries)
    console.print(f"results written to [cyan]{Path(results_dir) / 'evaluation.json'}[/]")


def _run_one(
    evaluate: Any,
    sets: list[Any],
    models: list[str],
    store: Any,
    defense: Any,
    settings: Any,
    budget: Any,
    extractor: Any,
    base_url: str | None,
    quiet: bool,
    executor: Any = None,
    backends: dict[str, Any] | None = None,
) -> dict[str, Any]:
    kwargs = dict(
        store=store,
        defense=defense,
        settings=settings,
        budget=budget,
        extractor=extractor,
        base_url=base_url,
        executor=executor,
        backends=backends,
    )
    if quiet:
        return asyncio.run(evaluate(sets, models, **kwargs))
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[cached]} cached"),
        console=err,
    ) as progress:
        task = progress.add_task(f"evaluating ({defense.label})", total=None, cached=0)

        def update(p: Any) -> None:
            progress.update(task, total=p.total, completed=p.done, cached=p.cached)

        return asyncio.run(evaluate(sets, models, on_progress=update, **kwargs))


def register(app: typer.Typer) -> None:
    """Add `evaluate` to ``app``, replacing any command of that name."""
    add_command(
        app,
        "evaluate",
        evaluate_command,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )
