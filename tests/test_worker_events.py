"""A Ray worker's writes reach the run store as events (cdvkit.executors.events); these tests need
no Ray: the recorder a worker writes to and the driver's ``apply_event`` are driven directly."""

from __future__ import annotations

from pathlib import Path

from cdvkit.executors.events import EventRecorder, apply_event
from cdvkit.models.client import current_question
from cdvkit.store import RunStore

CALL = {"model": "m", "role": "target", "request": {"q": 1}, "response": {"text": "A"}}


def drain(recorder: EventRecorder, qid: str, store: RunStore) -> None:
    queue = recorder._open[qid].queue
    while not queue.empty():
        apply_event(store, queue.get_nowait())


def test_a_worker_call_in_flight_when_the_driver_dies_is_counted_as_paid_twice(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    recorder = EventRecorder()
    recorder.open("q1")
    token = current_question.set("q1")
    try:
        # The call goes out from the worker; the driver notes it, then dies before its reply.
        recorder.mark_sent(["k1"], role="target")
        with RunStore(run) as store:
            drain(recorder, "q1", store)
    finally:
        current_question.reset(token)
    # The resumed run (a new driver: another opening of the store) sends it again and pays.
    with RunStore(run) as store:
        store.mark_sent(["k1"], role="target")
        store.put_call("k1", **CALL, question_id="q1")
        assert store.paid_twice() == 1


def test_a_refused_worker_call_leaves_no_note(tmp_path: Path) -> None:
    recorder = EventRecorder()
    recorder.open("q1")
    token = current_question.set("q1")
    try:
        recorder.mark_sent(["k1"], role="target")
        recorder.mark_unanswered(["k1"])  # the server said no: nothing was paid
        with RunStore(tmp_path / "run") as store:
            drain(recorder, "q1", store)
    finally:
        current_question.reset(token)
    with RunStore(tmp_path / "run") as store:
        store.mark_sent(["k1"], role="target")
        store.put_call("k1", **CALL, question_id="q1")
        assert store.paid_twice() == 0
