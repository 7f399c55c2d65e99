"""Read-only run directories: cdv reads them, and refuses in one line to write into them.

Root ignores permission bits, so as root the `cdv` subprocesses run where the run directory is
really read-only: as the unprivileged user 65534, or, where that user cannot reach this Python
(a virtualenv under a 0700 /root), in a new user namespace (`unshare --user`), whose process
keeps no capability over the host's files, so root-owned files obey their permission bits.
A probe checks the directory really is read-only for the chosen way before any test uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from cdvkit.store import ReadOnlyRunError, RunStore

CDV = [sys.executable, "-m", "cdvkit.cli.app"]
NOBODY = 65534
TARGET = "embed/all-MiniLM-L6-v2"  # the offline default target
PROBE = """
import sys
from pathlib import Path
import cdvkit  # the reader can import cdvkit
probe = Path(sys.argv[1]) / "probe"
try:
    probe.write_text("x")
except PermissionError:
    print("read-only")
else:
    probe.unlink()
    print("writable")
"""


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@dataclass
class Reader:
    """How to run a process for which the run directory is read-only."""

    how: str
    prefix: list[str]
    preexec: Callable[[], None] | None
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *args],
            env=self.env,
            cwd=self.cwd,
            preexec_fn=self.preexec,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cdv(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(*CDV, *args)


@dataclass
class Sandbox:
    base: Path
    data: Path
    run: Path  # the read-only run directory
    ro_out: Path  # an empty read-only directory
    out: Path  # where the reader may write
    reader: Reader
    snapshot: dict[str, bytes]


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(home),
        "MPLCONFIGDIR": str(home / "mpl"),
        "HF_HOME": str(home / "hf"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _readers(env: dict[str, str], cwd: Path) -> Iterator[Reader]:
    if os.geteuid() != 0:
        yield Reader("owner (chmod)", [], None, env, cwd)
        return
    yield Reader(f"uid {NOBODY}", [], _drop_to_nobody, env, cwd)
    if shutil.which("unshare"):
        yield Reader("user namespace (unshare --user)", ["unshare", "--user"], None, env, cwd)


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def _make_writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, and user 65534 must traverse it.
    base = Path(tempfile.mkdtemp(prefix="cdv-readonly-"))
    base.chmod(0o755)
    try:
        home, out, run, ro_out = base / "home", base / "out", base / "run", base / "ro-out"
        for d in (home, out, ro_out):
            d.mkdir()
        home.chmod(0o777)
        out.chmod(0o777)
        data = base / "q.jsonl"
        rows = [
            {
                "question": f"What is {i} plus {i}?",
                "choices": [str(2 * i), str(2 * i + 1), str(2 * i + 3)],
                "answer": str(2 * i),
            }
            for i in range(1, 8)
        ]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        data.chmod(0o644)
        env = _env(home)
        built = subprocess.run(
            [*CDV, "generate", "--data", str(data), "--limit", "5", "--run-dir", str(run), "-q"],
            env=env,
            cwd=out,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        # Counted without a RunStore, which would leave a -wal and -shm in this (still writable)
        # directory: the read-only run must be a cleanly closed one, with run.db alone.
        raw = sqlite3.connect(f"file:{quote(str(run / 'run.db'))}?immutable=1", uri=True)
        try:
            good = raw.execute("SELECT COUNT(*) FROM nodes WHERE status='good'").fetchone()[0]
        finally:
            raw.close()
        assert good > 0, "the run has no example to export"
        assert not [p.name for p in run.iterdir() if p.name.endswith(("-wal", "-shm"))]
        for p in run.iterdir():
            p.chmod(0o444)
        run.chmod(0o555)
        ro_out.chmod(0o555)

        reader = None
        for candidate in _readers(env, out):
            try:
                probe = candidate.run(sys.executable, "-c", PROBE, str(run), timeout=60)
            except OSError:
                continue
            if probe.returncode == 0 and probe.stdout.strip() == "read-only":
                reader = candidate
                break
        if reader is None:
            pytest.skip("cannot make a directory read-only for a subprocess here")
        yield Sandbox(base, data, run, ro_out, out, reader, _snapshot(run))
    finally:
        _make_writable(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    yield sandbox
    # Whatever the command did, the read-only run is exactly as it was: no -wal, -shm or lock
    # file appeared, and every file kept its bytes.
    assert _snapshot(sandbox.run) == sandbox.snapshot
    assert not any(sandbox.ro_out.iterdir())


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    message = " ".join(res.stderr.split())  # rich may wrap a long line
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_elsewhere(sb: Sandbox, fmt: str) -> None:
    report = sb.out / f"report.{fmt}"
    res = sb.reader.cdv("report", str(sb.run), "-o", str(report), "--format", fmt)
    assert res.returncode == 0, (sb.reader.how, res.stdout, res.stderr)
    assert report.stat().st_size > 0


def test_report_into_the_run_is_one_line(sb: Sandbox) -> None:
    res = sb.reader.cdv("report", str(sb.run))
    assert_one_line_error(res, str(sb.run), "read-only", "-o")


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("jsonl", "x.jsonl"),
        ("hf", "hf"),
        ("reference", "ref.json"),
        ("lm-eval", "lm-eval"),
        ("sft", "sft"),
        ("dpo", "dpo"),
    ],
)
def test_export_elsewhere(sb: Sandbox, fmt: str, name: str) -> None:
    target = sb.out / f"export-{name}"
    res = sb.reader.cdv("export", str(sb.run), "--format", fmt, "-o", str(target))
    assert res.returncode == 0, (sb.reader.how, res.stdout, res.stderr)
    assert target.exists()
    if target.is_dir():
        assert any(target.iterdir())
    else:
        assert target.stat().st_size > 0


def test_export_into_the_run_is_one_line(sb: Sandbox) -> None:
    res = sb.reader.cdv("export", str(sb.run))
    assert_one_line_error(res, str(sb.run), "read-only", "-o")


def test_evaluate_elsewhere(sb: Sandbox) -> None:
    dest = sb.out / "eval"
    res = sb.reader.cdv(
        "evaluate", "--run", str(sb.run), "--out", str(dest), "--models", TARGET,
        "--bootstrap", "200", "-q",
    )  # fmt: skip
    assert res.returncode == 0, (sb.reader.how, res.stdout, res.stderr)
    assert json.loads((dest / "evaluation.json").read_text())


def test_evaluate_into_the_run_is_one_line(sb: Sandbox) -> None:
    res = sb.reader.cdv(
        "evaluate", "--run", str(sb.run), "--models", TARGET, "--bootstrap", "200", "-q"
    )
    assert_one_line_error(res, str(sb.run), "read-only", "--out")


def test_evaluate_out_readonly_is_one_line(sb: Sandbox) -> None:
    res = sb.reader.cdv(
        "evaluate", "--run", str(sb.run), "--out", str(sb.ro_out), "--models", TARGET,
        "--bootstrap", "200", "-q",
    )  # fmt: skip
    assert_one_line_error(res, str(sb.ro_out), "read-only", "--out")


def test_generate_into_the_run_is_one_line(sb: Sandbox) -> None:
    res = sb.reader.cdv(
        "generate", "--data", str(sb.data), "--limit", "5", "--run-dir", str(sb.run), "-q"
    )
    assert_one_line_error(res, str(sb.run), "read-only", "--run-dir")


# --- the store itself ------------------------------------------------------------------------


def test_readonly_store_reads_a_wal_a_writer_holds_open(tmp_path: Path) -> None:
    run = tmp_path / "run"
    writer = RunStore(run)
    try:
        writer.set_meta("first", "1")
        writer.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the schema and "first" in run.db
        writer.db.execute("PRAGMA wal_autocheckpoint=0")  # and every later commit in the WAL
        for i in range(50):
            writer.set_meta(f"k{i}", str(i))
        assert (run / "run.db-wal").stat().st_size > 0
        raw = sqlite3.connect(f"file:{quote(str(run / 'run.db'))}?immutable=1", uri=True)
        try:  # run.db alone does not hold these commits yet: they are in the WAL only
            assert raw.execute("SELECT value FROM meta WHERE key='first'").fetchone() == ("1",)
            assert raw.execute("SELECT value FROM meta WHERE key='k49'").fetchone() is None
        finally:
            raw.close()
        with RunStore(run, readonly=True) as reader:
            assert reader.get_meta("first") == "1"
            assert [reader.get_meta(f"k{i}") for i in range(50)] == [str(i) for i in range(50)]
            writer.set_meta("later", "yes")  # committed while the reader is open
            assert reader.get_meta("later") == "yes"
            with pytest.raises(ReadOnlyRunError, match="opened read-only"):
                reader.set_meta("nope", "x")
            with pytest.raises(ReadOnlyRunError), reader.transaction() as tx:
                tx.set_meta("nope", "x")
        assert writer.get_meta("nope") is None
        writer.set_meta("after", "ok")  # the writer is not disturbed by the reader
    finally:
        writer.close()


def test_readonly_store_of_a_missing_run_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RunStore(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()
