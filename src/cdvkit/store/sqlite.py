"""SQLite run store.

Every write is committed at once (autocommit, WAL journal), so a process killed with SIGKILL
loses at most the model calls that were in flight. The call cache is the basis of resume: a rerun
replays the search deterministically and every call it already paid for is answered from here.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filelock import FileLock, Timeout

from cdvkit import __version__
from cdvkit.data.question import Question

SCHEMA_VERSION = 1
DB_NAME = "run.db"
LOCK_NAME = "run.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    original_rate REAL,
    error TEXT,
    updated REAL
);
CREATE TABLE IF NOT EXISTS nodes (
    question_id TEXT NOT NULL,
    path TEXT NOT NULL,
    parent_path TEXT,
    depth INTEGER NOT NULL,
    question TEXT NOT NULL,
    choices TEXT NOT NULL,
    answer INTEGER NOT NULL,
    distraction TEXT,
    placement TEXT,
    target_option TEXT,
    status TEXT NOT NULL,
    rate REAL,
    verdicts TEXT,
    outputs TEXT,
    seq INTEGER NOT NULL,
    verified INTEGER,
    PRIMARY KEY (question_id, path)
);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    role TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    batch TEXT,
    created REAL NOT NULL,
    phase TEXT NOT NULL DEFAULT 'search'
);
-- Which question's search paid for a call: a distributed executor ships a question's own calls
-- to the worker that replays it. Added without a schema bump: older stores simply lack rows.
CREATE TABLE IF NOT EXISTS call_owners (
    question_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (question_id, key)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    error TEXT NOT NULL,
    created REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'lost',
    phase TEXT NOT NULL DEFAULT 'search'
);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_status ON nodes(status);
CREATE INDEX IF NOT EXISTS calls_by_role ON calls(role);
"""


# Columns added after schema 1 first shipped: a store written before them gains them on its next
# writable open (``RunStore._migrate``), and readers never assume they exist.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # Which command paid a call: the search ("search") or `cdv evaluate` ("evaluate").
    ("calls", "phase", "TEXT NOT NULL DEFAULT 'search'"),
    # A failed request: "lost" (failed for good; its question is incomplete), "retried" (an
    # attempt that was retried) or "refused" (a capability probe the server refused).
    ("failures", "kind", "TEXT NOT NULL DEFAULT 'lost'"),
    ("failures", "phase", "TEXT NOT NULL DEFAULT 'search'"),
    # Whether the protocol confirmed a candidate node (NULL: never a candidate).
    ("nodes", "verified", "INTEGER"),
)


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


class IncompatibleRunError(RuntimeError):
    """The run directory was written by an incompatible version of cdvkit."""


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


def _can_write(path: Path) -> bool:
    """Whether this process may write ``path`` (a directory: create files in it)."""
    mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def _is_readonly_error(exc: sqlite3.Error) -> bool:
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
    if not _can_write(existing):
        raise ReadOnlyRunError(
            run, fix, reason=f"run directory {run} is read-only: cdv cannot write {target} there"
        )


class _ReadOnlyConnection(sqlite3.Connection):
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
            if _is_readonly_error(exc):
                raise self._refused() from exc
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            if _is_readonly_error(exc):
                raise self._refused() from exc
            raise

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.OperationalError as exc:
            if _is_readonly_error(exc):
                raise self._refused() from exc
            raise


