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

    Only pending questions are looked at, so a resumed run skips exactly what the first start
    skipped (the model is deterministic) and never drops a question it already began.
    """
    pending: list[Question] = [
        d["question"] for d in store.questions(status=QuestionStatus.PENDING)
    ]
    if not pending:
        return {}
    probs = Prefilter.load(path).predict_proba(pending)
    skipped: dict[str, float] = {}
    for q, prob in zip(pending, probs, strict=True):
        if prob < threshold:
            if hasattr(store, "record_prefilter"):
                store.record_prefilter(q.id, float(prob))
            store.set_question_status(
                q.id, SKIPPED, error=f"prefilter: P(enhanceable) {prob:.2f} < {threshold:g}"
            )
            skipped[q.id] = float(prob)
    return skipped
