"""How an exported lm-eval task (``cdv export --format lm-eval``, protocol mode) scores a document.

The task folder's ``utils.py`` builds a :class:`Scorer` from the run's protocol (its
``protocol.json``), so lm-eval reads every reply with the code ``cdv evaluate`` reads it with:
the protocol's own reading (the run's reply templates, then :func:`cdvkit.answers.read_choice`'s
reader for multiple choice or the shape's :class:`cdvkit.tasks.AnswerKey` for numbers and short
answers), and :func:`cdvkit.protocol.exact_outcome` for a run scored by choice probabilities.
There is no extractor or grader: a reply the readers cannot read counts as wrong. cdvkit must be
installed wherever ``lm_eval`` runs.

A document is one row the export wrote: ``id``, ``task`` (the shape), ``choices`` and
``answer`` (a choice index) or ``references``. A row with ``per_question`` (every example of a
question, ``--all-examples``) scores ``(question id, score)``, which :func:`question_mean`
averages per question first, as ``cdv evaluate --all-examples`` does.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdvkit.protocol import Asker, Protocol, exact_outcome, protocol_from_config
from cdvkit.tasks import AnswerKey, row_task


class Scorer:
    """Scores lm-eval's replies to the exported documents under one run's protocol."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        # The protocol's reading lives on the Asker (the one place replies become right or
        # wrong); it reads text only, so it needs no model client.
        self._asker = Asker(None, protocol)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str | Path) -> Scorer:
        """The scorer of the run whose protocol settings ``path`` (protocol.json) holds."""
        return cls(protocol_from_config(json.loads(Path(path).read_text(encoding="utf-8"))))

    def reply_is_right(self, doc: dict[str, Any], reply: str | None) -> bool:
        """Whether one reply answers the document right, read as ``cdv evaluate`` reads it."""
        if doc.get("choices"):
            return self._asker._read(tuple(doc["choices"]), doc["answer"], reply or "").correct
        key = AnswerKey(row_task(doc), tuple(doc["references"]))
        return self._asker._read_free(key, reply or "").correct

    def sampled_right(self, doc: dict[str, Any], replies: Sequence[str] | str) -> bool:
        """The protocol's rule: right when at least one of the n replies is right."""
        if isinstance(replies, str):  # a filter that kept one reply
            replies = [replies]
        return any(self.reply_is_right(doc, r) for r in replies)

    def exact_right(self, doc: dict[str, Any], results: Sequence[Any]) -> bool:
        """An exact protocol's rule, from lm-eval's log-likelihood of each choice letter:
        right unless the most likely choice is wrong (and, with the protocol's threshold,
        P(correct) is also below it)."""
        lls = [float(r[0]) for r in results]
        top = max(lls)
        weights = [math.exp(ll - top) for ll in lls]
        probs = [w / sum(weights) for w in weights]
        return exact_outcome(probs, int(doc["answer"]), self.protocol.threshold).correct

    def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
        """lm-eval's ``process_results``: ``acc`` 1.0 when the document is answered right.

        A ``generate_until`` task passes ``[replies]`` (its filter keeps all n of them); a
        ``multiple_choice`` one passes one ``(log-likelihood, is_greedy)`` pair per choice.
        """
        if results and isinstance(results[0], tuple):
            right = self.exact_right(doc, results)
        else:
            right = self.sampled_right(doc, results[0] if results else [])
        score = 1.0 if right else 0.0
        return {"acc": (doc["id"], score) if doc.get("per_question") else score}


def question_mean(items: Sequence[tuple[str, float]]) -> float:
    """The mean over questions of each question's mean score (``cdv evaluate --all-examples``
    weighs every question once, however many examples it has)."""
    by_question: dict[str, list[float]] = defaultdict(list)
    for qid, score in items:
        by_question[qid].append(score)
    if not by_question:
        return float("nan")
    return sum(sum(s) / len(s) for s in by_question.values()) / len(by_question)


__all__ = ["Scorer", "question_mean"]
