"""SQLite run store.

Every write is committed at once (autocommit, WAL journal), so a process killed with SIGKILL
loses at most the model calls that were in flight. The call cache is the basis of resume: a rerun
replays the search deterministically and every call it already paid for is answered from here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    created REAL NOT NULL
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
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_status ON nodes(status);
CREATE INDEX IF NOT EXISTS calls_by_role ON calls(role);
"""


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


class IncompatibleRunError(RuntimeError):
    """The run directory was written by an incompatible version of cdvkit."""


class RunStore:
    def __init__(self, run_dir: str | Path, *, lock: bool = True, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        if readonly and not (self.run_dir / DB_NAME).exists():
            raise FileNotFoundError(f"{self.run_dir} holds no cdvkit run ({DB_NAME} is missing)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock: FileLock | None = None
        if lock and not readonly:
            self._lock = FileLock(str(self.run_dir / LOCK_NAME))
            try:
                self._lock.acquire(timeout=0)
            except Timeout:
                raise RunLockedError(
                    f"run directory {self.run_dir} is in use by another cdv process; "
                    "wait for it to finish or choose another --run-dir"
                ) from None
        self._mutex = threading.RLock()
        self.db = sqlite3.connect(
            str(self.run_dir / DB_NAME), isolation_level=None, check_same_thread=False, timeout=30
        )
        try:
            self.db.row_factory = sqlite3.Row
            self._check_version()  # first: a refused database is left byte for byte as it was
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if not readonly:
                self.db.executescript(_SCHEMA)
                self._set_meta_default("schema_version", str(SCHEMA_VERSION))
                self._set_meta_default("created_by", f"cdvkit {__version__}")
                self._set_meta_default("created", str(time.time()))
            self._seq = self._max_seq()
        except BaseException as exc:
            self.close()  # a refused directory stays as it was, and unlocked
            if isinstance(exc, sqlite3.DatabaseError):
                raise IncompatibleRunError(
                    f"cannot use {self.run_dir / DB_NAME} as a cdvkit run store ({exc}); "
                    "cdv will not write to it. Use a new --run-dir, or move the file away."
                ) from None
            raise

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._mutex:
            self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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
        self._exec(
            "INSERT OR REPLACE INTO nodes(question_id, path, parent_path, depth, question, "
            "choices, answer, distraction, placement, target_option, status, rate, verdicts, "
            "outputs, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
            out.append(d)
        return out

    # --- call cache ---------------------------------------------------------------------------
    def get_call(self, key: str) -> dict[str, Any] | None:
        row = self._exec("SELECT response FROM calls WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

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
    ) -> None:
        with self._mutex:
            # The call and its owner land together, unless a caller's transaction groups them.
            own = question_id is not None and not self.db.in_transaction
            if own:
                self.db.execute("BEGIN")
            try:
                self.db.execute(
                    "INSERT OR IGNORE INTO calls(key, model, role, request, response, "
                    "prompt_tokens, completion_tokens, cost, batch, created) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        key,
                        model,
                        role,
                        json.dumps(request),
                        json.dumps(response),
                        prompt_tokens,
                        completion_tokens,
                        cost,
                        batch,
                        time.time(),
                    ),
                )
                if question_id is not None:
                    self.db.execute(
                        "INSERT OR IGNORE INTO call_owners(question_id, key) VALUES (?, ?)",
                        (question_id, key),
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

    def paid_calls(self) -> int:
        """Model requests actually sent: a batch of samples from one request counts once."""
        row = self._exec("SELECT COUNT(DISTINCT COALESCE(batch, key)) FROM calls").fetchone()
        return int(row[0])

    def total_cost(self) -> float:
        row = self._exec("SELECT COALESCE(SUM(cost), 0) FROM calls").fetchone()
        return float(row[0])

    def usage_by_role(self) -> dict[str, dict[str, float]]:
        rows = self._exec(
            "SELECT role, COUNT(DISTINCT COALESCE(batch, key)) AS calls, COUNT(*) AS samples, "
            "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
            "SUM(cost) AS cost FROM calls GROUP BY role ORDER BY role"
        ).fetchall()
        # sqlite3.Row iterates over values, so its keys() is needed here.
        keys = [k for k in rows[0].keys() if k != "role"] if rows else []  # noqa: SIM118
        return {r["role"]: {k: r[k] for k in keys} for r in rows}

    # --- failures -------------------------------------------------------------------------------
    def record_failure(self, *, role: str, model: str, error: str, question_id: str | None) -> None:
        self._exec(
            "INSERT INTO failures(question_id, role, model, error, created) VALUES (?,?,?,?,?)",
            (question_id, role, model, error, time.time()),
        )

    def failures(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._exec("SELECT * FROM failures ORDER BY id").fetchall()]

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
