"""The run's ledger of model calls: every paid call (the cache) and every failed one.

A rerun replays the search deterministically and every call it already paid for is answered from
here, so it never pays twice; what a run cost and what failed are summed from the same rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
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
