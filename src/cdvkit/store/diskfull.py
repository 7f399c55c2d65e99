"""A full disk under a run store: the run stops with one message, the store stays whole.

SQLite reports a disk (or quota) that cannot take the next page as SQLITE_FULL, from whichever
write meets it: a cached call, a node, a question's status. The writer's connection turns that,
wherever it happens, into :class:`DiskFullError`, after rolling back the transaction it cut (so
the store keeps whole transactions only, as after a kill), with the number of questions whose
result is kept (and of evaluation answers, in a store that holds them). A rerun, once there is
space, resumes from there.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from pathlib import Path
from typing import Any

from cdvkit.store.status import UNFINISHED


class DiskFullError(RuntimeError):
    """The disk under a run store is full; ``str()`` is the one line the run stops with."""

    def __init__(self, run_dir: str | Path, kept: int, answers: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.kept = kept
        self.answers = answers  # evaluation answers kept (an evaluation's store)
        # Said in what the store holds: an evaluation's own store holds answers, not questions.
        what = [f"{kept} questions"] if kept or not answers else []
        what += [f"{answers} evaluation answers"] if answers else []
        super().__init__(
            f"disk full: {' and '.join(what)} kept, free space and rerun the same command to "
            f"resume (run directory {self.run_dir})"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return (code & 0xFF) == sqlite3.SQLITE_FULL
        return "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def kept_questions(db: sqlite3.Connection) -> int:
    """Questions with a result in the store (0 when it holds none, or no table yet)."""
    marks = ",".join("?" * len(UNFINISHED))
    try:
        row = sqlite3.Connection.execute(
            db, f"SELECT COUNT(*) FROM questions WHERE status NOT IN ({marks})", tuple(UNFINISHED)
        ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


def kept_answers(db: sqlite3.Connection) -> int:
    """Evaluation answers in the store (0 when it holds none, or no table yet)."""
    try:
        row = sqlite3.Connection.execute(db, "SELECT COUNT(*) FROM evaluations").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


class WriterConnection(sqlite3.Connection):
    """The connection of a writable RunStore: a full disk is a DiskFullError, whatever wrote."""

    run_dir: Path

    def _full(self) -> DiskFullError:
        if self.in_transaction:
            # The cut transaction goes whole, so the store holds whole transactions only.
            with contextlib.suppress(sqlite3.Error):
                sqlite3.Connection.execute(self, "ROLLBACK")
        return DiskFullError(self.run_dir, kept_questions(self), kept_answers(self))

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql[:8].upper() == "ROLLBACK" and not self.in_transaction:
            # Already rolled back by _full (or by SQLite itself): the caller's own rollback
            # must not hide the DiskFullError behind "no transaction is active".
            return self.cursor()
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise self._full() from exc
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise self._full() from exc
            raise

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise self._full() from exc
            raise
