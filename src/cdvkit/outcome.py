"""What asking a model one question under the protocol leaves: each reply as read, and the verdict.

:class:`Answer` is one reply while it is being read (the reader's result, then the extractor's
and the grader's, if they were needed); :class:`Outcome` is the protocol's verdict on the
question. Both are stored as plain JSON (``to_dict``), whose forms :class:`AnswerRecord` and
:class:`OutcomeRecord` type, so the store, the report and every reader of a run share one shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NotRequired, TypedDict

# How much of each reply is stored with its answer (the whole reply is in the call cache).
STORED_REPLY_CHARS = 300


class AnswerRecord(TypedDict):
    """One answer as stored: ``choice`` (multiple choice) or ``answer`` (free form), how it was
    read (``status``), whether it is right, and the end of the reply."""

    choice: NotRequired[int | None]
    answer: NotRequired[str | None]
    status: str
    correct: bool
    reply: str
    target: NotRequired[str]  # a multi-target run: whose answer it is


class OutcomeRecord(TypedDict):
    """An Outcome as stored (a node's ``outputs["verify"]``, an evaluation's answer)."""

    correct: bool
    accuracy: float
    mode: str
    answers: list[AnswerRecord]
    probs: NotRequired[list[float]]
    p_correct: NotRequired[float | None]
    # A multi-target outcome: how many targets must be fooled, and each target's own outcome.
    required: NotRequired[int]
    targets: NotRequired[dict[str, Any]]


@dataclass(frozen=True)
class Answer:
    """One reply as read.

    ``status``: ``ok`` (the reader read it), ``extracted`` (the extractor did), ``graded`` (the
    grader decided it), or why it counts as wrong unread (``unparsed``, ``ambiguous``,
    ``outside``, ``refused``). ``undecided``: no reader could read it, so the extractor may try.
    """

    correct: bool
    status: str
    reply: str  # the whole reply, for the extractor and the grader
    free: bool = False  # read as a free-form answer (``answer``) rather than a choice
    choice: int | None = None
    answer: str | None = None
    undecided: bool = False

    def settled(self, status: str, correct: bool, **read: Any) -> Answer:
        """This answer as another reader settled it (``choice=`` or ``answer=`` it read)."""
        return replace(self, status=status, correct=correct, undecided=False, **read)

    def to_dict(self) -> AnswerRecord:
        head: dict[str, Any] = {"answer": self.answer} if self.free else {"choice": self.choice}
        return (
            head
            | {  # type: ignore[return-value]
                "status": self.status,
                "correct": self.correct,
                "reply": self.reply[-STORED_REPLY_CHARS:],
            }
        )


@dataclass
class Outcome:
    """The target's answers to one question under a protocol.

    ``correct``: answered right (at least one right sample, or the argmax right). ``accuracy``:
    the share of right answers (1 or 0 with exact scoring), informative only. ``p_correct``: the
    probability of the right choice with exact scoring.
    """

    correct: bool
    accuracy: float
    mode: str  # "sample" | "exact"
    answers: list[Answer] = field(default_factory=list)
    probs: list[float] | None = None
    p_correct: float | None = None

    @property
    def fooled(self) -> bool:
        return not self.correct

    def answer_records(self) -> list[AnswerRecord]:
        return [a.to_dict() for a in self.answers]

    def to_dict(self) -> OutcomeRecord:
        out: OutcomeRecord = {
            "correct": self.correct,
            "accuracy": self.accuracy,
            "mode": self.mode,
            "answers": self.answer_records(),
        }
        if self.probs is not None:
            out["probs"] = self.probs
            out["p_correct"] = self.p_correct
        return out


def exact_outcome(probs: list[float], answer: int, threshold: float | None = None) -> Outcome:
    """Right when the most likely choice is the right one (and, with ``threshold``, fooled only
    when P(correct) is also below it)."""
    p = probs[answer]
    argmax = max(range(len(probs)), key=probs.__getitem__)
    fooled = argmax != answer and (threshold is None or p < threshold)
    return Outcome(not fooled, 1.0 if argmax == answer else 0.0, "exact", [], probs, p)
