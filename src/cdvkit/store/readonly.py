"""Reading a run that cdv may not (or must not) write.

A report or an export of someone else's run, or of a run on a read-only mount, must neither fail
with a sqlite traceback nor leave a lock, journal or schema change behind. Detecting that a run
cannot be written lives here, in one place, so every command words the same problem alike.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cdvkit.store.schema import DB_NAME


class ReadOnlyRunError(RuntimeError):
    """cdv was asked to write to a run directory (or a run store) it can only read.

    ``str()`` is one line: what is read-only, then ``fix``. A command words its own fix with
    ``with_fix`` (e.g. "pass --out DIR"); the detection stays in one place, the store.
    """

    def __init__(
        self,
        path: str | Path,
        fix: str = "use another --run-dir or --out",
        *,
        reason: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason or f"run directory {self.path} is read-only: cdv cannot write there"
        super().__init__(f"{self.reason}; {fix}")

    def with_fix(self, fix: str) -> ReadOnlyRunError:
        return ReadOnlyRunError(self.path, fix, reason=self.reason)


def can_write(path: Path) -> bool:
    """Whether this process may write ``path`` (a directory: create files in it)."""
    mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def is_readonly_error(exc: sqlite3.Error) -> bool:
    """SQLITE_READONLY and its extended codes (READONLY_DIRECTORY, READONLY_CANTINIT, ...)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_READONLY


def check_writable_output(out: str | Path, run_dir: str | Path, fix: str) -> None:
    """Raise ReadOnlyRunError when ``out``, a default output inside ``run_dir``, can't be written.

    A run directory that does not exist is left to the reader to report.
    """
    run, target = Path(run_dir), Path(out)
    if not run.is_dir():
        return
    existing = target
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not can_write(existing):
        raise ReadOnlyRunError(
            run, fix, reason=f"run directory {run} is read-only: cdv cannot write {target} there"
        )


class ReadOnlyConnection(sqlite3.Connection):
    """The connection of a read-only RunStore: a write fails with ReadOnlyRunError.

    The database is opened with ``mode=ro`` (or ``immutable=1``), so SQLite refuses every write
    with SQLITE_READONLY; this only turns that into a clear error instead of a sqlite traceback.
    """

    run_dir: Path

    def _refused(self) -> ReadOnlyRunError:
        return ReadOnlyRunError(
            self.run_dir,
            "open it with RunStore(run_dir) (not readonly=True) to write",
            reason=f"the run store in {self.run_dir} was opened read-only; it cannot be written",
        )

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_readonly_error(exc):
                raise self._refused() from exc
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_readonly_error(exc):
                raise self._refused() from exc
            raise

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.OperationalError as exc:
            if is_readonly_error(exc):
                raise self._refused() from exc
            raise


def connect_readonly(run_dir: Path) -> sqlite3.Connection:
    """Open run.db for reading only: cdv adds no lock, journal mode or schema.

    Only SQLite itself may add the -wal/-shm it needs to read beside a writer, and only in a
    directory this process can write; a read-only directory is left exactly as it is.
    """
    db_path = run_dir.resolve() / DB_NAME
    if can_write(run_dir):
        # A directory we may write: an ordinary connection that refuses writes, so SQLite
        # removes the -wal/-shm it needed when the last connection closes, as after any run
        # (mode=ro would leave them behind in every run a report was made of).
        db = _connect(f"file:{quote(str(db_path))}", run_dir)
        sqlite3.Connection.execute(db, "PRAGMA query_only = 1")
        return db
    uri = f"file:{quote(str(db_path))}?mode=ro"
    db = _connect(uri, run_dir)
    try:
        # The first statement opens the WAL: here is where a read-only directory fails (the
        # plain execute: the error is looked at here, not turned into ReadOnlyRunError).
        sqlite3.Connection.execute(db, "SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        db.close()
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or can_write(run_dir):
            raise
    # SQLite cannot read a WAL database with mode=ro unless it can open (or create) the -shm
    # and -wal files, which a read-only directory forbids. immutable=1 reads run.db alone,
    # with no locks and no -shm. That is safe here: we only get here when this process cannot
    # write the directory, and only when no -wal with content exists, so run.db holds every
    # committed transaction (an open or crashed writer always leaves a -wal, and a directory
    # with both -wal and -shm is read by mode=ro above). No cdv process can write a run whose
    # directory it cannot write (RunStore refuses it), so nothing changes run.db while it is
    # read, short of another user with write access starting a run there at that moment.
    wal = db_path.with_name(f"{DB_NAME}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise ReadOnlyRunError(
            run_dir,
            "make the directory writable, or copy the run elsewhere, and retry",
            reason=(
                f"run directory {run_dir} is read-only and its last writer left "
                f"changes in {wal.name} that SQLite cannot read without creating "
                f"{DB_NAME}-shm there"
            ),
        )
    db = _connect(uri + "&immutable=1", run_dir)
    try:
        sqlite3.Connection.execute(db, "SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    except BaseException:
        db.close()
        raise
    return db


def _connect(uri: str, run_dir: Path) -> sqlite3.Connection:
    db = sqlite3.connect(
        uri,
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=30,
        factory=ReadOnlyConnection,
    )
    db.run_dir = run_dir  # type: ignore[attr-defined]
    return db
