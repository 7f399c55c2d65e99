from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.models.scripted import REGISTRY
from cdvkit.store import RunStore
from scripted_helpers import marking_proposer, oracle_responder

runner = CliRunner()
SECRET = "sk-test-DO-NOT-PRINT-1234567890abcdef"


def test_help_lists_every_command():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("generate", "evaluate", "report", "export", "datasets", "models"):
        assert cmd in out


def test_models_never_prints_a_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0
    assert SECRET not in res.output
    rows = {r["provider"]: r for r in json.loads(res.output)}
    assert rows["openai"]["usable"] is True
    assert rows["scripted"]["usable"] is True
    monkeypatch.delenv("OPENAI_API_KEY")
    rows = {r["provider"]: r for r in json.loads(runner.invoke(app, ["models", "--json"]).output)}
    assert rows["openai"]["usable"] is False and "OPENAI_API_KEY" in rows["openai"]["status"]


def test_datasets_lists_builtins():
    rows = json.loads(runner.invoke(app, ["datasets", "--json"]).output)
    names = {r["name"] for r in rows}
    assert {"sample", "mmlu", "commonsense_qa", "openbookqa", "truthfulqa_mc1"} <= names


@pytest.fixture
def data_file(tmp_path):
    rows = [
        {
            "question": "What color is fresh snow?",
            "choices": ["white", "blue", "red"],
            "answer": "white",
        },
        {
            "question": "How many legs does a dog have?",
            "choices": ["two", "four", "six"],
            "answer": "four",
        },
    ]
    path = tmp_path / "q.json"
    path.write_text(json.dumps(rows))
    from cdvkit.data.question import Question

    qs = [
        Question(str(i), r["question"], tuple(r["choices"]), r["choices"].index(r["answer"]))
        for i, r in enumerate(rows)
    ]
    REGISTRY["cli-oracle"] = oracle_responder(qs)
    REGISTRY["cli-prop"] = marking_proposer
    return path


def gen_args(data_file, run_dir, *extra):
    return ["generate", "--data", str(data_file), "--target", "scripted/cli-oracle",
            "--proposer", "scripted/cli-prop", "--similarity-floor", "0", "--samples", "2",
            "--run-dir", str(run_dir), *extra]  # fmt: skip


def test_generate_summary_agrees_with_the_store(data_file, tmp_path):
    res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "--json"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        assert summary["examples"] == len(list(store.examples())) > 0
        assert summary["calls"] == store.paid_calls()
        assert summary["with_example"] == 2 and summary["originally_correct"] == 2


def test_resume_with_other_settings_is_refused(data_file, tmp_path):
    assert runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q")).exit_code == 0
    res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q", "--samples", "3"))
    assert res.exit_code == 2
    assert "other settings" in res.output and "samples" in res.output
    # Budget settings may change on resume.
    res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q", "--max-calls", "999"))
    assert res.exit_code == 0, res.output


def test_locked_run_dir_is_refused(data_file, tmp_path):
    with RunStore(tmp_path / "run"):
        res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q"))
    assert res.exit_code == 2 and "in use by another cdv process" in res.output


def test_bad_model_string_is_one_clear_line(data_file, tmp_path):
    res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q", "--target", "gpt-4o"))
    assert res.exit_code != 0
    assert "provider/model" in res.output
    assert "Traceback" not in res.output