class RunStore:
    # Called with each failed request as it is recorded (the CLI prints the first of each kind).
    on_failure: Callable[[dict[str, Any]], None] | None = None

    def __init__(self, run_dir: str | Path, *, lock: bool = True, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        if readonly and not (self.run_dir / DB_NAME).exists():
            raise FileNotFoundError(f"{self.run_dir} holds no cdvkit run ({DB_NAME} is missing)")
        self._lock: FileLock | None = None
        self._mutex = threading.RLock()
        if not readonly:
            # A read-only run directory is refused here, with one clear error, before anything
            # (lock file, journal) is written; a read-only store writes nothing at all.
            self._check_writable()
        if lock and not readonly:
            self._lock = FileLock(str(self.run_dir / LOCK_NAME))
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                raise RunLockedError(
                    f"run directory {self.run_dir} is in use by another cdv process; "
                    "wait for it to finish or choose another --run-dir"
                ) from None
            except PermissionError:  # read-only in a way os.access did not see (ACLs, ...)
                self._lock = None
                raise ReadOnlyRunError(self.run_dir) from None
        try:
            if readonly:
                self.db = self._connect_readonly()
            else:
                self.db = sqlite3.connect(
                    str(self.run_dir / DB_NAME),
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=30,
                )
            self.db.row_factory = sqlite3.Row
            self._check_version()  # first: a refused database is left byte for byte as it was
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
                self._migrate()
                self._set_meta_default("schema_version", str(SCHEMA_VERSION))
                self._set_meta_default("created_by", f"cdvkit {__version__}")
                self._set_meta_default("created", str(time.time()))
            self._seq = self._max_seq()
        except BaseException as exc:
            self.close()  # a refused directory stays as it was, and unlocked
            if isinstance(exc, sqlite3.OperationalError) and _is_readonly_error(exc):
                raise ReadOnlyRunError(self.run_dir) from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise IncompatibleRunError(
                    f"cannot use {self.run_dir / DB_NAME} as a cdvkit run store ({exc}); "
                    "cdv will not write to it. Use a new --run-dir, or move the file away."
                ) from None
            raise

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        db = getattr(self, "db", None)  # absent when the open itself failed
        if db is not None:
            with self._mutex:
                db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_writable(self) -> None:
        """Raise ReadOnlyRunError, writing nothing, when this process cannot write the run."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            why = (exc.strerror or "permission denied").lower()
            raise ReadOnlyRunError(
                self.run_dir, reason=f"cannot create run directory {self.run_dir}: {why}"
            ) from None
        if not _can_write(self.run_dir):
            raise ReadOnlyRunError(self.run_dir)
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
            path = self.run_dir / name
            if path.exists() and not _can_write(path):
                raise ReadOnlyRunError(
                    self.run_dir, reason=f"{path} is read-only: cdv cannot write this run"
                )

    def _connect_readonly(self) -> sqlite3.Connection:
        """Open run.db for reading only (``mode=ro``): cdv adds no lock, pragma or schema.

        Only SQLite itself may add the -wal/-shm it needs to read beside a writer, and only in a
        directory this process can write; a read-only directory is left exactly as it is.
        """
        db_path = self.run_dir.resolve() / DB_NAME
        uri = f"file:{quote(str(db_path))}?mode=ro"
        db = self._ro_connect(uri)
        try:
            # The first statement opens the WAL: here is where a read-only directory fails (the
            # plain execute: the error is looked at here, not turned into ReadOnlyRunError).
            sqlite3.Connection.execute(db, "SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or _can_write(
                self.run_dir
            ):
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
                self.run_dir,
                "make the directory writable, or copy the run elsewhere, and retry",
                reason=(
                    f"run directory {self.run_dir} is read-only and its last writer left "
                    f"changes in {wal.name} that SQLite cannot read without creating "
                    f"{DB_NAME}-shm there"
                ),
            )
        db = self._ro_connect(uri + "&immutable=1")
        try:
            sqlite3.Connection.execute(db, "SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _ro_connect(self, uri: str) -> sqlite3.Connection:
        db = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
            factory=_ReadOnlyConnection,
        )
        db.run_dir = self.run_dir  # type: ignore[attr-defined]
        return db

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_version(self) -> None:
        has_meta = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            if self.db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                # Another program's database: adding the run tables to it would corrupt it.
                raise IncompatibleRunError(
                    f"{self.run_dir / DB_NAME} is an SQLite database but not a cdvkit run "
                    "store; cdv will not write to it. Use a new --run-dir."
                )
            return
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and str(row[0]).strip() != str(SCHEMA_VERSION):
            created = self.get_meta("created_by") or "an unknown version"
            raise IncompatibleRunError(
                f"run directory {self.run_dir} was written by {created} (store schema {row[0]}); "
                f"this cdvkit {__version__} uses schema {SCHEMA_VERSION} and will not write to it. "
                "Use a new --run-dir, or the cdvkit version that made it."
            )

    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()}

    def _has(self, table: str, column: str) -> bool:
        """Whether ``table`` has ``column``: an older store opened read-only may lack it."""
        cache = self.__dict__.setdefault("_column_cache", {})
        if table not in cache:
            with self._mutex:
                cache[table] = self._columns(table)
        return column in cache[table]

    def _migrate(self) -> None:
        for table, column, decl in ADDED_COLUMNS:
            if column not in self._columns(table):
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                if (table, column) == ("calls", "phase"):
                    # Before phases existed, evaluation answers were the calls of role "eval".
                    self.db.execute("UPDATE calls SET phase='evaluate' WHERE role='eval'")

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._mutex:
            return self.db.execute(sql, params)

    # --- meta and config ---------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _set_meta_default(self, key: str, value: str) -> None:
        self._exec("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_config(self) -> dict[str, Any] | None:
        raw = self.get_meta("config")
        return None if raw is None else json.loads(raw)

    def set_config(self, config: dict[str, Any]) -> None:
        self.set_meta("config", json.dumps(config, sort_keys=True))

    # --- questions -----------------------------------------------------------------------------
    def add_questions(self, questions: list[Question]) -> None:
        with self._mutex:
            self.db.execute("BEGIN")
            try:
                for i, q in enumerate(questions):
                    self.db.execute(
                        "INSERT OR IGNORE INTO questions(id, idx, data, updated) VALUES (?,?,?,?)",
                        (q.id, i, json.dumps(q.to_dict()), time.time()),
                    )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def questions(self, status: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM questions"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status=?"
            params = (status,)
        rows = self._exec(sql + " ORDER BY idx", params).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["question"] = Question.from_dict(json.loads(d.pop("data")))
            out.append(d)
        return out

    def set_question_status(
        self,
        qid: str,
        status: str,
        *,
        original_rate: float | None = None,
        error: str | None = None,
    ) -> None:
        self._exec(
            "UPDATE questions SET status=?, original_rate=COALESCE(?, original_rate), error=?, "
            "updated=? WHERE id=?",
            (status, original_rate, error, time.time(), qid),
        )

    # --- nodes ---------------------------------------------------------------------------------
    def _max_seq(self) -> int:
        try:
            row = self._exec("SELECT COALESCE(MAX(seq), 0) FROM nodes").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0])

    def clear_nodes(self, qid: str) -> None:
        """Forget a question's tree before it is replayed, so a resumed search rewrites it whole."""
        self._exec("DELETE FROM nodes WHERE question_id=?", (qid,))

    def save_node(self, qid: str, node: dict[str, Any]) -> None:
        with self._mutex:
            self._seq += 1
            seq = self._seq
        verified = node.get("verified")
        self._exec(
            "INSERT OR REPLACE INTO nodes(question_id, path, parent_path, depth, question, "
            "choices, answer, distraction, placement, target_option, status, rate, verdicts, "
            "outputs, seq, verified) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                qid,
                node["path"],
                node.get("parent_path"),
                node["depth"],
                node["question"],
                json.dumps(list(node["choices"])),
                node["answer"],
                node.get("distraction"),
                node.get("placement"),
                node.get("target_option"),
                node["status"],
                node.get("rate"),
                json.dumps(node.get("verdicts") or {}),
                json.dumps(node.get("outputs") or {}),
                seq,
                None if verified is None else int(bool(verified)),
            ),
        )

    def nodes(self, qid: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        if qid is not None:
            clauses.append("question_id=?")
            params.append(qid)
        if status is not None:
            clauses.append("status=?")
            params.append(status)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._exec(f"SELECT * FROM nodes{where} ORDER BY seq", tuple(params)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["choices"] = json.loads(d["choices"])
            d["verdicts"] = json.loads(d["verdicts"] or "{}")
            d["outputs"] = json.loads(d["outputs"] or "{}")
            v = d.get("verified")
            d["verified"] = None if v is None else bool(v)
            out.append(d)
        return out

    # --- call cache ---------------------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        row = self._exec("SELECT response FROM calls WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def get_calls(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored responses of those ``keys`` that are stored (one query for many)."""
        if len(keys) == 1:
            hit = self.get_call(keys[0])
            return {} if hit is None else {keys[0]: hit}
        marks = ",".join("?" * len(keys))
        rows = self._exec(
            f"SELECT key, response FROM calls WHERE key IN ({marks})", tuple(keys)
        ).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def transaction(self) -> _Transaction:
        """Group writes so a crash keeps all or none of them (e.g. the samples of one request)."""
        return _Transaction(self)

    def put_call(
        self,
        key: str,
        *,
        model: str,
        role: str,
        request: dict[str, Any],
        response: dict[str, Any],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float = 0.0,
        batch: str | None = None,
        question_id: str | None = None,
        phase: str = "search",
    ) -> None:
        self.put_calls(
            [
                {
                    "key": key,
                    "model": model,
                    "role": role,
                    "request": request,
                    "response": response,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "cost": cost,
                    "batch": batch,
                    "question_id": question_id,
                    "phase": phase,
                }
            ]
        )

    def put_calls(self, records: list[dict[str, Any]]) -> None:
        """Store paid calls (``put_call``'s fields each) and their owners in one transaction:
        the samples of one request land together, or not at all."""
        now = time.time()
        rows = [
            (
                r["key"],
                r["model"],
                r["role"],
                json.dumps(r["request"]),
                json.dumps(r["response"]),
                r.get("prompt_tokens", 0),
                r.get("completion_tokens", 0),
                r.get("cost", 0.0),
                r.get("batch"),
                now,
                r.get("phase", "search"),
            )
            for r in records
        ]
        owners = [(r["question_id"], r["key"]) for r in records if r.get("question_id")]
        with self._mutex:
            # Unless a caller's transaction groups them with more, these rows are one.
            own = not self.db.in_transaction and (len(rows) > 1 or bool(owners))
            if own:
                self.db.execute("BEGIN")
            try:
                self.db.executemany(
                    "INSERT OR IGNORE INTO calls(key, model, role, request, response, "
                    "prompt_tokens, completion_tokens, cost, batch, created, phase) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                if owners:
                    self.db.executemany(
                        "INSERT OR IGNORE INTO call_owners(question_id, key) VALUES (?, ?)",
                        owners,
                    )
            except BaseException:
                if own:
                    self.db.execute("ROLLBACK")
                raise
            if own:
                self.db.execute("COMMIT")

    def calls_for_question(self, qid: str) -> dict[str, dict[str, Any]]:
        """The cached responses of the calls ``qid``'s search paid for, by key."""
        rows = self._exec(
            "SELECT c.key, c.response FROM call_owners o JOIN calls c ON c.key = o.key "
            "WHERE o.question_id=?",
            (qid,),
        ).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def _phase(self, phase: str | None) -> tuple[str, tuple[Any, ...]]:
        """A WHERE clause for the calls of one phase (all calls of a store without phases are
        the search's, but for the evaluation's own role)."""
        if phase is None:
            return "", ()
        if self._has("calls", "phase"):
            return " WHERE phase=?", (phase,)
        return (" WHERE role='eval'" if phase == "evaluate" else " WHERE role!='eval'"), ()

    def paid_calls(self, phase: str | None = None) -> int:
        """Model requests actually sent and answered: a batch of samples from one request counts
        once. ``phase``: only the search's ("search") or the evaluation's ("evaluate")."""
        where, params = self._phase(phase)
        row = self._exec(
            f"SELECT COUNT(DISTINCT COALESCE(batch, key)) FROM calls{where}", params
        ).fetchone()
        return int(row[0])

    def total_cost(self, phase: str | None = None) -> float:
        where, params = self._phase(phase)
        row = self._exec(f"SELECT COALESCE(SUM(cost), 0) FROM calls{where}", params).fetchone()
        return float(row[0])

    def usage_by_role(self, phase: str | None = "search") -> dict[str, dict[str, float]]:
        where, params = self._phase(phase)
        rows = self._exec(
            "SELECT role, COUNT(DISTINCT COALESCE(batch, key)) AS calls, COUNT(*) AS samples, "
            "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
            f"SUM(cost) AS cost FROM calls{where} GROUP BY role ORDER BY role",
            params,
        ).fetchall()
        # sqlite3.Row iterates over values, so its keys() is needed here.
        keys = [k for k in rows[0].keys() if k != "role"] if rows else []  # noqa: SIM118
        return {r["role"]: {k: r[k] for k in keys} for r in rows}

    # --- failures -------------------------------------------------------------------------------
    def record_failure(
        self,
        *,
        role: str,
        model: str,
        error: str,
        question_id: str | None,
        kind: str = "lost",
        phase: str = "search",
        stops_run: bool = False,
    ) -> None:
        """One request that failed: ``lost`` (for good), ``retried`` or ``refused`` (a probe).

        ``stops_run``: the failure ends the run (bad key, outage), which says so itself.
        """
        self._exec(
            "INSERT INTO failures(question_id, role, model, error, created, kind, phase) "
            "VALUES (?,?,?,?,?,?,?)",
            (question_id, role, model, error, time.time(), kind, phase),
        )
        if self.on_failure is not None:
            self.on_failure(
                {
                    "role": role,
                    "model": model,
                    "error": error,
                    "kind": kind,
                    "phase": phase,
                    "stops_run": stops_run,
                }
            )

    def failures(self, phase: str | None = None) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self._exec("SELECT * FROM failures ORDER BY id").fetchall()]
        for r in rows:
            r.setdefault("kind", "lost")
            r.setdefault("phase", "search")
        return [r for r in rows if phase is None or r["phase"] == phase]

    # --- evaluation answers (filled by cdvkit.evaluation) ----------------------------------------
    def get_eval(self, key: str) -> dict[str, Any] | None:
        row = self._exec("SELECT data FROM evaluations WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_eval(self, key: str, data: dict[str, Any]) -> None:
        self._exec(
            "INSERT OR REPLACE INTO evaluations(key, data) VALUES (?, ?)", (key, json.dumps(data))
        )

    # --- results ----------------------------------------------------------------------------------
    def examples(self) -> Iterator[dict[str, Any]]:
        """Every CDV example (a node the target failed that passed every constraint)."""
        qs = {d["id"]: d for d in self.questions()}
        for n in self.nodes(status="good"):
            q: Question = qs[n["question_id"]]["question"]
            yield {
                "question_id": q.id,
                "source": q.source,
                "subject": q.subject,
                "original_question": q.question,
                "original_choices": list(q.choices),
                "original_answer": q.answer,
                "original_rate": qs[q.id]["original_rate"],
                "question": n["question"],
                "choices": n["choices"],
                "answer": n["answer"],
                "answer_text": n["choices"][n["answer"]],
                "rate": n["rate"],
                "depth": n["depth"],
                "path": n["path"],
                "distraction": n["distraction"],
                "placement": n["placement"],
                "target_option": n["target_option"],
            }

    def export_jsonl(self, path: str | Path) -> int:
        count = 0
        with open(path, "w", encoding="utf-8") as f:
            for ex in self.examples():
                f.write(json.dumps(ex, ensure_ascii=False) + "\n")
                count += 1
        return count


class _Transaction:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def __enter__(self) -> RunStore:
        self.store._mutex.acquire()
        self.store.db.execute("BEGIN")
        return self.store

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._mutex.release()
