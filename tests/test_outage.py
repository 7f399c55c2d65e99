"""A server that dies mid-run, and models that cannot be used at all.

The outage test drives the real `cdv` CLI in a subprocess against the benchmarks' simulated LLM
server (bench/_fakeserver.py, a subprocess too), kills the server mid-run, restarts it and reruns:
the run must stop cleanly, say why, and end with exactly the examples an uninterrupted run finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions
from loopback_server import Reply, completion, serving
from scripted_helpers import write_questions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _fakeserver import FakeServer

pytestmark = pytest.mark.timeout(240)

CDV = [sys.executable, "-m", "cdvkit.cli.app"]


def write_inputs(tmp_path: Path) -> tuple[list, Path, Path]:
    questions = load_questions("sample").questions
    data = write_questions(tmp_path / "q.jsonl", questions)
    config = tmp_path / "cdv.toml"
    # Fast retries, so the test does not wait out the default back-off; an outage is declared
    # once nothing has answered for a second.
    config.write_text(
        "[roles.target]\n"
        "max_retries = 2\nretry_base = 0.05\nretry_max = 0.2\noutage_after = 1.0\ntimeout = 5\n"
    )
    return questions, data, config


def generate_args(data: Path, config: Path, url: str, run_dir: Path) -> list[str]:
    # One model string for every role: one backend, so one view of whether the server is up.
    return [
        "generate", "--data", str(data), "--target", "openai-compatible/sim",
        "--proposer", "openai-compatible/sim", "--judge", "openai-compatible/sim",
        "--base-url", url, "--similarity-floor", "0", "--config", str(config),
        "--run-dir", str(run_dir), "--json",
    ]  # fmt: skip


def examples(run_dir: Path) -> set[tuple[str, str, str]]:
    with RunStore(run_dir, readonly=True, lock=False) as store:
        return {(e["question_id"], e["path"], e["question"]) for e in store.examples()}


def test_a_server_killed_mid_run_stops_it_and_a_rerun_finds_the_same_examples(tmp_path):
    questions, data, config = write_inputs(tmp_path)
    env = {**os.environ, "OPENAI_API_KEY": "sk-outage-test"}
    env.pop("OPENAI_BASE_URL", None)

    def cdv(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CDV, *args], env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path
        )

    with FakeServer(questions, latency=0.01) as fs:
        ref = cdv(generate_args(data, config, fs.base_url, tmp_path / "ref"))
        assert ref.returncode == 0, ref.stderr
        ref_summary = json.loads(ref.stdout)
    expected = examples(tmp_path / "ref")
    assert expected and ref_summary["incomplete"] == 0

    with FakeServer(questions, latency=0.01) as fs:
        run_dir = tmp_path / "run"
        proc = subprocess.Popen(
            [*CDV, *generate_args(data, config, fs.base_url, run_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        # Let the run get going, then take the server away while questions are in flight.
        deadline = time.monotonic() + 60
        while fs.stats()["requests"] < ref_summary["calls"] // 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.02)
        fs.kill()
        out, err = proc.communicate(timeout=120)
        # It stops by itself, says why and how to go on, and claims no result it lacks.
        assert proc.returncode == 1, (out, err)
        assert "server not answering since" in err and "rerun the same command" in err
        assert "Traceback" not in err
        stopped = json.loads(out)
        assert stopped["fatal"] and stopped["unfinished"] > 0
        with RunStore(run_dir, readonly=True, lock=False) as store:
            statuses = {d["status"] for d in store.questions()}
            lost = [f for f in store.failures() if f["kind"] == "lost"]
        assert statuses & {"pending", "running", "incomplete"}
        assert all("cannot reach" in f["error"] or "not answering" in f["error"] for f in lost)

        fs.restart()
        again = cdv(generate_args(data, config, fs.base_url, run_dir))
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        assert summary["incomplete"] == 0 and summary["unfinished"] == 0
    # The interrupted run ends with exactly the uninterrupted run's examples.
    assert examples(run_dir) == expected
    assert summary["examples"] == ref_summary["examples"]
    assert summary["with_example"] == ref_summary["with_example"]


# --- models that cannot be used: one line before anything is written -----------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"question": "What do bees make?", "choices": ["honey", "milk"], "answer": 0})
        + "\n"
    )
    return path


def one_line_refusal(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 or all(n in " ".join(res.output.split()) for n in needles), lines
    flat = " ".join(res.output.split())
    for needle in needles:
        assert needle in flat, (needle, res.output)
    assert "Traceback" not in res.output


def test_a_missing_key_is_one_line_naming_role_model_and_fix(data_file, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    run = tmp_path / "run"
    res = CliRunner().invoke(
        app, ["generate", "--data", str(data_file), "--judge", "openai/gpt-4o", "--run-dir", run]
    )
    one_line_refusal(res, "judge model openai/gpt-4o", "no API key", "OPENAI_API_KEY")
    assert not run.exists()


def test_an_unreachable_server_is_one_line(data_file, tmp_path):
    with serving(lambda req: Reply(json=completion(["x"]))) as server:
        url = server.url
    # The server is gone: nothing listens on its port any more.
    run = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["generate", "--data", str(data_file), "--target", "openai-compatible/m",
         "--base-url", url, "--run-dir", str(run)],
    )  # fmt: skip
    one_line_refusal(res, "target model openai-compatible/m", "cannot reach", "--base-url")
    assert not run.exists()


def test_an_unknown_model_is_one_line(data_file, tmp_path):
    listed = Reply(json={"object": "list", "data": [{"id": "qwen2.5-7b"}, {"id": "llama3"}]})
    with serving(lambda req: Reply(json=completion(["x"])), get_route=lambda r: listed) as srv:
        run = tmp_path / "run"
        res = CliRunner().invoke(
            app,
            ["generate", "--data", str(data_file), "--target", "openai-compatible/qwen2.5-7B",
             "--base-url", srv.url, "--run-dir", str(run)],
        )  # fmt: skip
        assert srv.seen() == []  # nothing was paid for
    one_line_refusal(res, "does not serve a model named 'qwen2.5-7B'", "qwen2.5-7b, llama3")
    assert not run.exists()
    # The same check guards `cdv evaluate`: nothing is written for a model that cannot answer.
    with serving(lambda req: Reply(json=completion(["x"])), get_route=lambda r: listed) as srv:
        examples_file = tmp_path / "ex.jsonl"
        examples_file.write_text(
            json.dumps(
                {"original_question": "Q?", "original_choices": ["a", "b"], "original_answer": 0,
                 "question": "Some context. Q?", "choices": ["b", "a"], "answer": 1}
            ) + "\n"
        )  # fmt: skip
        out = tmp_path / "eval"
        res = CliRunner().invoke(
            app,
            ["evaluate", "--examples", str(examples_file), "--models", "openai-compatible/gpt",
             "--base-url", srv.url, "--out", str(out)],
        )  # fmt: skip
    one_line_refusal(res, "evaluated model openai-compatible/gpt", "does not serve")
    assert not out.exists()
