"""The summary of a run, computed from the run store's rows alone, so both always agree."""

from __future__ import annotations

import re
from typing import Any

from cdvkit.protocol import protocol_from_config
from cdvkit.store import RunStore
from cdvkit.store.records import FailureGroup, RunStats
from cdvkit.store.status import UNFINISHED, QuestionStatus


def failure_reason(error: str) -> str:
    """A failure's reason without what differs between occurrences (ids, counts, timings), so
    the same fault on many calls is listed once with its count."""
    text = re.sub(r"\b[0-9a-f]{8,}\b", "…", error)
    text = re.sub(r"\d+(\.\d+)?s\b", "Ns", text)
    return text[:200]


def failures_by_reason(rows: list[dict[str, Any]]) -> list[FailureGroup]:
    """Failed requests grouped by kind, role, model and reason, most frequent first."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["kind"], r["role"], failure_reason(r["error"]))
        g = groups.setdefault(
            key, {"kind": key[0], "role": key[1], "reason": key[2], "count": 0, "questions": set()}
        )
        g["count"] += 1
        if r.get("question_id"):
            g["questions"].add(r["question_id"])
    out = sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["role"]))
    return [{**g, "questions": len(g["questions"])} for g in out]


def success_rate(with_example: int, originally_correct: int) -> float:
    """The search's success rate: of the finished questions the target first answered right,
    the share with at least one CDV example (0 when none is finished). Its one definition."""
    return with_example / originally_correct if originally_correct else 0.0


def summarize(store: RunStore) -> RunStats:
    """The run's summary, computed from the store's rows alone so both always agree.

    Only the search's own calls are counted here (``cdv evaluate`` reports its calls itself).
    ``requests_failed`` counts every request that brought no usable answer (refused, failed and
    retried, failed for good): with ``calls`` it adds up to every request sent.
    """
    qs = store.questions()
    by_status: dict[str, int] = {}
    for d in qs:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    examples = list(store.examples())
    has_example = {e["question_id"] for e in examples}
    # A question counts once it is finished: the success rate's numerator and denominator are
    # both finished (``done``) questions, so it can never exceed 100%. A stopped run's unfinished
    # questions may already hold examples; they are counted apart until a rerun finishes them.
    done = {d["id"] for d in qs if d["status"] == QuestionStatus.DONE}
    with_example = len(has_example & done)
    correct = len(done)
    usage = store.usage_by_role("search")
    calls = store.paid_calls("search")
    failures = store.failures("search")
    verified = [n["verified"] for n in store.nodes() if n.get("verified") is not None]
    incomplete = sum(by_status.get(s, 0) for s in UNFINISHED if s != QuestionStatus.PENDING)
    config = store.get_config() or {}
    try:
        task = qs[0]["question"].task if qs else None
        protocol = protocol_from_config(config).describe(task) if config else None
    except (TypeError, ValueError):  # a stored config this version cannot read
        protocol = None
    return {
        "questions": len(qs),
        "searched": correct + by_status.get(QuestionStatus.ORIGINAL_FAILED, 0),
        "originally_correct": correct,
        "originally_failed": by_status.get(QuestionStatus.ORIGINAL_FAILED, 0),
        "with_example": with_example,
        "with_example_unfinished": len(has_example - done),
        "examples": len(examples),
        "success_rate": success_rate(with_example, correct),
        "candidates": len(verified),
        "verified": sum(verified),
        "rejected_by_verification": len(verified) - sum(verified),
        "incomplete": incomplete,
        "pending": by_status.get(QuestionStatus.PENDING, 0),
        "skipped": by_status.get(QuestionStatus.SKIPPED, 0),  # by the enhanceability prefilter
        "unfinished": incomplete + by_status.get(QuestionStatus.PENDING, 0),
        "calls": calls,
        "paid_twice": store.paid_twice("search"),
        "requests_failed": len(failures),
        "cost": store.total_cost("search"),
        "calls_per_example": (calls / len(examples)) if examples else None,
        "failures": failures_by_reason(failures),
        "by_role": usage,
        "protocol": protocol,
    }
