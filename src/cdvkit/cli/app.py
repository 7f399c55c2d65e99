"""The `cdv` command line: the app, and the command modules registered on it."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
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


# The signal that stopped this process, once one did (SIGINT unless SIGTERM came).
_stopped_by = signal.SIGINT


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (``kill``, a scheduler or container stopping the job) ends a command as Ctrl-C
    does: the run unwinds, its store is left consistent and the user is told how to resume.

    It goes through the SIGINT handler in force, so it meets the same path as Ctrl-C: within
    ``asyncio.run``, asyncio's handler, which cancels the run's task and then raises
    KeyboardInterrupt; elsewhere Python's, which raises it at once. Where SIGINT is ignored (a
    background job), KeyboardInterrupt is raised directly.
    """
    global _stopped_by
    _stopped_by = signal.Signals(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main() -> None:
    # Library progress bars (weight loading, hub downloads) would interleave with our own.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        app()
    except KeyboardInterrupt:
        exit_interrupted(sys.argv, _stopped_by)
    except SystemExit as exc:
        # typer turns Ctrl-C into a silent exit 130 (click: "Aborted!", exit 1); the
        # KeyboardInterrupt is still in the exception chain.
        if was_interrupted(exc):
            exit_interrupted(sys.argv, _stopped_by)
        raise


if __name__ == "__main__":
    main()
