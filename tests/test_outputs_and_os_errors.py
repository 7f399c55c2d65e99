"""Outputs never touch a run store, and every OS error is a message (issue 20).

Every output a command writes (`cdv report -o`, `--png`, `cdv export -o` in every format) is
refused, in one line naming the path, exit 2, with nothing written, when it is a run store's
file or lies inside another run; each is written whole or not at all. A folder where a file is
wanted, a file where a folder is wanted, permission denied and a full disk are one line each,
never a traceback, and the run store is byte for byte as it was (or, for a disk that fills under
a run, whole and resumable).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cdvkit.cli.app import app
from cdvkit.data.question import Question
from cdvkit.models.scripted import REGISTRY
from cdvkit.store import RunStore
from cdvkit.store import sqlite as store_sqlite
from eval_helpers import make_run
from scripted_helpers import marking_proposer, oracle_responder
from test_readonly_runs import PROBE, Reader, _env, _make_writable, _readers
from test_resume import write_data

CDV = [sys.executable, "-m", "cdvkit.cli.app"]
STORE_FILES = ["run.db", "run.db-wal", "run.db-shm", "run.lock"]
# Every output a command writes, as the arguments that write it to PATH. Folder outputs last.
FILE_OUTPUTS: dict[str, list[str]] = {
    "report-html": ["report", "{run}", "-o", "{path}"],
    "report-md": ["report", "{run}", "--format", "md", "-o", "{path}"],
    "export-jsonl": ["export", "{run}", "-o", "{path}"],
    "export-reference": ["export", "{run}", "--format", "reference", "-o", "{path}"],
}
FOLDER_OUTPUTS: dict[str, list[str]] = {
    "report-png": ["report", "{run}", "-o", "{spare}", "--png", "{path}"],
    "export-hf": ["export", "{run}", "--format", "hf", "-o", "{path}"],
    "export-lm-eval": ["export", "{run}", "--format", "lm-eval", "-o", "{path}"],
    "export-sft": ["export", "{run}", "--format", "sft", "-o", "{path}"],
    "export-dpo": ["export", "{run}", "--format", "dpo", "-o", "{path}"],
}
OUTPUTS = {**FILE_OUTPUTS, **FOLDER_OUTPUTS}
# Long questions, so a report or an export is far larger than the few KB SQLite writes beside a
# run it reads (its 32 KB -shm): a file-size limit between the two cuts the output's write only.
PADDING = " ".join(["Some context that makes the question long."] * 60)
QUESTIONS = [
    Question(f"q{i}", f"Question {i}: which colour is listed first? {PADDING}", c, 0, source="t")
    for i, c in enumerate(
        [("red", "blue", "green"), ("blue", "green", "red"), ("green", "red", "blue")] * 4
    )
]
SIZE_LIMIT = 48_000  # bytes a process may write to one file in the interrupted-write tests


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("built") / "run", questions=QUESTIONS)


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "run"))


@pytest.fixture
def other(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "other"))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) by its SHA-256."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def args_for(output: str, run: Path, path: Path, spare: Path | None = None) -> list[str]:
    spare = spare or path.parent / "spare-report.html"
    values = {"run": str(run), "path": str(path), "spare": str(spare)}
    return [a.format(**values) for a in OUTPUTS[output]]


def cdv(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(res: Result, code: int, *needles: str) -> str:
    """Exit ``code``, no traceback and no stray exception, one line that holds ``needles``."""
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    flat = " ".join(res.output.split())
    for needle in needles:
        assert needle in flat, flat
    return flat


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders an output left behind in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.endswith(".cdv-tmp")]


# --- outputs never touch a run store ----------------------------------------------------------


@pytest.mark.parametrize("name", STORE_FILES)
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_an_output_on_a_run_store_file_is_refused(run: Path, output: str, name: str) -> None:
    before = snapshot(run)
    target = run / name
    res = cdv(*args_for(output, run, target, spare=run.parent / "spare.html"))
    assert_one_line_error(res, 2, str(target), "run store")
    assert snapshot(run) == before  # run.db byte for byte, and no file added
    assert not (run.parent / "spare.html").exists()  # nothing else written either


@pytest.mark.parametrize("output", ["report-html", "export-jsonl"])
def test_a_link_to_a_run_store_is_refused(run: Path, tmp_path: Path, output: str) -> None:
    link = tmp_path / "innocent.out"
    link.symlink_to(run / "run.db")
    before = snapshot(run)
    res = cdv(*args_for(output, run, link))
    assert_one_line_error(res, 2, str(link), "run store")
    assert snapshot(run) == before


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_an_output_inside_another_run_is_refused(run: Path, other: Path, output: str) -> None:
    before_run, before_other = snapshot(run), snapshot(other)
    target = other / ("plots" if output in FOLDER_OUTPUTS else "out.txt")
    res = cdv(*args_for(output, run, target, spare=run.parent / "spare.html"))
    assert_one_line_error(res, 2, str(target), f"inside the run directory {other}")
    assert snapshot(other) == before_other and snapshot(run) == before_run


@pytest.mark.parametrize("output", list(FOLDER_OUTPUTS))
def test_a_folder_output_never_is_a_run_directory(run: Path, other: Path, output: str) -> None:
    for target in (other, run):  # another run, and the run the command reads
        before = snapshot(target)
        res = cdv(*args_for(output, run, target, spare=run.parent / "spare.html"))
        assert_one_line_error(res, 2, str(target), "run directory")
        assert snapshot(target) == before


def test_the_outputs_a_run_owns_are_still_written(run: Path) -> None:
    # Not a refusal: the defaults cdv writes into the run it reads, and any other name there.
    db = snapshot(run)["run.db"]
    for args in (
        ["report", run],
        ["report", run, "--format", "md", "-o", run / "mine.md", "--png", run / "plots"],
        ["export", run],
        ["export", run, "--format", "hf"],
        ["export", run, "--format", "lm-eval"],
        ["export", run, "--format", "sft"],
        ["export", run, "-o", run / "mine.jsonl"],
    ):
        res = cdv(*args)
        assert res.exit_code == 0, (args, res.output)
    names = {p.name for p in run.iterdir()}
    assert {"report.html", "mine.md", "plots", "examples.jsonl", "hf_dataset"} <= names
    assert {"lm_eval_task", "sft_data", "mine.jsonl"} <= names
    assert snapshot(run)["run.db"] == db and not leftovers(run)


@pytest.mark.parametrize("name", ["run.db", "run.lock"])
def test_the_other_writers_refuse_a_run_store_too(run: Path, tmp_path: Path, name: str) -> None:
    before = snapshot(run)
    target = run / name
    # cdv init (a config file) and cdv train (a model folder; refused before TRL is imported).
    assert_one_line_error(cdv("init", target, "--force"), 2, str(target), "run store")
    sft = tmp_path / "sft"
    assert cdv("export", run, "--format", "sft", "-o", sft).exit_code == 0
    res = cdv("train", "--data", sft, "--model", "hf/none", "--method", "sft", "-o", target)
    assert_one_line_error(res, 2, str(target), "run store")
    # A saved prefilter (`cdv prefilter train -o`, whose training the test skips).
    from cdvkit.prefilter.model import Prefilter
    from cdvkit.store import OutputError

    with pytest.raises(OutputError, match="run store"):
        Prefilter({"a": "classifier"}, {"n": 1}).save(target)
    assert snapshot(run) == before


# --- every output is whole or absent ----------------------------------------------------------


def _limit_file_size() -> None:
    # A write past the limit fails with EFBIG (SIGXFSZ would kill the process instead): the
    # write of an output is cut part way, as by a full disk or a crash.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT, SIZE_LIMIT))


@pytest.mark.parametrize("output", ["report-html", "export-jsonl", "export-reference"])
def test_a_write_cut_short_leaves_the_old_file(run: Path, tmp_path: Path, output: str) -> None:
    full = tmp_path / "full.out"
    assert cdv(*args_for(output, run, full)).exit_code == 0
    assert full.stat().st_size > SIZE_LIMIT  # else the limit would not cut the write
    target = tmp_path / "kept.out"
    target.write_text("the previous output\n")
    before_run = snapshot(run)
    res = subprocess.run(
        [*CDV, *args_for(output, run, target)],
        preexec_fn=_limit_file_size,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert f"cannot write {target}" in " ".join(res.stderr.split())
    assert target.read_text() == "the previous output\n"
    assert not leftovers(tmp_path) and snapshot(run) == before_run


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "new"])
def test_a_folder_export_cut_short_leaves_the_old_folder(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    from cdvkit.export import lm_eval

    target = tmp_path / "tasks"
    if exists:  # an earlier export, of other settings: its files differ from the new ones'
        res = cdv("export", run, "--format", "lm-eval", "--lm-eval-mode", "loglik", "-o", target)
        assert res.exit_code == 0, res.output
    before = snapshot(target) if exists else None
    real = lm_eval._yaml_text
    calls = []

    def cut(cfg: dict) -> str:
        calls.append(cfg)
        if len(calls) == 2:  # after the first task's data and YAML are written
            raise KeyboardInterrupt
        return real(cfg)

    monkeypatch.setattr(lm_eval, "_yaml_text", cut)
    res = cdv("export", run, "--format", "lm-eval", "-o", target)
    assert res.exit_code != 0 and len(calls) == 2
    assert (snapshot(target) if exists else target.exists()) == (before if exists else False)
    assert not leftovers(tmp_path)


def test_a_folder_output_keeps_the_files_it_does_not_write(run: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "notes.txt").write_text("mine")
    for _ in range(2):  # a new plot, then one replacing it
        res = cdv("report", run, "-o", tmp_path / "r.html", "--png", plots)
        assert res.exit_code == 0, res.output
    assert (plots / "notes.txt").read_text() == "mine"
    assert any(p.suffix == ".png" for p in plots.iterdir())
    assert not leftovers(tmp_path)


# --- every OS error is a message ---------------------------------------------------------------


@pytest.mark.parametrize("output", list(FILE_OUTPUTS))
def test_a_folder_where_a_file_is_wanted(run: Path, tmp_path: Path, output: str) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (folder / "inside.txt").write_text("kept")
    before, before_folder = snapshot(run), snapshot(folder)
    res = cdv(*args_for(output, run, folder))
    assert_one_line_error(res, 2, str(folder), "is a folder")
    assert snapshot(folder) == before_folder and snapshot(run) == before


@pytest.mark.parametrize("output", list(FOLDER_OUTPUTS))
def test_a_file_where_a_folder_is_wanted(run: Path, tmp_path: Path, output: str) -> None:
    file = tmp_path / "a-file"
    file.write_text("kept")
    before = snapshot(run)
    res = cdv(*args_for(output, run, file))
    assert_one_line_error(res, 2, str(file), "is a file")
    assert file.read_text() == "kept" and snapshot(run) == before
    assert not (tmp_path / "spare-report.html").exists() and not leftovers(tmp_path)


def _oracle(data: Path) -> None:
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    questions = [
        Question(str(i), r["question"], tuple(r["choices"]), r["choices"].index(r["answer"]))
        for i, r in enumerate(rows)
    ]
    REGISTRY["oracle"] = oracle_responder(questions, fooled_at=2)
    REGISTRY["prop"] = marking_proposer


def generate_args(data: Path, run_dir: Path) -> list[str]:
    return [
        "generate", "--data", str(data), "--target", "scripted/oracle",
        "--proposer", "scripted/prop", "--similarity-floor", "0", "--samples", "2",
        "--seed", "3", "--concurrency", "4", "--max-expansions", "4",
        "--run-dir", str(run_dir), "--quiet",
    ]  # fmt: skip


@pytest.mark.parametrize("where", ["the file", "below the file"])
def test_a_run_dir_that_is_a_file(tmp_path: Path, where: str) -> None:
    data = write_data(tmp_path / "q.jsonl", n=3)
    _oracle(data)
    file = tmp_path / "notes.txt"
    file.write_text("kept")
    run_dir = file if where == "the file" else file / "run"
    res = cdv(*generate_args(data, run_dir))
    assert_one_line_error(res, 2, str(run_dir), f"{'it' if run_dir == file else file} is a file")
    assert file.read_text() == "kept"


def test_evaluate_out_that_is_a_file(run: Path, tmp_path: Path) -> None:
    REGISTRY["oracle"] = oracle_responder(QUESTIONS)
    before = snapshot(run)
    for out in (run / "run.db", tmp_path / "results.json"):
        if not out.exists():
            out.write_text("{}")
        kept = out.read_bytes()
        res = cdv("evaluate", "--run", run, "--models", "scripted/oracle", "--out", out, "-q")
        assert_one_line_error(res, 2, str(out), "is a file")
        assert out.read_bytes() == kept
    assert snapshot(run) == before


@pytest.fixture(scope="module")
def unprivileged(built: Path) -> Iterator[tuple[Reader, Path, Path]]:
    """A process to which a folder is read-only (as test_readonly_runs makes one), a run it may
    read, and that read-only folder."""
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, and user 65534 must traverse it.
    base = Path(tempfile.mkdtemp(prefix="cdv-oserrors-"))
    base.chmod(0o755)
    try:
        home, ro = base / "home", base / "ro"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        ro.mkdir()
        run = Path(shutil.copytree(built, base / "run"))
        for p in [run, *run.iterdir()]:
            p.chmod(0o777 if p.is_dir() else 0o666)  # the reader opens it as it would its own
        ro.chmod(0o555)
        env = _env(home)
        for reader in _readers(env, home):
            try:
                probe = reader.run(sys.executable, "-c", PROBE, str(ro), timeout=60)
            except OSError:
                continue
            if probe.returncode == 0 and probe.stdout.strip() == "read-only":
                yield reader, run, ro
                return
        pytest.skip("cannot make a folder read-only for a subprocess here (e.g. no uid switch)")
    finally:
        _make_writable(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("output", ["report-html", "export-jsonl", "report-png", "export-hf"])
def test_permission_denied_is_one_line(
    unprivileged: tuple[Reader, Path, Path], output: str
) -> None:
    reader, run, ro = unprivileged
    target = ro / ("plots" if output in FOLDER_OUTPUTS else "out.txt")
    before = snapshot(run)
    res = reader.cdv(*args_for(output, run, target, spare=run.parent / "home" / "r.html"))
    assert res.returncode == 2, (reader.how, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    flat = " ".join(res.stderr.split())
    assert str(target) in flat and "permission denied" in flat, flat
    assert not any(ro.iterdir()) and snapshot(run) == before


def _examples(run_dir: Path) -> list[tuple]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return sorted(
            (e["question_id"], e["path"], e["question"], tuple(e["choices"]), e["answer"])
            for e in store.examples()
        )


def _cap_pages(monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
    """Every writable store opened from now on holds at most ``pages`` pages: SQLite's own
    SQLITE_FULL ("database or disk is full") on the write that needs one more, as a full disk
    gives it, whichever write that is (a call, a node, a status)."""
    real_init = store_sqlite.RunStore.__init__

    def init(self: RunStore, *args: object, readonly: bool = False, **kw: object) -> None:
        real_init(self, *args, readonly=readonly, **kw)  # type: ignore[arg-type]
        if not readonly:
            self.db.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(store_sqlite.RunStore, "__init__", init)


def test_a_full_disk_stops_the_run_with_one_message_and_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_data(tmp_path / "q.jsonl")
    _oracle(data)
    ref = tmp_path / "ref"
    assert cdv(*generate_args(data, ref)).exit_code == 0
    with sqlite3.connect(ref / "run.db") as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    run_dir = tmp_path / "run"
    with monkeypatch.context() as m:
        _cap_pages(m, pages // 2)  # the disk fills half way through the run
        res = cdv(*generate_args(data, run_dir))
    flat = assert_one_line_error(res, 1, "disk full:", "free space and rerun", str(run_dir))
    with sqlite3.connect(run_dir / "run.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = db.execute(
            "SELECT COUNT(*) FROM questions WHERE status IN ('done', 'original_failed')"
        ).fetchone()[0]
    db.close()
    assert 0 < kept < 12 and f"disk full: {kept} questions kept" in flat
    with RunStore(run_dir) as store:  # the store opens, and takes the next write
        store.set_meta("after", "the disk was freed")
    res = cdv(*generate_args(data, run_dir))  # space is back: the rerun completes
    assert res.exit_code == 0, res.output
    assert _examples(run_dir) == _examples(ref)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2.4 MB file system of its own (tmpfs), for a disk that really fills; skipped where this
    process may not mount one (not root, or no CAP_SYS_ADMIN in a container)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2400k", "tmpfs", str(mnt)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_disk_stops_the_run_and_a_rerun_completes(
    tmp_path: Path, small_disk: Path
) -> None:
    data = write_data(tmp_path / "q.jsonl")
    env = {**os.environ, "CDV_ORACLE_DATA": str(data), "CDV_FOOLED_AT": "2"}
    driver = [sys.executable, str(Path(__file__).parent / "drive_cli.py")]

    def generate(run_dir: Path) -> subprocess.CompletedProcess[str]:
        args = generate_args(data, run_dir)
        return subprocess.run(
            [*driver, *args], env=env, capture_output=True, text=True, timeout=120
        )

    ref = tmp_path / "ref"
    assert generate(ref).returncode == 0
    run_dir = small_disk / "run"
    res = generate(run_dir)  # the WAL outgrows the file system part way
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: disk full: "), res.stderr
    with sqlite3.connect(run_dir / "run.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = db.execute(
            "SELECT COUNT(*) FROM questions WHERE status IN ('done', 'original_failed')"
        ).fetchone()[0]
    db.close()
    assert f"disk full: {kept} questions kept" in " ".join(res.stderr.split())
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    res = generate(run_dir)  # space freed: the same command resumes and completes
    assert res.returncode == 0, res.stderr
    assert _examples(run_dir) == _examples(ref)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("output", ["report-html", "export-jsonl"])
def test_a_full_disk_under_an_output_is_one_line(run: Path, output: str) -> None:
    before = snapshot(run)
    res = cdv(*args_for(output, run, Path("/dev/full")))  # every write: ENOSPC, from the kernel
    assert_one_line_error(res, 1, "disk full", "/dev/full", "free space and rerun")
    assert snapshot(run) == before


def test_os_errors_are_worded_for_the_user() -> None:
    from cdvkit.cli.common import os_error

    assert os_error(PermissionError(errno.EACCES, "Permission denied", "/x/y")) == (
        "/x/y: permission denied"
    )
    full = os_error(OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    assert full.startswith("disk full:") and "/x/y" in full


@pytest.mark.parametrize("inside", ["run.db-wal", "run.db-shm", "sub/new-run"])
def test_a_new_run_is_never_made_inside_another(tmp_path, inside):
    """Found by tests/test_fuzz_cli.py: `--run-dir RUN/run.db-wal` made a folder where SQLite
    keeps the other run's write-ahead log, and that run could no longer be opened."""
    run = tmp_path / "run"
    assert cdv("generate", "--data", "sample", "--run-dir", run, "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    res = cdv("generate", "--data", "sample", "--run-dir", run / inside, "-q")
    assert res.exit_code == 2, res.output
    assert "inside the run directory" in res.output and "Traceback" not in res.output
    assert not (run / inside.split("/")[0]).exists()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert cdv("report", run, "-o", tmp_path / "r.html").exit_code == 0


def test_a_full_disk_stops_an_evaluation_with_one_message_and_a_rerun_completes(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The evaluation's answers go to their own store (--out); the disk fills while they do.
    REGISTRY["oracle"] = oracle_responder(QUESTIONS)
    ref = tmp_path / "ref-eval"
    base = ["evaluate", "--run", run, "--models", "scripted/oracle", "--bootstrap", "0", "--json"]
    done = cdv(*base, "--out", ref)
    assert done.exit_code == 0, done.output
    with sqlite3.connect(ref / "run.db") as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        answers = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    db.close()
    out = tmp_path / "eval"
    with monkeypatch.context() as m:
        _cap_pages(m, pages - 4)  # a few pages short of what the whole evaluation needs
        res = cdv(*base, "--out", out)
    flat = assert_one_line_error(res, 1, "disk full", "free space and rerun")
    with sqlite3.connect(out / "run.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    db.close()
    assert 0 < kept < answers  # what was asked before the disk filled is kept, and said
    assert f"disk full: {kept} evaluation answers kept" in flat
    again = cdv(*base, "--out", out)  # space is back: the rerun asks only what is missing
    assert again.exit_code == 0, again.output
    first, second = json.loads(done.stdout), json.loads(again.stdout)
    assert first["evaluations"][0]["results"] == second["evaluations"][0]["results"]
