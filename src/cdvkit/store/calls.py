"""The run's ledger of model calls: every paid call (the cache) and every failed one.

A rerun replays the search deterministically and every call it already paid for is answered from
here, so it never pays twice; what a run cost and what failed are summed from the same rows.

The only calls a crash can make a run pay twice are those in flight when it struck: sent (and
billed) but their reply never stored. Each request is noted as sent just before it goes out
(``mark_sent``) and the note is dropped when its reply is stored, in the same transaction
(``put_calls``), or when it fails (``mark_unanswered``). A note left by an earlier opening of the
store (a process killed, interrupted or stopped with the request in flight) means the request is
being paid for again when this one sends it; once its reply is stored it is counted in
``calls_paid_twice`` (``paid_twice``), which the run's summary shows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any


class CallLog:
    """The ``calls``, ``call_owners`` and ``failures`` tables of a RunStore (mixed into it)."""

    # Provided by RunStore.
    db: sqlite3.Connection
    _mutex: threading.RLock
    on_failure: Callable[[dict[str, Any]], None] | None

    if TYPE_CHECKING:

        def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor: ...

        def _has(self, table: str, column: str) -> bool: ...

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
            # Unless a caller's transaction groups them with more, these rows are one: a reply
            # is stored and its in-flight note dropped together.
            own = not self.db.in_transaction
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
                self._answered(records, now)
            except BaseException:
                if own:
                    self.db.execute("ROLLBACK")
                raise
            if own:
                self.db.execute("COMMIT")

    # --- calls in flight, and calls paid twice ---------------------------------------------------
    def _sender(self) -> str:
        """This opening of the store: notes it did not write were left by an earlier one."""
        return self.__dict__.setdefault("_sender_id", uuid.uuid4().hex)

    def _tracks_sends(self) -> bool:
        # A store written before these tables, opened read-only, has none.
        return self._has("calls_in_flight", "resent")

    def mark_sent(self, keys: list[str], *, role: str, phase: str = "search") -> None:
        """Note a request (its samples' ``keys``) about to be sent. A key already noted by an
        earlier opening of the store (or marked so) is marked ``resent``."""
        me, now = self._sender(), time.time()
        rows = [(k, me, role, phase, now) for k in keys]
        sql = (
            "INSERT INTO calls_in_flight(key, process, role, phase, sent) VALUES (?,?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET resent = (resent OR process != excluded.process), "
            "process = excluded.process, sent = excluded.sent"
        )
        with self._mutex:
            if len(rows) == 1 or self.db.in_transaction:  # one statement is its own transaction
                self.db.executemany(sql, rows)
                return
            self.db.execute("BEGIN")
            try:
                self.db.executemany(sql, rows)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def mark_unanswered(self, keys: list[str]) -> None:
        """Drop the note of a request that failed (the server said no, or never answered): not
        paid. A request an earlier process paid for keeps its note, so that its answer, when a
        later try gets one, is still counted as paid twice."""
        for part in _chunks(keys):
            marks = ",".join("?" * len(part))
            self._exec(
                f"DELETE FROM calls_in_flight WHERE process=? AND resent=0 AND key IN ({marks})",
                (self._sender(), *part),
            )

    def _answered(self, records: list[dict[str, Any]], now: float) -> None:
        """Within put_calls' transaction: count the stored requests an earlier process paid for,
        once each, and drop their in-flight notes."""
        if not self._tracks_sends():
            return
        keys = [r["key"] for r in records]
        resent: set[str] = set()
        for part in _chunks(keys):
            marks = ",".join("?" * len(part))
            resent.update(
                r[0]
                for r in self.db.execute(
                    f"SELECT key FROM calls_in_flight WHERE resent=1 AND key IN ({marks})",
                    tuple(part),
                )
            )
            self.db.execute(f"DELETE FROM calls_in_flight WHERE key IN ({marks})", tuple(part))
        if not resent:
            return
        requests: dict[str, dict[str, Any]] = {}
        for r in records:
            if r["key"] in resent:
                requests.setdefault(r.get("batch") or r["key"], r)  # samples of one request
        self.db.executemany(
            "INSERT OR IGNORE INTO calls_paid_twice(key, role, phase, created) VALUES (?,?,?,?)",
            [(r["key"], r["role"], r.get("phase", "search"), now) for r in requests.values()],
        )

    def paid_twice(self, phase: str | None = None) -> int:
        """Requests paid for twice: sent by a process that ended before storing their reply, and
        sent again (and answered) later. ``phase`` as in ``paid_calls``."""
        if not self._has("calls_paid_twice", "key"):
            return 0
        where, params = ("", ()) if phase is None else (" WHERE phase=?", (phase,))
        row = self._exec(f"SELECT COUNT(*) FROM calls_paid_twice{where}", params).fetchone()
        return int(row[0])

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

    def usage_by_question(
        self, phase: str | None = "search"
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Calls, tokens and cost per question and role: what each question's search paid for
        (a call two questions share counts for both)."""
        where, params = self._phase(phase)
        where = where.replace("phase", "c.phase").replace("role", "c.role")
        rows = self._exec(
            "SELECT o.question_id AS qid, c.role AS role, "
            "COUNT(DISTINCT COALESCE(c.batch, c.key)) AS calls, "
            "SUM(c.prompt_tokens) AS prompt_tokens, SUM(c.completion_tokens) AS completion_tokens, "
            f"SUM(c.cost) AS cost FROM call_owners o JOIN calls c ON c.key = o.key{where} "
            "GROUP BY o.question_id, c.role",
            params,
        ).fetchall()
        out: dict[str, dict[str, dict[str, float]]] = {}
        for r in rows:
            out.setdefault(r["qid"], {})[r["role"]] = {
                "calls": r["calls"],
                "prompt_tokens": r["prompt_tokens"] or 0,
                "completion_tokens": r["completion_tokens"] or 0,
                "cost": r["cost"] or 0.0,
            }
        return out

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


def _chunks(keys: list[str], size: int = 500) -> Iterator[list[str]]:
    """``keys`` in parts small enough for one statement's parameters."""
    for i in range(0, len(keys), size):
        yield keys[i : i + size]
