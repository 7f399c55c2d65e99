"""A `cdv generate` killed with SIGKILL resumes with the same examples and pays nothing twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdvkit.store import RunStore

HERE = Path(__file__).resolve().parent


def write_data(path: Path, n: int = 12) -> Path:
    colors = ["red", "green", "blue", "yellow", "purple", "orange"]
    with path.open("w") as f:
        for i in range(n):
            answer = colors[i % len(colors)]
            choices = [answer, *[c for c in colors if c != answer][:3]]
            choices = choices[i % 4 :] + choices[: i % 4]
            f.write(
                json.dumps(
                    {
                        "question": f"Item {i} of the test set is painted which colour, {answer}?",
                        "choices": choices,
                        "answer": answer,
                    }
                )
                + "\n"
            )
    return path


def cdv_cmd(data: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, str(HERE / "drive_cli.py"), "generate",
        "--data", str(data), "--target", "scripted/oracle", "--proposer", "scripted/prop",
        "--similarity-floor", "0", "--samples", "2", "--seed", "3", "--concurrency", "4",
        "--max-expansions", "4", "--run-dir", str(run_dir), "--quiet",
    ]  # fmt: skip


def run_env(data: Path, log: Path, delay: str) -> dict[str, str]:
    return {**os.environ, "CDV_ORACLE_DATA": str(data), "CDV_SCRIPTED_LOG": str(log),
            "CDV_SCRIPTED_DELAY": delay, "HF_HUB_OFFLINE": "1"}  # fmt: skip


def outcome(run_dir: Path) -> tuple[list[tuple], int]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        examples = sorted(
            (e["question_id"], e["path"], e["question"], tuple(e["choices"]), e["answer"])
            for e in store.examples()
        )
        return examples, store.paid_calls()


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [3, 17, 41])
def test_sigkill_then_rerun_pays_nothing_twice(tmp_path, kill_after):
    data = write_data(tmp_path / "q.jsonl")
    ref_log = tmp_path / "ref.log"
    subprocess.run(
        cdv_cmd(data, tmp_path / "ref"), env=run_env(data, ref_log, "0"), check=True, timeout=120
    )
    ref_examples, ref_calls = outcome(tmp_path / "ref")
    assert ref_examples, "the scripted setup must produce examples"

    log = tmp_path / "killed.log"
    proc = subprocess.Popen(cdv_cmd(data, tmp_path / "run"), env=run_env(data, log, "0.05"))
    deadline = time.time() + 60
    while len(log_lines(log)) < kill_after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    # A kill at a random moment of a call's life, not right after the log grew.
    time.sleep(random.Random(kill_after).uniform(0, 0.05))
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = len(log_lines(log))  # the scripted model logs each call when it is sent (paid)
    _, stored = outcome(tmp_path / "run")
    in_flight = sent - stored  # sent but not answered when killed: lost, as documented
    assert 0 <= in_flight <= 16  # at most the models' concurrency limits (8 each, 2 models)
    assert 0 < sent < len(log_lines(ref_log))

    subprocess.run(
        cdv_cmd(data, tmp_path / "run"), env=run_env(data, log, "0"), check=True, timeout=120
    )
    examples, calls = outcome(tmp_path / "run")
    assert examples == ref_examples
    assert calls == ref_calls
    keys = [json.loads(x)["key"] for x in log_lines(log)]
    # Only the calls lost in flight were sent again; everything answered came from the store.
    assert len(keys) - len(set(keys)) == in_flight
    assert len(keys) == len(log_lines(ref_log)) + in_flight
