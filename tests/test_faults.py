"""Fault injection: `cdv generate` against a misbehaving OpenAI-compatible server on loopback.

One run mixes healthy questions with questions whose every request meets a given fault (chosen by
a tag in the question text), so the tests check that a fault costs its own question only: the
call is retried, or recorded as lost with its reason and the question marked incomplete (never
"done": a lost call is no result), and the search goes on with the others.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cdvkit.cli.app import app
from cdvkit.store import RunStore
from loopback_server import Reply, Seen, completion, oracle_letter, serving

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-proj-FAULTS-7d1c0e9a4b2f-unique"
RETRIES = 2  # [roles.target] max_retries below: a transient fault costs 1 + RETRIES requests
TIMEOUT = 0.5  # [roles.target] timeout: long enough for a healthy reply on a busy machine
RETRY_AFTER = 1  # seconds a rate-limited reply asks for, and the run must wait

REFUSAL = "I'm sorry, but I can't answer a question like that."

# tag -> (what the server does to every request for that question, expected question status,
# text the recorded failure must contain, requests the server must see for the root node)
Outcome = tuple[str, str | None, int | None]
EXPECTED: dict[str, Outcome] = {
    "ok1": ("done", None, None),
    "ok2": ("done", None, None),
    "rate-once": ("done", None, None),  # 429 + Retry-After once, then healthy
    "busy-once": ("done", None, None),  # 503 once, then healthy
    "rate-always": ("incomplete", "rate limited (HTTP 429)", 1 + RETRIES),
    "err500": ("incomplete", "server error (HTTP 500)", 1 + RETRIES),
    "hang": ("incomplete", "timed out", 1 + RETRIES),
    "cut": ("incomplete", "Connection error", 1 + RETRIES),
    "truncated": ("incomplete", "is not JSON", 1 + RETRIES),
    "html": ("incomplete", "is not JSON", 1 + RETRIES),
    "empty": ("incomplete", "empty choices", 1 + RETRIES),
    # A 400 is the server's final word (here: the prompt is over its context length): no retry.
    "too-long": ("incomplete", "request rejected (HTTP 400)", 1),
    # A refusal is an answer naming no choice: counted wrong, so the original already "fails".
    "refusal-field": ("original_failed", None, None),
    "refusal-text": ("original_failed", None, None),
}

SUBJECTS = [
    ("What do bees make?", ["honey", "milk", "silk", "wool"], "honey"),
    ("What is frozen water called?", ["steam", "ice", "fog", "dew"], "ice"),
    ("Which planet do we live on?", ["Mars", "Earth", "Venus", "Jupiter"], "Earth"),
    ("How many legs does a spider have?", ["six", "eight", "ten", "four"], "eight"),
]


def make_rows(tags: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, tag in enumerate(tags):
        question, choices, answer = SUBJECTS[i % len(SUBJECTS)]
        rows.append({"question": f"[{tag}] {question}", "choices": choices, "answer": answer})
    return rows


TAG = re.compile(r"\[([a-z0-9-]+)\]")


class FaultyRoute:
    """Answers like a model that knows the answers, except where a question's tag says otherwise."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.originals = {r["question"]: r["answer"] for r in rows}
        self.healthy = False  # True: the server has recovered and every fault is gone
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    def __call__(self, req: Seen) -> Reply:
        tag = TAG.search(req.user).group(1)  # type: ignore[union-attr]
        with self._lock:
            self._count[tag] = self._count.get(tag, 0) + 1
            first = self._count[tag] == 1
        ok = Reply(json=completion([f"Answer: {oracle_letter(req.user, self.originals)}"] * req.n))
        if self.healthy:
            return ok
        error = {"error": {"message": "injected fault", "type": "server_error"}}
        match tag:
            case "rate-once" if first:
                return Reply(429, error, headers={"retry-after": str(RETRY_AFTER)})
            case "busy-once" if first:
                return Reply(503, error)
            case "rate-always":
                return Reply(429, error, headers={"retry-after": "0"})
            case "err500":
                return Reply(500, error)
            case "hang":
                return Reply(hang=TIMEOUT * 10)
            case "cut":
                return Reply(json=ok.json, cut_after=12)
            case "truncated":
                return Reply(raw=json.dumps(ok.json).encode()[:40])
            case "html":
                return Reply(raw=b"<html><body>502 Bad Gateway</body></html>")
            case "empty":
                return Reply(json={**completion([]), "choices": []})
            case "too-long":
                msg = "This model's maximum context length is 8 tokens."
                return Reply(
                    400,
                    {"error": {"message": msg, "code": "context_length_exceeded"}},
                )
            case "refusal-field":
                return Reply(json=completion([REFUSAL] * req.n, refusal=True))
            case "refusal-text":
                return Reply(json=completion([REFUSAL] * req.n))
        return ok


