"""Run directories written by earlier cdvkit versions still open: reported, exported and
evaluated as they are. `tests/data/old_run` was made by cdvkit before the store gained the
call phases, failure kinds and node verification (3 questions, offline default target); its
database is kept as the SQL text of `sqlite3 .dump` (run.sql) and rebuilt for each test."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.reporting.summary import summarize
from cdvkit.store import RunStore

OLD = Path(__file__).resolve().parent / "data" / "old_run"
runner = CliRunner()


def make_old_run(run: Path) -> Path:
    """The old run directory at ``run``: its files, and run.db rebuilt from its dump."""
    run.mkdir(parents=True)
    shutil.copy(OLD / "evaluation.json", run)
    with closing(sqlite3.connect(run / "run.db")) as db:
        db.executescript((OLD / "run.sql").read_text(encoding="utf-8"))
    return run


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    return make_old_run(tmp_path / "old_run")


def columns(run: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(run / "run.db")) as db:
        return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def test_the_fixture_is_an_old_store(old_run: Path) -> None:
    # If this fails the fixture was rewritten by a newer cdvkit and tests nothing any more.
    assert "phase" not in columns(old_run, "calls") and "verified" not in columns(old_run, "nodes")


def test_an_old_run_is_summarised_reported_and_exported(old_run: Path, tmp_path: Path) -> None:
    with RunStore(old_run, readonly=True, lock=False) as store:
        summary = summarize(store)
        examples = list(store.examples())
    assert summary["questions"] == 3 and summary["examples"] == len(examples) > 0
    assert summary["calls"] > 0 and summary["candidates"] == 0  # nothing was verified then
    for fmt, name in (("html", "r.html"), ("md", "r.md")):
        res = runner.invoke(
            app, ["report", str(old_run), "--format", fmt, "-o", str(tmp_path / name)]
        )
        assert res.exit_code == 0, res.output
    assert "CDV examples" in (tmp_path / "r.md").read_text()
    for fmt in ("jsonl", "hf", "reference", "lm-eval", "sft", "dpo"):
        out = tmp_path / f"export-{fmt}"
        res = runner.invoke(app, ["export", str(old_run), "--format", fmt, "-o", str(out)])
        assert res.exit_code == 0, (fmt, res.output)
    rows = [json.loads(x) for x in (tmp_path / "export-jsonl").read_text().splitlines()]
    assert len(rows) == len(examples)
    # Reading an old run changes nothing in it (a read-only open never migrates).
    assert "phase" not in columns(old_run, "calls")


def test_an_old_run_is_evaluated_and_migrated_when_written(old_run: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(old_run), "--models", "embed/all-MiniLM-L6-v2",
         "--bootstrap", "50", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["evaluations"][0]
    assert entry["results"]["embed/all-MiniLM-L6-v2"]["embed/all-MiniLM-L6-v2"]["overall"]["n"] > 0
    # Written into, the store gained the new columns; its old calls count as the search's.
    assert "phase" in columns(old_run, "calls") and "verified" in columns(old_run, "nodes")
    with RunStore(old_run, readonly=True, lock=False) as store:
        assert store.paid_calls("search") == summarize(store)["calls"] > 0
        # The evaluation file kept the old version's entry alongside the new one's fields.
        assert (old_run / "evaluation.json").is_file()


def test_resuming_an_old_run_under_new_defaults_says_which_settings_differ(
    old_run: Path,
) -> None:
    res = runner.invoke(app, ["generate", "--data", "q.jsonl", "--run-dir", str(old_run)])
    assert res.exit_code == 2
    flat = " ".join(res.output.split())
    assert "other settings" in flat and "temperature" in flat
