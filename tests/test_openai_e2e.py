"""`cdv generate` with every LLM role served by a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.prompts import JUDGE_SYSTEM, PROPOSER_BATCH_SYSTEM, PROPOSER_SYSTEM, TARGET_SYSTEM
from cdvkit.store import RunStore
from loopback_server import Reply, Seen, completion, serving

QUESTIONS = [
    {"question": "What do bees make?", "choices": ["honey", "milk", "silk", "wool"],
     "answer": "honey"},
    {"question": "Which planet do we live on?", "choices": ["Mars", "Earth", "Venus"],
     "answer": "Earth"},
    {"question": "What is frozen water called?", "choices": ["steam", "ice", "fog", "dew"],
     "answer": "ice"},
]  # fmt: skip
ANSWERS = {q["question"]: q["answer"] for q in QUESTIONS}
HOOK = "Curiously,"


def reply_for(messages: list[dict]) -> tuple[str, str]:
    """(role, text): the server tells roles apart by their system prompts, as a real one can't."""
    system = messages[0]["content"]
    user = messages[-1]["content"]
    if system == PROPOSER_SYSTEM:  # one wrong option per request (the reference's pattern)
        wrong = re.search(r"Wrong option to make plausible: (.*)", user).group(1)
        return "proposer", f"{HOOK} many people have lately been talking about {wrong}."
    if system == PROPOSER_BATCH_SYSTEM:  # the default: every wrong option in one request
        listed = user.split("Wrong options to make plausible:\n")[1].split("\n\n")[0]
        options = (re.match(r"([A-Z])\. (.*)", line) for line in listed.splitlines())
        sentences = {
            m.group(1): f"{HOOK} many people have lately been talking about {m.group(2)}."
            for m in options
        }
        return "proposer", "Here you go:\n```json\n" + json.dumps(sentences) + "\n```"
    if system == JUDGE_SYSTEM:
        # Refuse the distractions aimed at the 'milk' option, approve the others.
        changes = "milk" in user.split("Question with added context:")[1]
        return "judge", json.dumps({"changes_answer": changes, "reason": "test"})
    assert system.startswith(TARGET_SYSTEM)
    lines = user.splitlines()
    choices = {m.group(2): m.group(1) for m in (re.match(r"([A-Z])\. (.*)", x) for x in lines) if m}
    question = lines[0]
    original = next(t for t in ANSWERS if t in question)
    correct = ANSWERS[original]
    if HOOK in question:  # fooled by any distraction
        letter = next(v for k, v in choices.items() if k != correct)
    else:
        letter = choices[correct]
    return "target", f"Let me think. Answer: {letter}"


SEEN: Counter = Counter()  # requests per role


def route(req: Seen) -> Reply:
    role, text = reply_for(req.body["messages"])
    SEEN[role] += 1
    return Reply(json=completion([text] * req.n))


@pytest.fixture
def server():
    SEEN.clear()
    with serving(route) as srv:
        yield srv.url


@pytest.mark.parametrize("provider", ["openai", "openai-compatible"])
def test_all_llm_roles_through_the_openai_backend(server, tmp_path, monkeypatch, provider):
    # `openai/` needs a key (any value for a local server); `openai-compatible/` needs none.
    if provider == "openai":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test-key-0000")
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = tmp_path / "q.json"
    data.write_text(json.dumps(QUESTIONS))
    args = [
        "generate", "--data", str(data), "--target", f"{provider}/target-model",
        "--proposer", f"{provider}/proposer-model", "--judge", f"{provider}/judge",
        "--base-url", server, "--samples", "3", "--similarity-floor", "0",
        "--run-dir", str(tmp_path / "run"), "--json",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert set(SEEN) == {"proposer", "judge", "target"}
    assert summary["with_example"] == 3 and summary["incomplete"] == 0
    # The only failed request is the one log-prob probe the server answered without log-probs
    # (the other questions waited for its answer instead of probing too, and the search scored
    # by sampled answers): counted, so every request sent is accounted for.
    assert [(g["kind"], g["count"]) for g in summary["failures"]] == [("refused", 1)]
    assert summary["calls"] + summary["requests_failed"] == sum(SEEN.values())
    assert "log-probs" in res.stderr
    # "verify": the originals, asked under the protocol before the search knew that this server
    # gives no log-probs (a search scored by log-probs confirms what it finds that way).
    assert set(summary["by_role"]) == {"proposer", "judge", "target", "verify"}

    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        nodes = store.nodes()
        rejected = [n for n in nodes if n["status"] == "rejected"]
        assert rejected and all("milk" in n["distraction"] for n in rejected)
        assert all(n["verdicts"]["judge"]["passed"] is False for n in rejected)
        for ex in store.examples():
            assert HOOK in ex["question"] and ex["rate"] == 0.0
            assert "milk" not in (ex["distraction"] or "")
        # Three samples per node are asked in one request (n=3), and counted once.
        for role in ("target", "verify"):
            assert summary["by_role"][role]["samples"] == 3 * summary["by_role"][role]["calls"]
    calls_before = sum(SEEN.values())

    # The same command again resumes a finished run: the server sees no new request.
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and sum(SEEN.values()) == calls_before
