"""Where cdv may put an output, and how it writes one.

Every file or folder a command writes beside a run store (a report, plots, an export, training
data, a config file, a saved prefilter) goes through here, so two promises hold for all of them:

- **An output never lands on a run store.** A path that is a store's own file (``run.db``, its
  ``-wal``/``-shm``/``-journal``, ``run.lock``), a folder output that would be a run directory,
  or a path inside a run directory other than the one the command reads, is refused before
  anything is written (:class:`OutputError`: one line naming the path and why). A command may
  write into the run it reads (``RUN/report.html``, ``RUN/hf_dataset``): those are its outputs.
- **An output is whole or absent.** A file is written to a temporary file in the same folder
  and renamed into place (``os.replace``), so an interrupted write leaves the old file as it was.
  A folder is built in a temporary sibling folder: a new folder is renamed into place in one
  step; an existing folder gets each file replaced whole (``os.replace``), and keeps the files it
  already held that the output does not write (a ``--png .`` must never empty the working
  directory, which swapping the whole folder would).

An OS error while writing (permission denied, a full disk, a folder where a file goes) is an
:class:`OutputError` too, worded for the user: never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cdvkit.store.schema import DB_NAME, LOCK_NAME

# The files of a run store: no output is ever written over one of them.
STORE_FILES = frozenset(
    {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", LOCK_NAME}
)
TMP_SUFFIX = ".cdv-tmp"

# Exit codes a command gives an output it could not write: a refused or unusable path is the
# user's to change (2); a full disk is the machine's state, as for a run (1).
USAGE = 2
DISK_FULL = 1


class OutputError(ValueError):
    """An output cdv will not or cannot write; ``str()`` is one line naming the path and why.

    ``code`` is the exit code a command gives it (2, or 1 for a full disk)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def os_reason(exc: OSError) -> str:
    """An OS error in a few words a user can act on (no errno, no repr of the path)."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.EISDIR: "it is a folder, where a file is needed",
        errno.ENOTDIR: "a part of the path is a file, where a folder is needed",
        errno.EEXIST: "something else already exists there",
        errno.ENAMETOOLONG: "the name is too long",
    }
    return reasons.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()


def write_failed(path: str | Path, exc: OSError) -> OutputError:
    """The OutputError for ``exc``, raised while writing the output ``path``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(
            f"disk full: cannot write {path} ({os_reason(exc)}); free space and rerun", DISK_FULL
        )
    return OutputError(f"cannot write {path}: {os_reason(exc)}")


def run_dir_of(path: str | Path) -> Path | None:
    """The run directory ``path`` is, or lies in (the nearest folder holding a run store)."""
    real = Path(os.path.realpath(path))
    for folder in (real, *real.parents):
        if (folder / DB_NAME).exists():
            return folder
    return None


def check_output(path: str | Path, *, run: str | Path | None = None, folder: bool = False) -> Path:
    """Refuse ``path`` as an output (OutputError) unless cdv may write it; return its real path.

    ``run`` is the run directory the command reads: its outputs may go inside it. ``folder``:
    the output is a folder, not one file. Nothing is written either way.
    """
    given = Path(path)
    real = Path(os.path.realpath(given))
    for name in dict.fromkeys((given.name, real.name)):
        if name in STORE_FILES:
            if (real.parent / DB_NAME).exists():
                what = f"a file of the run store in {real.parent}"
            else:
                what = f"named like a run store's file ({name})"
            raise OutputError(
                f"refused to write {given}: it is {what}, which no output may replace; "
                "choose another path"
            )
    own = Path(os.path.realpath(run)) if run is not None else None
    holder = run_dir_of(real)
    if holder is not None and holder == real and real.is_dir():
        if not folder:
            raise OutputError(
                f"cannot write {given}: it is a run directory, where a file is needed"
            )
        inside = f" (e.g. {given / 'export'})" if holder == own else ""
        raise OutputError(
            f"refused to write {given}: it is a run directory; give the output a folder of its "
            f"own{inside}"
        )
    if holder is not None and holder != own:
        reads = f" (this command reads {run})" if run is not None else ""
        raise OutputError(
            f"refused to write {given}: it is inside the run directory {holder}, which only "
            f"that run's own commands write{reads}; choose a path outside it"
        )
    if not folder and real.exists() and not real.is_file() and not real.is_dir():
        # A device or a pipe (/dev/stdout, /dev/null): written in place, if this user may.
        if not _can_write(real):
            raise OutputError(f"cannot write {given}: permission denied")
        return real
    if folder and real.exists() and not real.is_dir():
        raise OutputError(f"cannot write {given}: it is a file, where a folder is needed")
    if not folder and real.is_dir():
        raise OutputError(f"cannot write {given}: it is a folder; give a file name inside it")
    existing = real if folder and real.is_dir() else real.parent
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {given}: {existing} is a file, where a folder is needed")
    if not _can_write(existing):
        raise OutputError(f"cannot write {given}: permission denied ({existing} is not writable)")
    if not folder and real.is_file() and not _can_write(real):
        raise OutputError(f"cannot write {given}: permission denied (the file is read-only)")
    return real


