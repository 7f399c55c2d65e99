"""SQLite run store.

Every write is committed at once (autocommit, WAL journal), so a process killed with SIGKILL
loses at most the model calls that were in flight. The call cache (``cdvkit.store.calls``) is the
basis of resume: a rerun replays the search deterministically and every call it already paid for
is answered from there.
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

from filelock import FileLock, Timeout

from cdvkit.data.question import Question
from cdvkit.store.calls import CallLog
from cdvkit.store.diskfull import DiskFullError, WriterConnection, is_disk_full
from cdvkit.store.outputs import STORE_FILES, run_dir_of, write_jsonl
from cdvkit.store.readonly import ReadOnlyRunError, can_write, connect_readonly, is_readonly_error
from cdvkit.store.records import Example, RunSpec
from cdvkit.store.schema import (
    DB_NAME,
    LOCK_NAME,
    SCHEMA,
    SCHEMA_VERSION,
    IncompatibleRunError,
    check_version,
    migrate,
    table_columns,
)
from cdvkit.store.status import QuestionStatus
from cdvkit.version import __version__


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


class NotARunDirError(ValueError):
    """A run directory was named where a file is (``--run-dir`` or ``--out`` naming a file)."""


class RunStore(CallLog):
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
            except OSError as exc:  # no room for the lock file
                self._lock = None
                if is_disk_full(exc):
                    raise DiskFullError(self.run_dir, 0) from None
                raise
        try:
            if readonly:
                self.db = connect_readonly(self.run_dir)
            else:
                self.db = sqlite3.connect(
                    str(self.run_dir / DB_NAME),
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=30,
                    factory=WriterConnection,  # a full disk: DiskFullError, the store whole
                )
                self.db.run_dir = self.run_dir  # type: ignore[attr-defined]
            self.db.row_factory = sqlite3.Row
            # First: a refused database is left byte for byte as it was.
            check_version(self.db, self.run_dir)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)
                migrate(self.db)
                self._set_meta_default("schema_version", str(SCHEMA_VERSION))
                self._set_meta_default("created_by", f"cdvkit {__version__}")
                self._set_meta_default("created", str(time.time()))
            self._seq = self._max_seq()
        except BaseException as exc:
            self.close()  # a refused directory stays as it was, and unlocked
            if isinstance(exc, sqlite3.OperationalError) and is_readonly_error(exc):
                raise ReadOnlyRunError(self.run_dir) from None
            if is_disk_full(exc):  # e.g. the lock file, or SQLite's first page
                raise DiskFullError(self.run_dir, 0) from None
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
        if not (self.run_dir / DB_NAME).exists() and not self.run_dir.is_file():
            # A new run never goes where it would break another: a folder named like a store's
            # file next to it (run.db-wal would stop SQLite from opening that store), or any
            # folder inside another run directory.
            real = Path(os.path.realpath(self.run_dir))
            holder = run_dir_of(real.parent)
            if real.name in STORE_FILES or holder is not None:
                where = holder or real.parent
                raise NotARunDirError(
                    f"cannot use {self.run_dir} as a run directory: it is inside the run "
                    f"directory {where}, whose store it could break; choose a path outside it"
                )
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            # A file where the run directory (or a folder above it) should be.
            blocker = next(p for p in (self.run_dir, *self.run_dir.parents) if p.exists())
            what = "it" if blocker == self.run_dir else str(blocker)
            raise NotARunDirError(
                f"cannot use {self.run_dir} as a run directory: {what} is a file, where a folder "
                "is needed; give a folder path (cdv creates it)"
            ) from None
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(self.run_dir, 0) from None
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            why = (exc.strerror or "permission denied").lower()
            raise ReadOnlyRunError(
                self.run_dir, reason=f"cannot create run directory {self.run_dir}: {why}"
            ) from None
        if not can_write(self.run_dir):
            raise ReadOnlyRunError(self.run_dir)
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", LOCK_NAME):
            path = self.run_dir / name
            if path.exists() and not can_write(path):
                raise ReadOnlyRunError(
                    self.run_dir, reason=f"{path} is read-only: cdv cannot write this run"
                )

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _has(self, table: str, column: str) -> bool:
        """Whether ``table`` has ``column``: an older store opened read-only may lack it."""
        cache = self.__dict__.setdefault("_column_cache", {})
        if table not in cache:
            with self._mutex:
                cache[table] = table_columns(self.db, table)
        return column in cache[table]

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

    def run_spec(self) -> RunSpec:
        """What this run is: its settings, and the schema and cdvkit version that wrote it."""
        version = self.get_meta("schema_version")
        return RunSpec(
            schema_version=int(version) if version is not None else None,
            created_by=self.get_meta("created_by"),
            config=self.get_config(),
        )

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

    def record_prefilter(self, qid: str, p: float | None) -> None:
        """The P(enhanceable) a prefilter gave ``qid`` when it decided to search or skip it."""
        self._exec("UPDATE questions SET prefilter_p=? WHERE id=?", (p, qid))

    def reopen_skipped(self) -> list[str]:
        """Turn the questions a prefilter skipped back to pending (``--include-skipped``); their
        predicted P stays. Returns their ids."""
        with self._mutex:
            rows = self.db.execute(
                "SELECT id FROM questions WHERE status=? ORDER BY idx", (QuestionStatus.SKIPPED,)
            ).fetchall()
            self.db.execute(
                "UPDATE questions SET status=?, error=NULL, updated=? WHERE status=?",
                (QuestionStatus.PENDING, time.time(), QuestionStatus.SKIPPED),
            )
        return [r[0] for r in rows]

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

    def count_nodes(self, status: str) -> int:
        """How many nodes have ``status``, counted by the index (no node is read)."""
        return int(self._exec("SELECT COUNT(*) FROM nodes WHERE status=?", (status,)).fetchone()[0])

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

    def transaction(self) -> _Transaction:
        """Group writes so a crash keeps all or none of them (e.g. the samples of one request)."""
        return _Transaction(self)

    # --- evaluation answers (filled by cdvkit.evaluation) ----------------------------------------
    def get_eval(self, key: str) -> dict[str, Any] | None:
        row = self._exec("SELECT data FROM evaluations WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_eval(self, key: str, data: dict[str, Any]) -> None:
        self._exec(
            "INSERT OR REPLACE INTO evaluations(key, data) VALUES (?, ?)", (key, json.dumps(data))
        )

    # --- results ----------------------------------------------------------------------------------
    def examples(self) -> Iterator[Example]:
        """Every CDV example (a node the target failed that passed every constraint)."""
        qs = {d["id"]: d for d in self.questions()}
        for n in self.nodes(status="good"):
            q: Question = qs[n["question_id"]]["question"]
            ex: Example = {
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
                "answer_text": q.answer_text if q.free_form else n["choices"][n["answer"]],
                "rate": n["rate"],
                "depth": n["depth"],
                "path": n["path"],
                "distraction": n["distraction"],
                "placement": n["placement"],
                "target_option": n["target_option"],
            }
            if q.free_form:
                ex["task"], ex["references"] = q.task, list(q.references)
            yield ex

    def export_jsonl(self, path: str | Path) -> int:
        # Whole or not at all, and never over a run store (cdvkit.store.outputs).
        return write_jsonl(path, self.examples(), run=self.run_dir)


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
