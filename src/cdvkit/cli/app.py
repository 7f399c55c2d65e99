"""The `cdv` command line: the app, and the command modules registered on it."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cdvkit.cli.common import (
    console,
    exit_interrupted,
    was_interrupted,
)
from cdvkit.version import __version__

app = typer.Typer(
    name="cdv",
    help="Find, measure and repair Contextual Distraction Vulnerability in LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"cdvkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """cdv: generate CDV examples, evaluate models on them, report and export."""


def _register_commands() -> None:
    from cdvkit.cli import (
        evaluate_cmd,
        export_cmd,
        generate_cmd,
        init_cmd,
        listing_cmd,
        prefilter_cmd,
        prompts_cmd,
        report_cmd,
        show_cmd,
        train_cmd,
    )

    # One module per command; the order here is the order `cdv --help` lists them in.
    for module in (
        init_cmd,
        generate_cmd,
        prompts_cmd,
        show_cmd,
        listing_cmd,
        evaluate_cmd,
        report_cmd,
        export_cmd,
        train_cmd,
        prefilter_cmd,
    ):
        module.register(app)


_register_commands()


def main() -> None:
    # Library progress bars (weight loading, hub downloads) would interleave with our own.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except KeyboardInterrupt:
        exit_interrupted(sys.argv)
    except SystemExit as exc:
        # typer turns Ctrl-C into a silent exit 130 (click: "Aborted!", exit 1); the
        # KeyboardInterrupt is still in the exception chain.
        if was_interrupted(exc):
            exit_interrupted(sys.argv)
        raise


if __name__ == "__main__":
    main()