def _can_write(path: Path) -> bool:
    mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def _tmp_name(final: Path) -> Path:
    # Hidden, beside the output (same file system, so the rename is atomic), and unique.
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


@contextmanager
def atomic_file(
    path: str | Path, *, run: str | Path | None = None, binary: bool = False
) -> Iterator[IO[Any]]:
    """Write the file ``path`` whole or not at all: yields a handle on a temporary file beside it,
    renamed over ``path`` when the block ends without an error.

    ``path`` is checked first (:func:`check_output`, with ``run`` the run the command reads). A
    device or pipe (``/dev/stdout``, ``/dev/null``) is written in place: it cannot be renamed
    over. Any OSError becomes an OutputError naming ``path``.
    """
    final = check_output(path, run=run)
    mode = "wb" if binary else "w"
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        if final.exists() and not final.is_file():  # a device, a pipe: nothing to rename over
            with open(final, mode, **text) as handle:
                yield handle
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(final)
        # 0o666 under the umask, as open() gives a new file; an existing file keeps its mode.
        perms = stat.S_IMODE(final.stat().st_mode) if final.exists() else 0o666
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perms)
        try:
            if final.exists():
                os.chmod(tmp, perms)
            with os.fdopen(fd, mode, **text) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        raise write_failed(path, exc) from None


def write_text(path: str | Path, text: str, *, run: str | Path | None = None) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`); returns ``path``."""
    with atomic_file(path, run=run) as f:
        f.write(text)
    return Path(path)


def write_jsonl(
    path: str | Path, rows: Iterable[dict[str, Any]], *, run: str | Path | None = None
) -> int:
    """Write ``rows`` to ``path`` atomically, one JSON object a line; returns how many."""
    n = 0
    with atomic_file(path, run=run) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def jsonl_lines(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to ``path`` plainly (a file inside a folder :func:`atomic_folder` builds,
    which is made whole as a folder); returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


@contextmanager
def atomic_folder(path: str | Path, *, run: str | Path | None = None) -> Iterator[Path]:
    """Build the folder ``path``: yields a temporary sibling folder to write into, which becomes
    ``path`` when the block ends without an error (see the module's docstring for how it meets
    an existing folder). On an error nothing of it is left, and ``path`` is as it was.
    """
    final = check_output(path, run=run, folder=True)
    tmp = _tmp_name(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(tmp)
        try:
            yield tmp
            if final.is_dir():
                _merge(tmp, final)
            else:
                os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise write_failed(path, exc) from None


def _merge(src: Path, dest: Path) -> None:
    """Move what ``src`` holds into the folder ``dest``, each file replacing its namesake."""
    for entry in sorted(src.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.is_dir() and not target.is_symlink():
                _merge(entry, target)
                continue
            if target.exists() or target.is_symlink():
                raise OSError(errno.EEXIST, f"{target} is in the way", str(target))
            os.rename(entry, target)
        else:
            os.replace(entry, target)
