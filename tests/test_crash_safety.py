"""Crash safety of the run store and the CLI around it.

Torn writes (a process killed inside a large transaction, a WAL cut short), a run killed twice
before it finishes, a run directory from an incompatible version, and two `cdv generate`
processes on one run directory.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.store import RunStore
from test_resume import cdv_cmd, log_lines, outcome, run_env, write_data
from torn_writer import ROWS_PER_BATCH

pytestmark = pytest.mark.timeout(90)

HERE = Path(__file__).resolve().parent
BATCHES = 25


def lines_until(proc: subprocess.Popen[str], marker: str, deadline: float = 30.0) -> list[str]:
    """Lines the process printed up to and including the first one starting with ``marker``."""
    assert proc.stdout is not None
    seen: list[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        if line.startswith(marker):
            return seen
    raise AssertionError(f"no {marker!r} from the writer; got {seen}")


@pytest.fixture(scope="module")
def killed_mid_transaction(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A run dir whose writer was SIGKILLed inside a big uncommitted transaction.

    Yields the directory and the WAL size at the last commit. Tests work on copies of it.
    """
    run_dir = tmp_path_factory.mktemp("torn") / "run"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "torn_writer.py"), str(run_dir), str(BATCHES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        seen = lines_until(proc, "in-txn")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert f"committed {BATCHES - 1}" in seen
    committed_wal = int(next(x for x in seen if x.startswith("wal-committed")).split()[1])
    assert (run_dir / "run.db-wal").stat().st_size > committed_wal + 500_000
    yield run_dir, committed_wal


def copy_run(src: Path, dst: Path) -> Path:
    # The WAL index (-shm) goes along too: a crashed writer leaves one behind, stale.
    shutil.copytree(src, dst)
    return dst


def batches_in(store: RunStore) -> dict[str, int]:
    rows = store.db.execute("SELECT batch, COUNT(*) FROM calls GROUP BY batch").fetchall()
    return {r[0]: r[1] for r in rows}


def check_healthy(store: RunStore) -> None:
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_kill_inside_a_transaction_keeps_every_committed_row(
    killed_mid_transaction: tuple[Path, int], tmp_path: Path
) -> None:
    run_dir = copy_run(killed_mid_transaction[0], tmp_path / "run")
    # A writable open, as the `cdv generate` that resumes it does: the dead writer's lock is gone.
    with RunStore(run_dir) as store:
        check_healthy(store)
        assert batches_in(store) == {f"batch-{b}": ROWS_PER_BATCH for b in range(BATCHES)}
        assert store.paid_calls() == BATCHES
        assert store.total_cost() == pytest.approx(BATCHES * 0.001)
        assert store.get_call("committed-7-2") == {"value": "answer 7.2 " + "x" * 200}
        # Still a working store: the next write lands.
        store.put_call("after", model="m", role="target", request={}, response={"value": "z"})
    with RunStore(run_dir, readonly=True, lock=False) as store:
        assert store.get_call("after") == {"value": "z"}


def test_a_wal_cut_inside_the_torn_transaction_loses_nothing_committed(
    killed_mid_transaction: tuple[Path, int], tmp_path: Path
) -> None:
    src, committed_wal = killed_mid_transaction
    size = (src / "run.db-wal").stat().st_size
    rng = random.Random(7)
    for cut in [committed_wal, committed_wal + 1, *rng.sample(range(committed_wal, size), 3)]:
        run_dir = copy_run(src, tmp_path / f"cut{cut}")
        with open(run_dir / "run.db-wal", "r+b") as f:
            f.truncate(cut)
        with RunStore(run_dir) as store:
            check_healthy(store)
            assert store.paid_calls() == BATCHES, cut
            assert "torn" not in batches_in(store)


def test_a_wal_cut_among_committed_frames_keeps_whole_transactions(
    killed_mid_transaction: tuple[Path, int], tmp_path: Path
) -> None:
    # Storage that loses the WAL's tail (power loss, a full disk) loses the last commits, but the
    # store still opens, and each batch of samples is there whole or not at all, oldest first.
    src, committed_wal = killed_mid_transaction
    rng = random.Random(11)
    for cut in [0, 32, 100, *rng.sample(range(100, committed_wal), 5)]:
        run_dir = copy_run(src, tmp_path / f"cut{cut}")
        with open(run_dir / "run.db-wal", "r+b") as f:
            f.truncate(cut)
        with RunStore(run_dir) as store:
            check_healthy(store)
            present = batches_in(store)
            assert all(n == ROWS_PER_BATCH for n in present.values()), (cut, present)
            kept = sorted(int(b.split("-")[1]) for b in present)
            assert kept == list(range(len(kept))), (cut, kept)


# --- a run killed twice --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    base = tmp_path_factory.mktemp("ref")
    data = write_data(base / "q.jsonl")
    log = base / "ref.log"
    subprocess.run(cdv_cmd(data, base / "run"), env=run_env(data, log, "0"), check=True, timeout=60)
    return data, base / "run", log_lines(log)


def run_and_kill(data: Path, run_dir: Path, log: Path, after: int, seed: int) -> tuple[int, int]:
    """Start `cdv generate`, SIGKILL it once ``after`` more calls were sent; (sent, lost)."""
    sent_before = len(log_lines(log))
    _, stored_before = outcome(run_dir) if (run_dir / "run.db").exists() else ([], 0)
    proc = subprocess.Popen(cdv_cmd(data, run_dir), env=run_env(data, log, "0.05"))
    deadline = time.time() + 60
    while (
        len(log_lines(log)) < sent_before + after and proc.poll() is None and time.time() < deadline
    ):
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0, 0.05))  # anywhere in a call's life
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = len(log_lines(log)) - sent_before
    _, stored = outcome(run_dir)
    return sent, sent - (stored - stored_before)