def write_inputs(tmp_path: Path, tags: list[str]) -> tuple[Path, Path, list[dict[str, Any]]]:
    rows = make_rows(tags)
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "cdv.toml"
    config.write_text(
        "[roles.target]\n"
        f"timeout = {TIMEOUT}\nmax_retries = {RETRIES}\nretry_base = 0.01\nretry_max = 5.0\n"
    )
    return data, config, rows


def generate(data: Path, config: Path, url: str, run_dir: Path, *extra: str) -> Result:
    # Sampled scoring: the default (auto) first probes the server for log-probs, an extra request
    # per question that would blur the per-question request counts asserted below.
    args = [
        "generate", "--data", str(data), "--target", "openai-compatible/x", "--base-url", url,
        "--proposer", "template", "--similarity-floor", "0", "--samples", "2",
        "--scoring", "sample", "--max-expansions", "2", "--max-good", "1", "--config", str(config),
        "--run-dir", str(run_dir), *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, args)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def status_by_tag(store: RunStore) -> dict[str, dict[str, Any]]:
    return {TAG.search(d["question"].question).group(1): d for d in store.questions()}  # type: ignore[union-attr]


@pytest.mark.slow
def test_each_fault_costs_only_its_own_question(tmp_path: Path) -> None:
    tags = list(EXPECTED)
    data, config, rows = write_inputs(tmp_path, tags)
    route = FaultyRoute(rows)
    run_dir = tmp_path / "run"
    with serving(route) as server:
        res = generate(data, config, server.url, run_dir, "--json")
        # The others made progress, but questions that lost calls are no result: exit code 1.
        assert res.exit_code == 1, res.output
        summary = json.loads(res.stdout)

        with RunStore(run_dir, readonly=True, lock=False) as store:
            by_tag = status_by_tag(store)
            failures = store.failures()
            assert {t: by_tag[t]["status"] for t in tags} == {t: e[0] for t, e in EXPECTED.items()}
            ids = {t: by_tag[t]["id"] for t in tags}
            for tag, (_status, reason, root_requests) in EXPECTED.items():
                mine = [f for f in failures if f["question_id"] == ids[tag]]
                lost = [f for f in mine if f["kind"] == "lost"]
                if reason is None:
                    # A retried fault costs no call: only its refused attempts are counted.
                    assert not lost, (tag, mine)
                    assert all(f["kind"] == "retried" for f in mine), (tag, mine)
                    continue
                # One lost call, recorded with its reason, on the question's own row too; every
                # refused attempt before it is counted as well.
                assert len(lost) == 1, (tag, mine)
                assert reason in lost[0]["error"] and lost[0]["role"] == "target"
                assert reason in (by_tag[tag]["error"] or "")
                assert len(server.seen(f"[{tag}]")) == root_requests, (tag, lost[0]["error"])
                assert len(mine) == root_requests, (tag, mine)  # requests sent = rows
            # Every retried fault was asked again, and the run honoured the Retry-After header.
            first, second = server.seen("[rate-once]")[:2]
            assert second.at - first.at >= RETRY_AFTER - 0.05
            assert len(server.seen("[busy-once]")) >= 2

            # A refusal is recorded as an answer that names no choice, and counted wrong.
            for tag in ("refusal-field", "refusal-text"):
                (root,) = store.nodes(ids[tag])
                answers = root["outputs"]["answers"]
                assert len(answers) == 2 and root["rate"] == 0.0
                assert all(a["status"] == "unparsed" and a["correct"] is False for a in answers)
                assert all(REFUSAL in a["reply"] for a in answers)
            examples = {e["question_id"] for e in store.examples()}
            assert examples == {ids[t] for t, e in EXPECTED.items() if e[0] == "done"}
            # Every request the server saw is either a paid call or a counted failure.
            assert len(server.seen()) == store.paid_calls() + len(failures)

        n_failed = sum(e[0] == "incomplete" for e in EXPECTED.values())
        assert summary["incomplete"] == n_failed
        assert summary["requests_failed"] == len(failures)
        lost_reasons = [g for g in summary["failures"] if g["kind"] == "lost"]
        assert sum(g["count"] for g in lost_reasons) == n_failed
        assert summary["with_example"] == sum(e[0] == "done" for e in EXPECTED.values())
        assert summary["pending"] == 0 and summary["fatal"] is None
        # Each distinct failure was shown as it happened, with its reason.
        assert "server error (HTTP 500)" in res.stderr and "is not JSON" in res.stderr

        # Once the server recovers, the same command retries exactly the incomplete questions;
        # the finished ones are not asked again.
        route.healthy = True
        before = {t: len(server.seen(f"[{t}]")) for t in tags}
        res = generate(data, config, server.url, run_dir, "--json")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout)
        assert summary["incomplete"] == 0 and summary["unfinished"] == 0
        refusals = sum(e[0] == "original_failed" for e in EXPECTED.values())
        assert summary["with_example"] == len(tags) - refusals
        for tag, (status, _, _) in EXPECTED.items():
            asked_again = len(server.seen(f"[{tag}]")) > before[tag]
            assert asked_again == (status == "incomplete"), tag


