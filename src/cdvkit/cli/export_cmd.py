"""`cdv export`: a run's CDV examples in other formats, or as SFT / DPO training data.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cdvkit.cli.common import USER_ERRORS, add_command, console, err, error_exit
from cdvkit.cli.common import fail as _fail


def export_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="jsonl | hf | reference | lm-eval | sft | dpo"),
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Output file or folder; - writes jsonl or reference to stdout."
        ),
    ] = None,
    task_name: Annotated[
        str | None, typer.Option(help="lm-eval: task name (default cdv_<run dir name>).")
    ] = None,
    all_examples: Annotated[
        bool,
        typer.Option("--all-examples", help="lm-eval: every example, not the first per question."),
    ] = False,
    lm_eval_mode: Annotated[
        str,
        typer.Option(
            "--lm-eval-mode",
            help="lm-eval: protocol (the run's protocol, reproduces cdv evaluate's numbers) | "
            "loglik (lm-eval's own: letters by likelihood, gsm8k/triviaqa-style generation).",
        ),
    ] = "protocol",
    chat: Annotated[
        bool,
        typer.Option(
            "--chat",
            help="sft/dpo: conversational rows (messages) for models with a chat template.",
        ),
    ] = False,
    test_share: Annotated[
        float,
        typer.Option(help="sft/dpo: share of ORIGINAL questions held out in the test split."),
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="sft/dpo: seed of the train/test split.")] = 0,
    response: Annotated[
        str,
        typer.Option(
            help="sft/dpo answers: auto (stored replies, else a constructed rationale) | "
            "rationale | short (just 'Answer: X')."
        ),
    ] = "auto",
    first_only: Annotated[
        bool,
        typer.Option("--first-only", help="sft/dpo: only the first example per question."),
    ] = False,
) -> None:
    """Export a run's CDV examples (or SFT / DPO training data split by question)."""
    from cdvkit.export import export_run

    if output is not None and str(output) == "-":
        _export_to_stdout(run, fmt)
        return
    if fmt in ("sft", "dpo"):
        _export_training(run, fmt, output, chat, test_share, seed, response, first_only)
        return
    try:
        # Only the lm-eval writer takes a mode; a plugin format need not accept it.
        options = {"mode": lm_eval_mode} if fmt == "lm-eval" else {}
        res = export_run(run, fmt, output, task=task_name, all_examples=all_examples, **options)
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    what = "questions with examples" if fmt == "reference" else "examples"
    console.print(f"wrote {res.count} {what} to {res.path}", highlight=False)
    if fmt == "lm-eval":
        task = res.files[0].stem.rsplit("_", 1)[0] if res.files else "?"
        as_chat = " --apply_chat_template" if lm_eval_mode == "protocol" else ""
        console.print(
            f"run it with: lm_eval --include_path {res.path} --tasks {task} --model ...{as_chat}"
            f"  (what each task measures: {res.path / 'README.md'})",
            highlight=False,
        )


def _export_to_stdout(run: Path, fmt: str) -> None:
    """`-o -`: the export alone on stdout, the message on stderr."""
    from cdvkit.export import EXPORTERS, TEXT_EXPORTS, export_text

    if fmt not in TEXT_EXPORTS:
        if fmt not in (*EXPORTERS, "sft", "dpo"):
            raise _fail(f"unknown export format {fmt!r} (available: {', '.join(EXPORTERS)})")
        raise _fail(
            f"--format {fmt} writes a folder, not one file: give it one with -o DIR "
            f"(-o - takes {' or '.join(TEXT_EXPORTS)})"
        )
    try:
        text, count = export_text(run, fmt)
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    sys.stdout.write(text)
    sys.stdout.flush()
    what = "questions with examples" if fmt == "reference" else "examples"
    err.print(f"wrote {count} {what} to stdout", highlight=False)


def _export_training(
    run: Path,
    fmt: str,
    output: Path | None,
    chat: bool,
    test_share: float,
    seed: int,
    response: str,
    first_only: bool,
) -> None:
    from cdvkit.mitigation.training_data import TEST_EXAMPLES_FILE, export_training

    try:
        res = export_training(
            run,
            fmt,
            output,
            chat=chat,
            test_share=test_share,
            seed=seed,
            response=response,
            first_only=first_only,
        )
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    console.print(
        f"wrote {res.train} {fmt.upper()} rows ({len(res.train_questions)} questions) to "
        f"{res.path / 'train.jsonl'} and {res.test} ({len(res.test_questions)} held-out "
        f"questions) to {res.path / 'test.jsonl'}",
        highlight=False,
    )
    for line in res.summary():  # where chosen / rejected came from (also in split.json)
        console.print(line, highlight=False)
    console.print(
        f"train:    cdv train --data {res.path} --model hf/<base> --method {fmt}\n"
        f"evaluate: cdv evaluate --examples {res.path / TEST_EXAMPLES_FILE} "
        "--models hf/<base> hf/<trained>",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `export` to ``app``, replacing any command of that name."""
    add_command(app, "export", export_command)
