from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdvkit.data.question import Question
from cdvkit.store import IncompatibleRunError, RunLockedError, RunStore


def test_second_writer_is_refused(tmp_path):
    with RunStore(tmp_path / "r"):
        with pytest.raises(RunLockedError, match="in use by another cdv process"):
            RunStore(tmp_path / "r")
        # Another process too, not only another handle in this one.
        code = (
            "import sys; from cdvkit.store import RunStore, RunLockedError\n"
            f"try:\n    RunStore({str(tmp_path / 'r')!r})\nexcept RunLockedError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 3 and "in use" in proc.stdout
    RunStore(tmp_path / "r").close()  # released once the first is closed


def test_incompatible_schema_is_refused(tmp_path):
    RunStore(tmp_path / "r").close()
    db = sqlite3.connect(tmp_path / "r" / "run.db")
    db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(IncompatibleRunError, match="schema 999"):
        RunStore(tmp_path / "r")


def test_wal_and_immediate_commit(tmp_path):
    store = RunStore(tmp_path / "r")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    q = Question("q1", "Q?", ("a", "b"), 1)
    store.add_questions([q])
    store.put_call("k", model="m", role="target", request={}, response={"value": "x"})
    # A second connection sees the rows without the first closing or committing anything more.
    other = sqlite3.connect(tmp_path / "r" / "run.db")
    assert other.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
    assert other.execute("SELECT COUNT(*) FROM questions").fetchone()[0] == 1
    other.close()
    store.close()


def test_calls_count_batches_once(tmp_path):
    with RunStore(tmp_path / "r") as store:
        for i in range(3):
            store.put_call(
                f"k{i}", model="m", role="target", request={}, response={"value": i}, batch="b1"
            )
        store.put_call("k9", model="m", role="judge", request={}, response={"value": 0})
        assert store.paid_calls() == 2
        by_role = store.usage_by_role()
        assert by_role["target"]["calls"] == 1 and by_role["target"]["samples"] == 3


def test_export_jsonl(tmp_path):
    q = Question("q1", "Q?", ("a", "b"), 1)
    with RunStore(tmp_path / "r") as store:
        store.add_questions([q])
        store.save_node(
            "q1",
            {
                "path": "r.0",
                "parent_path": "r",
                "depth": 2,
                "question": "X. Q?",
                "choices": ["b", "a"],
                "answer": 0,
                "status": "good",
                "rate": 0.0,
                "distraction": "X.",
                "placement": "prefix",
                "target_option": "a",
            },
        )
        store.save_node("q1", {"path": "r.1", "parent_path": "r", "depth": 2, "question": "Y. Q?",
                               "choices": ["a", "b"], "answer": 1, "status": "open"})  # fmt: skip
        # The progress bar counts examples by the index, without reading a node.
        assert store.count_nodes("good") == len(store.nodes(status="good")) == 1
        assert (store.count_nodes("open"), store.count_nodes("error")) == (1, 0)
        n = store.export_jsonl(tmp_path / "out.jsonl")
    assert n == 1
    row = (tmp_path / "out.jsonl").read_text()
    assert '"answer_text": "b"' in row and '"original_answer": 1' in row


def test_cache_keys_never_change() -> None:
    # A run resumes by these keys: a new cdvkit must compute exactly what an older one stored.
    from cdvkit.models.base import MCQ, GenerateRequest

    req = GenerateRequest.make(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "Q?"}],
        temperature=0.01,
        mcq=MCQ("Q?", ("a", "b")),
    )
    assert req.cache_keys("openai/gpt-4o-mini", [0, 4]) == [
        "gen:e30c564c1e3c049e41a5b913089d58e12e9cfb74359446017a0439be26cbab99",
        "gen:4a855a70151e6d609aa48e6563fe8e2d15817e6bda8f64549d2f278bbc46093b",
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["system", "user"]), st.text()), min_size=1, max_size=3),
    st.text(),
    st.one_of(st.none(), st.tuples(st.text(), st.lists(st.text(), max_size=3))),
    st.floats(0, 2),
    st.lists(st.integers(0, 40), max_size=5),
)
def test_cache_keys_are_the_sorted_json_of_the_request(
    messages: list[tuple[str, str]],
    model: str,
    mcq: tuple[str, list[str]] | None,
    temperature: float,
    samples: list[int],
) -> None:
    import hashlib
    import json

    from cdvkit.models.base import MCQ, GenerateRequest

    req = GenerateRequest(
        tuple(messages),
        temperature=temperature,
        mcq=MCQ(mcq[0], tuple(mcq[1])) if mcq else None,
    )
    expected = []
    for sample in samples:
        payload = {
            "model": model,
            "messages": req.messages,
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
            "stop": req.stop,
            "seed": req.seed,
            "json_mode": req.json_mode,
            "mcq": {"question": mcq[0], "choices": list(mcq[1])} if mcq else None,
            "sample": sample,
        }
        text = json.dumps(payload, sort_keys=True)
        expected.append("gen:" + hashlib.sha256(text.encode()).hexdigest())
    assert req.cache_keys(model, samples) == expected
