"""API keys reach the server and nothing else: not the run store, logs, exports or reports.

Keys come from the environment (``OPENAI_API_KEY``, or any variable a role names with
``api_key_env``) or from the config file the user points to with ``--config`` (``api_key`` under
``[roles.<role>]``). A whole `cdv generate` / `evaluate` / `report` / `export` session runs in
subprocesses against the loopback server, which also echoes the key it received back inside error
bodies, where cdvkit truncates the text it records; then every byte written is searched for each
key and for long pieces of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cdvkit.models.http_api import server_message
from cdvkit.prompts import JUDGE_SYSTEM, PROPOSER_BATCH_SYSTEM, PROPOSER_SYSTEM
from cdvkit.search.config import SearchConfig
from loopback_server import Reply, Seen, completion, oracle_letter, serving

pytestmark = pytest.mark.timeout(90)

CDV = [sys.executable, "-m", "cdvkit.cli.app"]
# Distinctive values; the gateway token has no "sk-" prefix, so only exact redaction catches it.
ENV_KEY = "sk-cdvENVkey-4f1e9b7c2a6d8e0f3b5a7c9d1e2f4a6b"
CFG_KEY = "sk-cdvCFGkey-8a2c4e6f0b1d3e5f7a9c1b3d5e7f9a0c"
GATEWAY_KEY = "gwtok-cdvGATEWAY-3e7b1d9f5a2c8e4b6d0f2a4c6e8b0d1f"
KEYS = {"OPENAI_API_KEY": ENV_KEY, "config file": CFG_KEY, "api_key_env": GATEWAY_KEY}

SUBJECTS = [
    ("What do bees make?", ["honey", "milk", "silk", "wool"], "honey"),
    ("What is frozen water called?", ["steam", "ice", "fog", "dew"], "ice"),
    ("Which planet do we live on?", ["Mars", "Earth", "Venus", "Jupiter"], "Earth"),
    ("How many legs does a spider have?", ["six", "eight", "ten", "four"], "eight"),
    ("What colour is grass?", ["green", "pink", "grey", "white"], "green"),
]
# The target's server echoes the key it was sent for these questions, where cdvkit cuts the text
# it keeps (300 characters of an error message, 120 of a body that is not JSON).
TAGS = ["ok1", "ok2", "ok3", "echo-500", "echo-html"]
TAG = re.compile(r"\[([a-z0-9-]+)\]")


def pieces(key: str) -> list[str]:
    """The key, and pieces of it long enough to matter: a prefix, a suffix, the middle."""
    half = len(key) // 2
    return [key, key[:half], key[-half:], key[half // 2 : half // 2 + half]]


def route_for(originals: dict[str, str]):
    def route(req: Seen) -> Reply:
        system = req.body["messages"][0]["content"]
        if system == PROPOSER_SYSTEM:
            return Reply(json=completion(["People often chat about this at lunch."] * req.n))
        if system == PROPOSER_BATCH_SYSTEM:
            sentences = json.dumps({x: "People often chat about this at lunch." for x in "ABCD"})
            return Reply(json=completion([sentences] * req.n))
        if system == JUDGE_SYSTEM:
            verdict = json.dumps({"changes_answer": False, "reason": "unrelated"})
            return Reply(json=completion([verdict] * req.n))
        key = req.headers.get("authorization", "").removeprefix("Bearer ")
        tag = TAG.search(req.user).group(1)  # type: ignore[union-attr]
        if tag == "echo-500":
            msg = "x" * 240 + f" upstream refused token {key} for this request"
            return Reply(500, {"error": {"message": msg, "type": "server_error"}})
        if tag == "echo-html":
            return Reply(raw=("<html>" + "y" * 70 + f" token={key} </html>").encode())
        letter = oracle_letter(req.user, originals)
        return Reply(json=completion([f"Answer: {letter}"] * req.n))

    return route


def test_no_key_in_store_logs_exports_or_report(tmp_path: Path) -> None:
    rows = []
    for tag, (question, choices, answer) in zip(TAGS, SUBJECTS, strict=True):
        rows.append({"question": f"[{tag}] {question}", "choices": choices, "answer": answer})
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    extractor_rules = tmp_path / "extractor.json"
    # The extractor reads the letter the target gave, so it changes no outcome.
    rules = [{"regex": f"Answer: {x}\\n>>>", "reply": x} for x in "ABCD"]
    extractor_rules.write_text(json.dumps({"rules": rules, "default": "NONE"}))
    config = tmp_path / "cdv.toml"  # the user's own file: the one place a key may be written
    config.write_text(
        "always_extract = true\n"  # every answer goes to the extractor too
        "[roles.target]\n"
        'api_key_env = "CDV_TEST_GATEWAY_TOKEN"\nmax_retries = 1\nretry_base = 0.01\n'
        "[roles.judge]\n"
        f'api_key = "{CFG_KEY}"\n'
        "[roles.extractor]\n"  # a keyless backend ignores a key it is given
        f'api_key = "{CFG_KEY}"\n'
    )
    work = tmp_path / "work"  # everything cdvkit writes goes here
    run, log = work / "run", work / "scripted-calls.log"
    env = {
        **os.environ,
        "OPENAI_API_KEY": ENV_KEY,
        "CDV_TEST_GATEWAY_TOKEN": GATEWAY_KEY,
        "CDV_SCRIPTED_LOG": str(log),
    }
    env.pop("OPENAI_BASE_URL", None)
    outputs: list[str] = []

    def cdv(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CDV, *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        return proc

    with serving(route_for({r["question"]: r["answer"] for r in rows})) as server:
        summary = cdv(
            "generate", "--data", str(data), "--target", "openai-compatible/target",
            "--proposer", "openai-compatible/proposer", "--judge", "openai-compatible/judge",
            "--extractor", f"scripted/{extractor_rules}",
            "--base-url", server.url, "--similarity-floor", "0", "--samples", "2",
            "--scoring", "sample", "--max-expansions", "2", "--max-good", "1",
            "--config", str(config), "--run-dir", str(run), "--json",
            code=1,  # the two echoing questions lost their calls: incomplete
        ).stdout  # fmt: skip
        cdv("evaluate", "--run", str(run), "--models", "openai-compatible/eval",
            "--base-url", server.url, "--bootstrap", "200", "--json")  # fmt: skip
        used = {r.headers["authorization"].removeprefix("Bearer ") for r in server.seen()}
    # Each way of giving a key was used: the test searches for keys that really were sent.
    assert used == {ENV_KEY, CFG_KEY, GATEWAY_KEY}
    summary_json = json.loads(summary)
    assert summary_json["with_example"] == 3 and summary_json["incomplete"] == 2
    assert log.exists()  # the scripted extractor was called, and logged its calls

    cdv("report", str(run))
    cdv("report", str(run), "-o", str(work / "report.html"))
    cdv("report", str(run), "--format", "md", "-o", str(work / "report.md"))
    for fmt, out in [("jsonl", "ex.jsonl"), ("hf", "hf"), ("reference", "ref.json"),
                     ("lm-eval", "lm-eval")]:  # fmt: skip
        cdv("export", str(run), "--format", fmt, "-o", str(work / out))

    files = [p for p in work.rglob("*") if p.is_file()]
    names = {p.relative_to(work).as_posix() for p in files}
    assert {"run/run.db", "report.html", "report.md", "ex.jsonl", "ref.json"} <= names
    assert any(n.startswith("hf/") for n in names) and any(n.startswith("lm-eval/") for n in names)
    # The failures that echoed a key are recorded, with their reason, minus the key.
    errors = "\n".join(outputs)
    blobs = {p.relative_to(work).as_posix(): p.read_bytes() for p in files}
    blobs["command output"] = errors.encode()
    assert b"server error (HTTP 500)" in blobs["run/run.db"]
    assert b"is not JSON" in blobs["run/run.db"]
    found = [
        (where, name, piece)
        for where, blob in blobs.items()
        for name, key in KEYS.items()
        for piece in pieces(key)
        for encoded in (piece.encode(), piece.encode("utf-16-le"))
        if encoded in blob
    ]
    assert not found, found


def test_a_config_file_key_is_used_but_not_kept_in_the_stored_settings(tmp_path: Path) -> None:
    config = tmp_path / "cdv.toml"
    config.write_text(f'[roles.judge]\napi_key = "{CFG_KEY}"\nconcurrency = 4\n')
    cfg = SearchConfig.from_sources(config, judge="openai/gpt-4o-mini")
    assert cfg.roles["judge"]["api_key"] == CFG_KEY  # what builds the backend
    stored = cfg.to_dict()  # what the run store keeps, and the report shows
    assert stored["roles"]["judge"] == {"api_key": "***", "concurrency": 4}
    assert CFG_KEY not in json.dumps(stored)
    # A resumed run compares settings without the key: changing the key may resume a run.
    assert cfg.differences(stored) == []


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        # A misspelt role would silently drop its options, the key among them.
        ('[roles.judg]\napi_key = "k"\n', "unknown role 'judg'"),
        ('[roles]\ntarget = "openai/x"\n', "roles.target must be a table"),
        ('roles = "k"\n', "per-role options go under [roles.target]"),
        ('api_key = "k"\n', "unknown configuration keys: api_key"),
    ],
)
def test_a_misplaced_key_in_the_config_file_is_refused(
    tmp_path: Path, toml: str, says: str
) -> None:
    config = tmp_path / "cdv.toml"
    config.write_text(toml)
    with pytest.raises(ValueError, match=re.escape(says)) as info:
        SearchConfig.from_sources(config)
    assert '"k"' not in str(info.value) and "'k'" not in str(info.value)  # never the value


@pytest.mark.parametrize("at", [0, 150, 280, 295, 299, 320])
def test_an_echoed_key_cut_by_the_length_limit_leaves_no_piece(at: int) -> None:
    # Both backends keep 300 characters of a server's error message; the key is taken out first.
    echo = Exception("HTTP 500")
    echo.body = {"error": {"message": "x" * at + f" bad token {GATEWAY_KEY} sent"}}  # type: ignore[attr-defined]
    msg = server_message(echo, [GATEWAY_KEY])
    assert len(msg) <= 303
    assert not [p for p in pieces(GATEWAY_KEY) if p in msg], msg
