"""A `cdv generate` stopped by a signal: SIGTERM ends it as Ctrl-C does, and after SIGKILL the
rerun's summary counts the calls paid twice (those in flight at the kill, sent again).

Each test drives the real CLI in a subprocess whose scripted models are slowed
(CDV_SCRIPTED_DELAY) so the signal lands mid-run, and compares with an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cdvkit.store import RunStore
from test_resume import cdv_cmd, log_lines, outcome, run_env, write_data

pytestmark = pytest.mark.timeout(120)

RESUME_HINT = "interrupted: the run is saved; rerun the same command to resume"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    base = tmp_path_factory.mktemp("ref")
    data = write_data(base / "q.jsonl")
    log = base / "ref.log"
    subprocess.run(cdv_cmd(data, base / "run"), env=run_env(data, log, "0"), check=True, timeout=60)
    return data, base / "run", log_lines(log)


def start_and_wait(data: Path, run_dir: Path, log: Path, calls: int) -> subprocess.Popen[str]:
    """`cdv generate` with slow calls, once it has sent ``calls`` of them."""
    proc = subprocess.Popen(
        cdv_cmd(data, run_dir), env=run_env(data, log, "0.05"), stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while len(log_lines(log)) < calls and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before the signal"
    return proc


def healthy(run_dir: Path) -> None:
    with sqlite3.connect(run_dir / "run.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with RunStore(run_dir):  # the lock was released: a writing open succeeds
        pass


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_a_run_as_ctrl_c_does(
    reference: tuple[Path, Path, list[str]], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    data, ref_run, _ = reference
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    proc = start_and_wait(data, run_dir, log, 10)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    # The same message and resume hint for both; the exit code says which signal (128 + N).
    assert proc.returncode == code, err
    assert RESUME_HINT in err
    assert "Traceback" not in err
    healthy(run_dir)
    with RunStore(run_dir, readonly=True, lock=False) as store:
        assert {d["status"] for d in store.questions()} & {"pending", "running", "incomplete"}
    # Rerun: the run completes with exactly the uninterrupted run's examples and calls.
    subprocess.run(cdv_cmd(data, run_dir), env=run_env(data, log, "0"), check=True, timeout=60)
    assert outcome(run_dir) == outcome(ref_run)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [7, 29])
def test_the_summary_counts_the_calls_a_kill_made_us_pay_twice(
    reference: tuple[Path, Path, list[str]], tmp_path: Path, kill_after: int
) -> None:
    data, ref_run, ref_log = reference
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    proc = start_and_wait(data, run_dir, log, kill_after)
    # Inside the latest call's life (each takes 0.05 s): at least that one is in flight.
    time.sleep(random.Random(kill_after).uniform(0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = len(log_lines(log))  # the scripted model logs each request as it is sent
    _, stored = outcome(run_dir)
    in_flight = sent - stored
    assert in_flight > 0

    rerun = subprocess.run(
        [*cdv_cmd(data, run_dir), "--json"], env=run_env(data, log, "0"), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    keys = [json.loads(x)["key"] for x in log_lines(log)]
    paid_twice = len(keys) - len(set(keys))  # what the server saw twice
    assert paid_twice == in_flight
    assert summary["paid_twice"] == paid_twice
    # Every call is in the store once; the ones paid twice are on top of the reference's.
    assert outcome(run_dir) == outcome(ref_run)
    assert summary["calls"] == len(ref_log) and len(keys) == len(ref_log) + paid_twice
    with RunStore(run_dir, readonly=True, lock=False) as store:
        assert store.db.execute("SELECT COUNT(*) FROM calls_in_flight").fetchone()[0] == 0

    # The text summary shows it too (a further rerun replays everything and pays nothing).
    cmd = [a for a in cdv_cmd(data, run_dir) if a != "--quiet"]
    shown = subprocess.run(
        cmd, env=run_env(data, log, "0"), capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    row = next(x for x in shown.stdout.splitlines() if "calls paid twice" in x)
    assert row.split()[-2] == str(paid_twice), row
    assert len(log_lines(log)) == len(keys)


@pytest.mark.slow
def test_an_uninterrupted_run_pays_nothing_twice(reference: tuple[Path, Path, list[str]]) -> None:
    _, ref_run, _ = reference
    with RunStore(ref_run, readonly=True, lock=False) as store:
        assert store.paid_twice() == 0
        assert store.db.execute("SELECT COUNT(*) FROM calls_in_flight").fetchone()[0] == 0