@pytest.mark.slow
@pytest.mark.parametrize(("first", "second"), [(5, 30), (23, 11)])
def test_killed_twice_then_resumed_pays_every_call_once(
    reference: tuple[Path, Path, list[str]], tmp_path: Path, first: int, second: int
) -> None:
    data, ref_run, ref_log = reference
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    _, lost1 = run_and_kill(data, run_dir, log, first, seed=first)
    # The resume is itself killed, mid-replay of the cached calls or just after.
    _, lost2 = run_and_kill(data, run_dir, log, second, seed=second)
    subprocess.run(cdv_cmd(data, run_dir), env=run_env(data, log, "0"), check=True, timeout=60)
    assert outcome(run_dir) == outcome(ref_run)
    keys = [json.loads(x)["key"] for x in log_lines(log)]
    # Calls cut off in flight by a kill are sent again, once per kill; nothing else is.
    assert len(keys) - len(set(keys)) == lost1 + lost2
    assert len(set(keys)) == len(set(json.loads(x)["key"] for x in ref_log))


# --- an incompatible run directory ---------------------------------------------------------------


def test_generate_refuses_a_run_dir_from_an_incompatible_version(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunStore(run_dir) as store:
        store.set_meta("schema_version", "99")
        store.set_meta("created_by", "cdvkit 9.0.0")
        store.set_config({"made": "by the future"})
    before = (run_dir / "run.db").read_bytes()
    args = ["generate", "--data", "sample", "--target", "scripted/none", "--run-dir", str(run_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert "written by cdvkit 9.0.0 (store schema 99)" in flat
    assert "will not write to it" in flat and "new --run-dir" in flat
    assert "Traceback" not in res.output
    # Refused before anything was written: the old run is exactly as it was.
    assert (run_dir / "run.db").read_bytes() == before
    with sqlite3.connect(run_dir / "run.db") as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert meta["schema_version"] == "99" and json.loads(meta["config"]) == {
        "made": "by the future"
    }


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_generate_refuses_a_run_dir_whose_database_is_not_a_run_store(
    tmp_path: Path, kind: str
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if kind == "garbage":  # e.g. a file overwritten, or not a database at all
        (run_dir / "run.db").write_bytes(random.Random(0).randbytes(8192))
    else:  # another program's SQLite database
        with sqlite3.connect(run_dir / "run.db") as db:
            db.execute("CREATE TABLE things (x)")
            db.execute("INSERT INTO things VALUES (1)")
        db.close()
    before = (run_dir / "run.db").read_bytes()
    args = ["generate", "--data", "sample", "--target", "scripted/none", "--run-dir", str(run_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert str(run_dir / "run.db") in flat and "will not write to it" in flat, flat
    assert "Traceback" not in res.output
    assert (run_dir / "run.db").read_bytes() == before
    # The refusal released the run directory's lock.
    with pytest.raises(Exception, match="will not write to it"):
        RunStore(run_dir)
    for cmd in (["report", str(run_dir)], ["export", str(run_dir)]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code != 0 and "Traceback" not in res.output, (cmd, res.output)
        assert "run.db" in res.output, (cmd, res.output)


# --- two processes, one run directory ------------------------------------------------------------


@pytest.mark.slow
def test_a_second_generate_on_the_same_run_dir_is_refused(tmp_path: Path) -> None:
    data = write_data(tmp_path / "q.jsonl")
    run_dir, log = tmp_path / "run", tmp_path / "calls.log"
    # Slow enough calls that the first run outlives the second process's start (a few seconds
    # of imports): a first run that ends before the second opens the directory is no test.
    first = subprocess.Popen(cdv_cmd(data, run_dir), env=run_env(data, log, "0.5"))
    try:
        deadline = time.time() + 30
        while len(log_lines(log)) < 3 and first.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        assert first.poll() is None, "the first run finished before the second started"
        second = subprocess.run(
            cdv_cmd(data, run_dir), env=run_env(data, log, "0"), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        flat = " ".join(second.stderr.split())
        assert f"run directory {run_dir} is in use by another cdv process" in flat
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the refusal did not disturb the first run
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    with RunStore(run_dir) as store:  # lock released: a writable open succeeds
        check_healthy(store)
        assert {d["status"] for d in store.questions()} <= {"done", "original_failed"}
        keys = [json.loads(x)["key"] for x in log_lines(log)]
        # Only the first process sent calls, each once, and stored every one of them.
        assert len(keys) == len(set(keys)) == store.paid_calls()
        assert list(store.examples())
