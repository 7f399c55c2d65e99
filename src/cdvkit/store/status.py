"""The status of a question in a run, one name each, as the run store keeps them."""

from __future__ import annotations

from enum import StrEnum


class QuestionStatus(StrEnum):
    PENDING = "pending"  # not started
    RUNNING = "running"  # being searched (or was, when the process died)
    DONE = "done"  # searched to its limits: every call it needed was answered
    ORIGINAL_FAILED = "original_failed"  # answered wrong without distraction: not searched
    INCOMPLETE = "incomplete"  # a call failed for good, or the run stopped: rerun to retry
    SKIPPED = "skipped"  # left out by the enhanceability prefilter
    FAILED = "failed"  # written by older versions for what is now INCOMPLETE


# Not a result yet: a rerun searches these (again).
UNFINISHED = (
    QuestionStatus.PENDING,
    QuestionStatus.RUNNING,
    QuestionStatus.INCOMPLETE,
    QuestionStatus.FAILED,
)

# Not a status: what --prefilter auto reports (to the callback that hears each question end) as
# it answers a question undistracted before deciding whether to search it; the question has
# not ended, so a progress display shows it apart.
ROOT_ANSWERED = "root answered"
