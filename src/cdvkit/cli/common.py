"""What every `cdv` command shares: its consoles and how an error the user can act on is shown.

A module of its own so each command module can import it without importing the app (no cycle).
"""

from __future__ import annotations

import errno
import inspect
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cdvkit.cli.safe_text import SafeConsole

# Model and data text printed through these shows its control characters, never obeys them.
console = SafeConsole()
err = SafeConsole(stderr=True)


class EtaColumn(TimeRemainingColumn):
    """ "eta H:MM:SS" from the pace so far ("eta ?" before there is one), "took H:MM:SS" once
    done: the same width either way, so the columns after it stay put."""

    def render(self, task: Task) -> Text:
        if task.finished_time is not None:
            return Text(f"took {_clock(task.finished_time)}", style="progress.elapsed")
        if task.total is not None and task.completed >= task.total:
            # Done before it started (a resumed run with nothing left): nothing was timed.
            return Text("done", style="progress.elapsed")
        left = task.time_remaining
        return Text("eta " + ("?" if left is None else _clock(left)), style="progress.remaining")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def progress_bar(count: str) -> Progress:
    """The progress bar every long command shows on stderr: what it does, the bar, done/total,
    the time left (from the pace so far), then ``count`` (a template over the task's fields,
    such as ``"{task.fields[examples]} examples"``). Narrow enough for 80 columns."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=12),
        MofNCompleteColumn(),
        EtaColumn(),
        TextColumn(count),
        console=err,
    )


# Errors a user can act on (a bad option or file, a missing extra): one line, never a traceback.
# OSError last: a file system refusal that no more precise error words (see os_error) is still
# one line, naming the path, rather than a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    RuntimeError,
    ImportError,
    OSError,
)


def os_error(exc: OSError) -> str:
    """An OSError as one line a user can act on: the path, then what is wrong with it."""
    from cdvkit.store.outputs import os_reason

    path, reason = exc.filename, os_reason(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: {path or 'a file'} could not be written; free space and rerun"
    return f"{path}: {reason}" if path is not None else reason


def error_exit(exc: BaseException) -> typer.Exit:
    """Print the error ``exc`` (one of USER_ERRORS) in one line; return the exit to raise: 1
    for a full disk (the machine's state), else 2 (the user's input)."""
    from cdvkit.store import DiskFullError, OutputError

    if isinstance(exc, OutputError):
        return fail(str(exc), exc.code)
    if isinstance(exc, DiskFullError):
        return fail(str(exc), 1)
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        return fail(os_error(exc), 1 if full else 2)
    return fail(str(exc))


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    # Messages often start with "[provider/model]", which rich would read as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


# Commands whose work is stored as it is done, so rerunning them after Ctrl-C resumes.
RESUMABLE_COMMANDS = ("generate", "evaluate")


def was_interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt (Ctrl-C)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def exit_interrupted(argv: list[str], signum: int = 2) -> NoReturn:
    """Say how to go on after Ctrl-C (``signum`` 2, SIGINT) or SIGTERM (15), which stop a
    command alike, and exit with 128 + ``signum``: 130 or 143, as a shell reports them."""
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    if command in RESUMABLE_COMMANDS:
        err.print("interrupted: the run is saved; rerun the same command to resume")
    else:
        err.print("interrupted")
    sys.exit(128 + int(signum))


def _command_name(info: Any) -> str | None:
    if info.name:
        return info.name
    cb = getattr(info, "callback", None)
    return cb.__name__.replace("_", "-") if cb else None


def add_command(app: typer.Typer, name: str, callback: Any, **settings: Any) -> None:
    """Register ``callback`` as `name` on ``app``, replacing any command of that name (so a
    command module registered twice does not list its command twice)."""
    app.registered_commands = [c for c in app.registered_commands if _command_name(c) != name]
    app.command(name, **settings)(callback)


# Where the work runs: the same options on every command that can run on Ray, in a help panel of
# their own (so --ray-gpus-per-worker is not cut at 80 columns by a neighbour's --no-x column).
WHERE_PANEL = "Where it runs"
ExecutorOption = Annotated[
    str,
    typer.Option(
        help="local (this process) | ray (a pool of Ray actors).", rich_help_panel=WHERE_PANEL
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster: 'auto' (ray start), an address; default a local Ray.",
        rich_help_panel=WHERE_PANEL,
    ),
]
RayWorkersOption = Annotated[
    int | None,
    typer.Option(
        help="Ray actors (default: cluster CPUs / 1 per worker).", rich_help_panel=WHERE_PANEL
    ),
]
RayGpusOption = Annotated[
    float,
    typer.Option(
        help="GPUs each Ray actor reserves (local hf/ models on GPU).",
        rich_help_panel=WHERE_PANEL,
    ),
]


class FailurePrinter:
    """Prints the first occurrence of each distinct failure as it happens (the summary counts
    them all), so a run that is failing says why at once instead of after the fact. It writes to
    stderr in every mode, --quiet and --json included: stdout stays the summary's."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, failure: dict[str, Any]) -> None:
        from cdvkit.reporting.summary import failure_reason

        key = (failure["kind"], failure["role"], failure_reason(failure["error"]))
        if failure.get("stops_run") or key in self.seen:
            return  # a failure that stops the run is the run's own last word
        self.seen.add(key)
        what = {
            "retried": "a request failed, retrying",
            "refused": "a request was refused",
            "lost": "a call failed for good",
        }.get(failure["kind"], failure["kind"])
        err.print(
            f"[yellow]{what}[/] ({failure['role']}): {escape(failure['error'])}",
            highlight=False,
            soft_wrap=True,
        )


# --- options made from a settings declaration (SearchConfig, EvalConfig) ----------------------
def setting_option(
    name: str,
    hint: Any,
    default: Any,
    metadata: Any,
    *,
    metavar: str | None,
    panel: str | None,
    show_default: bool = True,
) -> inspect.Parameter:
    """The command-line option of one declared setting: its spelling (``flag``) and help come
    from the declaration's ``metadata``, so the command declares none of them itself."""
    decls = [metadata["flag"]] if metadata.get("flag") else []
    option = typer.Option(
        *decls,
        help=metadata["help"],
        metavar=metavar,
        rich_help_panel=panel,
        **({} if show_default else {"show_default": False}),
    )
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, option]
    )


def with_options(command: Any, options: list[inspect.Parameter], *, after: int = 0) -> Any:
    """``command`` taking ``options`` as well, placed after its first ``after`` parameters (a
    typer context) and before its own options; typer reads the signature this leaves."""
    sig = inspect.signature(command, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    rest = [p.replace(kind=p.KEYWORD_ONLY) for p in own[after:]]
    params = [*own[:after], *options, *rest]
    command.__signature__ = sig.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return command
