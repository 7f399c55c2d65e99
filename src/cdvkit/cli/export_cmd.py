"""`cdv export`: a run's CDV examples in other formats, or as SFT / DPO training data.

Every format is a registered part (``cdvkit.export.EXPORTERS``): this command knows none of them
by name. A format's options come as the flags below (those of the built-in formats) or as
``--format NAME:key=value``; its help and options end ``cdv export --help``.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperCommand

from cdvkit.cli.common import USER_ERRORS, add_command, console, err, error_exit
from cdvkit.cli.common import fail as _fail

# The flags that set a format's option: parameter -> (flag, option name).
FLAG_OPTIONS = {
    "task_name": ("--task-name", "task"),
    "all_examples": ("--all-examples", "all_examples"),
    "lm_eval_mode": ("--lm-eval-mode", "mode"),
    "chat": ("--chat", "chat"),
    "test_share": ("--test-share", "test_share"),
    "seed": ("--seed", "seed"),
    "response": ("--response", "response"),
    "first_only": ("--first-only", "first_only"),
}


def export_command(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl | hf | reference | lm-eval | sft | dpo | a plugin's; NAME:key=value "
            "sets its options (every format and its options: at the end of this help).",
        ),
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
    from cdvkit.export import EXPORTERS, export_run
    from cdvkit.registry import parse_spec

    try:
        name, options = parse_spec(fmt)
        exporter = EXPORTERS.get(name)
        options = {**_flag_options(ctx, name, exporter.options), **options}
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    if output is not None and str(output) == "-":
        _export_to_stdout(run, name, exporter, options)
        return
    try:
        res = export_run(run, name, output, **options)
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    for line in exporter.report(res):
        console.print(line, highlight=False, markup=False)
    print_commands(res.commands)


def print_commands(commands: list[tuple[str, str]]) -> None:
    """Each command to paste whole on a line of its own, after what it does: never wrapped
    (a long one runs past the edge and the terminal folds it, so it still pastes as one)."""
    for what, command in commands:
        console.print(f"{what}:", highlight=False, markup=False)
        console.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)


def _flag_options(ctx: typer.Context, fmt: str, declared: Any) -> dict[str, Any]:
    """The options the flags given on the command line set; a flag for an option the format
    does not take is a mistake (it would silently do nothing)."""
    out: dict[str, Any] = {}
    for param, (flag, option) in FLAG_OPTIONS.items():
        source = ctx.get_parameter_source(param)
        if source is None or source.name == "DEFAULT":  # left out: the format's default
            continue
        if option not in declared:
            takes = ", ".join(declared) or "none"
            raise ValueError(f"{flag} does not apply to --format {fmt} (its options: {takes})")
        out[option] = ctx.params[param]
    return out


def _export_to_stdout(run: Path, fmt: str, exporter: Any, options: dict[str, Any]) -> None:
    """`-o -`: the export alone on stdout, the message on stderr."""
    from cdvkit.export import TEXT_EXPORTS, export_text

    if exporter.text is None:
        kind = (
            "writes a folder, not one file: give it one with -o DIR"
            if exporter.folder
            else "cannot go to stdout: give it a file with -o FILE"
        )
        raise _fail(f"--format {fmt} {kind} (-o - takes {' or '.join(TEXT_EXPORTS)})")
    try:
        text, count = export_text(run, fmt, **options)
    except USER_ERRORS as exc:
        raise error_exit(exc) from None
    sys.stdout.write(text)
    sys.stdout.flush()
    err.print(f"wrote {count} {exporter.counts} to stdout", highlight=False)


def formats_help() -> str:
    """Every registered format, what it writes, and its options (default: help)."""
    from cdvkit.export import EXPORTERS

    blocks = ["Formats (a plugin adds its own: README, How to add a part):"]
    for e in EXPORTERS.entries():
        where = "a folder" if e.value.folder else "a file" + (", or -o -" if e.value.text else "")
        lines = [f"{e.name}: {e.help} ({where})"]
        lines += [f"  {k}={o.default!r}: {o.help}" for k, o in e.value.options.items()]
        blocks.append("\n".join(lines))
    # One paragraph per format; its text is the plugin's, never markup.
    return escape("\n\n".join(blocks))


class ExportCommand(TyperCommand):
    """`cdv export`, whose help ends with the formats registered when it is shown: listing them
    loads the plugins' formats, which no other command should pay for."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.epilog = formats_help()
        super().format_help(ctx, formatter)


def register(app: typer.Typer) -> None:
    """Add `export` to ``app``, replacing any command of that name."""
    add_command(app, "export", export_command, cls=ExportCommand)
