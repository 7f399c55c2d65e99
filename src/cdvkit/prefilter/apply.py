"""Skipping with a saved model (``--prefilter MODEL_FILE``): before any call is paid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.prefilter.model import DEFAULT_THRESHOLD, Prefilter
from cdvkit.store.status import QuestionStatus


def apply_prefilter(
    questions: Sequence[Question], path: str | Path, threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[Question], list[Question]]:
    """Split ``questions`` into (kept, skipped) with the model saved at ``path``, order kept."""
    flags = Prefilter.load(path).skip(list(questions), threshold)
    kept = [q for q, s in zip(questions, flags, strict=True) if not s]
    skipped = [q for q, s in zip(questions, flags, strict=True) if s]
    return kept, skipped


SKIPPED = QuestionStatus.SKIPPED


def skip_in_store(
    store: Any, path: str | Path, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Mark a run's pending questions below ``threshold`` as skipped; {question id: P}.

    Only pending questions are looked at, so a resumed run never drops a question it already
    began. Every pending question's P is stored, kept or skipped, and a stored P is read, not
    computed again: the forecast before a run applies the prefilter first, the run then finds
    nothing left to predict, and a resumed run skips exactly what the first start skipped.
    """
    pending = store.questions(status=QuestionStatus.PENDING)
    if not pending:
        return {}
    fresh = [d["question"] for d in pending if d.get("prefilter_p") is None]
    probs = {d["id"]: d.get("prefilter_p") for d in pending}
    if fresh:
        for q, prob in zip(fresh, Prefilter.load(path).predict_proba(fresh), strict=True):
            probs[q.id] = float(prob)
            if hasattr(store, "record_prefilter"):
                store.record_prefilter(q.id, float(prob))
    skipped: dict[str, float] = {}
    for qid, prob in probs.items():
        if prob is not None and prob < threshold:
            store.set_question_status(
                qid, SKIPPED, error=f"prefilter: P(enhanceable) {prob:.2f} < {threshold:g}"
            )
            skipped[qid] = prob
    return skipped
