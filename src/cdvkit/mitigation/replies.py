"""Replies a run recorded, for training data: whose they are, and whole.

The search records the target's answers to every node (``outputs``: the search's own answers and,
under ``verify``, the protocol's verdict), and ``cdv evaluate`` records every evaluated model's
answers; both keep only the last 300 characters of each reply. The run's call cache holds the
whole reply of every call, with the model and the role that made it, so a reply is read back
from there and never taken for another model's.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

from cdvkit.mitigation.freeform import STORED_REPLY_LIMIT
from cdvkit.store import RunStore

# The roles whose calls are the run's target answering under the protocol: the search's own score
# and the confirmation of a candidate (the same model, paid on a line of its own).
TARGET_ROLES = ("target", "verify")
EVAL_ROLES = ("eval",)


class CachedCall(NamedTuple):
    model: str
    role: str
    text: str  # the request's messages
    sample: int | None  # which sample of the request
    reply: str


class WholeReplies:
    """Whole replies read back from the run's call cache.

    Nodes and evaluation answers keep only a reply's last 300 characters; the cache row of the
    call that produced it holds all of it, with the model and role that wrote it. A reply is
    found by its question's calls (``call_owners``; a store written before owners existed is
    searched by the question's text), the model and role, the question text in its request and
    the stored tail, so a reply of another model or role is never taken for the one asked for.
    """

    def __init__(self, store: RunStore) -> None:
        self.db = store.db
        self._owned: dict[str, list[CachedCall]] = {}
        self._by_text: dict[str, list[CachedCall]] = {}

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[CachedCall]:
        """The generation calls ``sql`` selects."""
        try:
            rows = self.db.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # an older store opened read-only: no owners table
            return []
        out = []
        for model, role, request, response in rows:
            value = json.loads(response).get("value")
            if not isinstance(value, str):
                continue  # choice probabilities, not a reply
            req = json.loads(request)
            messages = req.get("messages") or []
            text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            out.append(CachedCall(str(model), str(role), text, req.get("sample"), value))
        return out

    def _calls(self, qid: str, question: str) -> list[CachedCall]:
        roles = (*TARGET_ROLES, *EVAL_ROLES)
        marks = ",".join("?" * len(roles))
        if qid not in self._owned:
            self._owned[qid] = self._rows(
                "SELECT c.model, c.role, c.request, c.response FROM call_owners o "
                f"JOIN calls c ON c.key = o.key WHERE o.question_id=? AND c.role IN ({marks})",
                (qid, *roles),
            )
        if self._owned[qid]:
            return self._owned[qid]
        if question not in self._by_text:
            # Requests are stored as JSON text, which escapes the question the same way.
            escaped = json.dumps(question)[1:-1]
            self._by_text[question] = self._rows(
                "SELECT model, role, request, response FROM calls "
                f"WHERE role IN ({marks}) AND instr(request, ?) > 0",
                (*roles, escaped),
            )
        return self._by_text[question]

    def find(
        self,
        qid: str,
        question: str,
        model: str,
        roles: tuple[str, ...],
        tail: Any,
        sample: int | None = None,
    ) -> str | None:
        """The whole reply ``model`` gave in ``roles`` to ``question`` ending in ``tail`` (the
        stored reply), sample ``sample`` first (replies differing only in their beginning share
        a tail); the tail itself when it is shorter than the limit, so it cannot have been cut;
        else None."""
        if not isinstance(tail, str) or not tail.strip():
            return None
        asked = question.strip()
        found = [
            c
            for c in self._calls(qid, asked)
            if c.model == model
            and c.role in roles
            and c.reply[-STORED_REPLY_LIMIT:] == tail
            and asked in c.text
        ]
        if found:
            return min(found, key=lambda c: c.sample != sample).reply
        return tail if len(tail) < STORED_REPLY_LIMIT else None


def eval_answers(store: RunStore) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """Stored evaluation answers by (question id, variant key): [(model, answer), ...]."""
    out: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    try:
        # RunStore has no iterator over evaluation answers; this table is only read here.
        rows = store.db.execute("SELECT data FROM evaluations ORDER BY key").fetchall()
    except sqlite3.OperationalError:  # a run written before evaluations existed
        return out
    for (data,) in rows:
        d = json.loads(data)
        answers = (d.get("outputs") or {}).get("answers") or []
        key = (str(d.get("item")), str(d.get("variant")))
        out.setdefault(key, []).extend((str(d.get("model")), a) for a in answers)
    return out


def target_answers(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The target's answers to a node under the protocol, as the search recorded them.

    ``verify`` is the protocol's verdict on a candidate (the search's own sampled score when it
    scores with the protocol, a call of its own when it scores by choice probabilities, which
    leave no reply); a node stored before verification existed has only the search's answers.
    """
    outputs = node.get("outputs") or {}
    verify = outputs.get("verify")
    if isinstance(verify, dict):
        return list(verify.get("answers") or [])
    return list(outputs.get("answers") or [])
