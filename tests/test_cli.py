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


def test_every_setting_is_reachable_from_the_command_line(data_file, tmp_path):
    from cdvkit.search.config import SearchConfig, parse_settings

    settings = parse_settings(
        ["k=3", "leak-check=false", "constraints=leak", "constraints=length:max_ratio=4",
         "roles.target.concurrency=2", "proposer_temperature=0.3"]
    )  # fmt: skip
    cfg = SearchConfig.from_sources(**settings)
    assert (cfg.k, cfg.leak_check, cfg.proposer_temperature) == (3, False, 0.3)
    assert cfg.constraints == ["leak", "length:max_ratio=4"]
    assert cfg.roles == {"target": {"concurrency": 2}}
    # A config file's role options are kept beside the command line's.
    toml = tmp_path / "c.toml"
    toml.write_text("[roles.target]\ntimeout = 9\n")
    merged = SearchConfig.from_sources(toml, roles={"target": {"concurrency": 2}})
    assert merged.roles == {"target": {"timeout": 9, "concurrency": 2}}
    res = runner.invoke(app, gen_args(data_file, tmp_path / "run", "-q", "--set", "k=3.5",
                                      "--set", "max-depth=2"))  # fmt: skip
    assert res.exit_code == 0, res.output
    with RunStore(tmp_path / "run", readonly=True, lock=False) as store:
        stored = store.get_config()
    assert (stored["k"], stored["max_depth"]) == (3.5, 2)
    res = runner.invoke(app, gen_args(data_file, tmp_path / "r2", "--set", "nosuch=1"))
    assert res.exit_code == 2 and "unknown configuration keys: nosuch" in res.output


def test_result_tables_keep_whole_numbers_at_80_columns(tmp_path, monkeypatch):
    from eval_helpers import make_run, register_models

    register_models()
    run = make_run(tmp_path / "run")
    monkeypatch.setenv("COLUMNS", "80")
    res = runner.invoke(
        app, ["evaluate", "--run", str(run), "--models", "scripted/oracle", "--bootstrap", "50"]
    )
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    # Each figure stays on one line, whole.
    assert any("drop 100.0%" in line for line in lines)
    assert any("[100.0, 100.0]" in line for line in lines)
    assert any("p=0.25" in line for line in lines)


def test_every_setting_is_a_generate_option_declared_once():
    from dataclasses import fields

    from typer.main import get_command

    from cdvkit.search.config import SearchConfig

    command = get_command(app).commands["generate"]
    options = {p.name: p for p in command.params}
    settings = {f.name: f for f in fields(SearchConfig)}
    # Every setting but the per-role table is an option, with the help its declaration gives.
    for name, f in settings.items():
        if name == "roles":
            continue
        assert name in options, name
        assert options[name].help == f.metadata["help"], name
    assert "--no-judge-last" in options["judge_last"].secondary_opts
    assert options["constraints"].opts == ["--constraint"] and options["constraints"].multiple