def test_bad_credentials_stop_the_run_at_once_with_one_message(tmp_path: Path) -> None:
    tags = [f"q{i}" for i in range(6)]
    data, config, rows = write_inputs(tmp_path, tags)
    body = {
        "error": {
            # OpenAI echoes the key it was given; cdvkit must never repeat it.
            "message": f"Incorrect API key provided: {SECRET}. You can find your API key at ...",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    refuse = lambda req: Reply(401, body)  # noqa: E731
    # Checked before the run: one line, exit 2, nothing sent but the check, no run directory.
    with serving(refuse, get_route=refuse) as server:
        res = generate(data, config, server.url, tmp_path / "run")
        assert server.seen() == [] and len(server.gets) == 1
    assert res.exit_code == 2, res.output
    assert "target model openai-compatible/x" in res.output
    assert "rejected the API key (HTTP 401)" in res.output and "OPENAI_API_KEY" in res.output
    assert SECRET not in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()

    # A key the server stops accepting during the run stops it at once.
    with serving(refuse) as server:
        res = generate(data, config, server.url, tmp_path / "run")
        assert res.exit_code == 1, res.output
        # No retry storm: each question asked once at most, and never once the key was refused.
        sent = server.seen()
        assert 1 <= len(sent) <= len(tags)
        assert all(len(server.seen(f"[{t}]")) <= 1 for t in tags)
        assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in sent)
    assert res.output.count("rejected the API key (HTTP 401)") == 1
    assert "OPENAI_API_KEY" in res.output  # says what to fix
    assert "Traceback" not in res.output
    assert SECRET not in res.output
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        # Nothing is marked failed: the questions wait, unfinished, for a rerun with a good key
        # (those cancelled mid-call still read "running", as after a kill).
        assert {d["status"] for d in store.questions()} <= {"pending", "running", "incomplete"}
        assert all(SECRET not in f["error"] for f in store.failures())

    # With a key the server accepts, the same command resumes and finishes the run.
    route = FaultyRoute(rows)
    with serving(route) as server:
        res = generate(data, config, server.url, tmp_path / "run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["with_example"] == len(tags)


def test_a_run_where_no_question_could_be_searched_exits_1(tmp_path: Path) -> None:
    data, config, _ = write_inputs(tmp_path, ["err500", "err500-b", "err500-c"])
    error = {"error": {"message": "boom", "type": "server_error"}}
    with serving(lambda req: Reply(500, error)) as server:
        res = generate(data, config, server.url, tmp_path / "run", "--quiet")
        assert len(server.seen()) == 3 * (1 + RETRIES)
    assert res.exit_code == 1, res.output
    assert "3 question(s) incomplete" in res.output
    # Why, even with --quiet: the failure as it happened, and the summary's count by reason.
    assert "server error (HTTP 500): boom" in res.stderr
    assert "Requests refused or failed, by reason" in res.stdout
    assert "Traceback" not in res.output
