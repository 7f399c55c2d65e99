"""EvalConfig: evaluation's one declaration of its settings. `cdv evaluate` builds its options
from it (help, default, spelling), ``cdvkit.evaluate`` its keywords, a config file and --set
their keys, and every value is checked against it once."""

from __future__ import annotations

import inspect
import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import cdvkit
import cdvkit.api
from cdvkit.allowed import SettingError
from cdvkit.api import EvaluationRun
from cdvkit.cli.app import app
from cdvkit.cli.evaluate_cmd import evaluate_command
from cdvkit.evaluation.config import EvalConfig, field_names, parse_eval_settings
from eval_helpers import make_run, register_models

runner = CliRunner()
# Settings only the Python API reaches, each with the reason the command has no option for it.
API_ONLY: dict[str, str] = {}


def click_params() -> dict[str, Any]:
    command = typer.main.get_command(app).commands["evaluate"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


# --- one declaration -------------------------------------------------------------------------


def test_every_setting_is_an_option_of_cdv_evaluate_with_the_declared_help() -> None:
    params = click_params()
    for f in fields(EvalConfig):
        if f.name in API_ONLY:
            assert f.name not in params and API_ONLY[f.name]
            continue
        assert f.name in params, f"{f.name} is no `cdv evaluate` option"
        assert params[f.name].help == f.metadata["help"], f.name
        if f.default is not MISSING and not params[f.name].multiple:
            # The command's default is the setting's, so the CLI and the API cannot drift.
            assert params[f.name].default == f.default, f.name
    assert set(API_ONLY) <= set(field_names())


def test_the_command_declares_no_setting_of_its_own() -> None:
    # Besides EvalConfig's settings, only how the command runs and prints (and the hidden old
    # name of --protocol) are options.
    own = set(inspect.signature(evaluate_command).parameters) - set(field_names())
    assert own == {
        "ctx", "scoring", "config", "set_", "executor", "ray_address", "ray_workers",
        "ray_gpus_per_worker", "quiet", "as_json",
    }  # fmt: skip


def test_every_setting_is_a_keyword_of_cdvkit_evaluate() -> None:
    values = {
        "run": "r", "examples": "e.jsonl", "models": ["m"], "defense": "cot", "protocol": "exact",
        "samples": 2, "temperature": 0.5, "target_prompt": "paper", "threshold": 0.5,
        "all_examples": True, "preset": "paper", "data": "sample", "by": "subject",
        "order_control": False, "out": "o", "extractor": "x/y", "grader": "g/h",
        "base_url": "http://h", "max_calls": 3, "max_cost": 1.5, "concurrency": 2,
        "bootstrap": 7, "seed": 9,
    }  # fmt: skip
    assert set(values) == set(field_names())
    cfg = EvalConfig.from_call(None, None, values)
    assert cfg.run == [Path("r")] and cfg.examples == ["e.jsonl"] and cfg.defense == ["cot"]
    assert cfg.out == Path("o") and cfg.bootstrap == 7 and cfg.order_control is False


def test_a_keyword_that_is_no_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'samplez'"):
        cdvkit.evaluate(["m"], run="r", samplez=3)
    with pytest.raises(TypeError, match="multiple values for argument 'models'"):
        cdvkit.evaluate(["m"], models=["n"], run="r")


# --- checked once, one line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"samples": 0}, "samples must be at least 1, not 0"),
        ({"protocol": "greedy"}, "protocol must be one of sample, exact, not 'greedy'"),
        ({"temperature": 3.0}, "temperature must be between 0 and 2, not 3.0"),
        ({"by": "model"}, "by must be one of dataset, subject, not 'model'"),
        ({"bootstrap": -1}, "bootstrap must be at least 0, not -1"),
        ({"all_examples": "yes"}, "all_examples must be true or false, not 'yes'"),
        ({"models": [1]}, "models must be a list"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingError) as info:
        EvalConfig(**values)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    ready = EvalConfig(models=["m"], run=[Path("r")])
    with pytest.raises(SettingError, match=message.split(",")[0]):
        ready.with_values(**values)  # a copy is checked as any config


def test_one_item_reads_as_a_list_of_one() -> None:
    cfg = EvalConfig(run="a", examples=Path("b.jsonl"), models="m", defense=None)
    assert cfg.run == [Path("a")] and cfg.examples == ["b.jsonl"] and cfg.models == ["m"]
    assert cfg.defense == ["none"]
    with pytest.raises(ValueError, match="give the models"):
        EvalConfig(run="a").require_inputs()
    with pytest.raises(ValueError, match="give the examples"):
        EvalConfig(models=["m"]).require_inputs()


# --- a ready EvalConfig runs as its keywords do --------------------------------------------------


@pytest.fixture
def run(tmp_path: Path) -> Path:
    register_models()
    return make_run(tmp_path / "run")


def _numbers(result: EvaluationRun) -> list[Any]:
    return [{k: v for k, v in e.items() if k != "created"} for e in result.entries]


def test_an_eval_config_gives_what_its_keywords_give(run: Path, tmp_path: Path) -> None:
    keywords = cdvkit.evaluate(
        ["scripted/robust", "scripted/oracle"], run=run, out=tmp_path / "a", bootstrap=50,
        defense=["none", "cot"], samples=2,
    )  # fmt: skip
    cfg = EvalConfig(
        models=["scripted/robust", "scripted/oracle"], run=[run], out=tmp_path / "b",
        bootstrap=50, defense=["none", "cot"], samples=2,
    )  # fmt: skip
    ready = cdvkit.evaluate(cfg)
    assert ready.results_dir == tmp_path / "b"
    assert _numbers(ready) == _numbers(keywords)
    assert [e["settings"]["samples"] for e in ready.entries] == [2, 2]
    # Keywords over a ready config: here the seed only, the answers stored in "b" are reused.
    again = cdvkit.evaluate(config=cfg, seed=1)
    assert [e["paid_calls"] for e in again.entries] == [0, 0]


def test_a_config_file_is_read_by_the_api(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "eval.toml"
    path.write_text(f'models = ["scripted/robust"]\n[evaluate]\nrun = ["{run}"]\nbootstrap = 50\n')
    cfg = EvalConfig.from_sources(path, out=tmp_path / "ev")
    assert cfg.run == [run] and cfg.bootstrap == 50 and cfg.models == ["scripted/robust"]
    path.write_text("samples = 0\n")
    with pytest.raises(SettingError, match=rf"^{path}: samples must be at least 1, not 0"):
        EvalConfig.from_sources(path)
    path.write_text("sample = 3\n")
    with pytest.raises(ValueError, match="unknown evaluate settings: sample"):
        EvalConfig.from_sources(path)


# --- cdv evaluate builds its config in one place ------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[EvalConfig]:
    seen: list[EvalConfig] = []

    def fake(cfg: EvalConfig, **_: Any) -> EvaluationRun:
        seen.append(cfg)
        return EvaluationRun(tmp_path, [])

    monkeypatch.setattr(cdvkit.api, "evaluate", fake)
    return seen


def invoke(*args: Any) -> Any:
    res = runner.invoke(app, ["evaluate", *map(str, args), "--json"])
    return res


def test_the_command_line_gives_the_config_its_values(captured: list[EvalConfig]) -> None:
    res = invoke("--run", "r1", "--run", "r2", "--models", "a,b", "c", "--defense", "cot",
                 "--samples", "3", "--no-order-control", "--by", "subject")  # fmt: skip
    assert res.exit_code == 0, res.output
    (cfg,) = captured
    assert cfg.models == ["a", "b", "c"] and cfg.run == [Path("r1"), Path("r2")]
    assert cfg.defense == ["cot"] and cfg.samples == 3 and cfg.by == "subject"
    assert cfg.order_control is False
    # Not typed: the declared defaults.
    assert (cfg.concurrency, cfg.bootstrap, cfg.seed, cfg.protocol) == (16, 10_000, 0, None)


def test_config_file_then_set_then_options(captured: list[EvalConfig], tmp_path: Path) -> None:
    path = tmp_path / "eval.toml"
    path.write_text(
        'models = ["scripted/robust"]\nrun = ["r"]\n'
        "[evaluate]\nconcurrency = 4\nbootstrap = 50\nsamples = 2\nby = 'subject'\n"
    )
    res = invoke("--config", path, "--set", "samples=3", "--set", "order-control=false",
                 "--bootstrap", "60")  # fmt: skip
    assert res.exit_code == 0, res.output
    (cfg,) = captured
    # A default --help shows (--concurrency 16, --by dataset) leaves the file's value in place.
    assert cfg.concurrency == 4 and cfg.by == "subject"
    assert cfg.samples == 3 and cfg.order_control is False  # --set over the file
    assert cfg.bootstrap == 60  # the option over the file
    assert cfg.models == ["scripted/robust"] and cfg.run == [Path("r")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "samples=0"], "--set samples must be at least 1, not 0"),
        (["--set", "sample=3"], "unknown setting 'sample'"),
        (["--set", "samples"], "not KEY=VALUE"),
        (["--samples", "0"], "--samples must be at least 1, not 0"),
        (["--protocol", "greedy"], "--protocol must be one of sample, exact"),
    ],
)
def test_a_bad_setting_from_the_command_line_is_one_line(
    captured: list[EvalConfig], args: list[str], words: str
) -> None:
    res = invoke("--run", "r", "--models", "m", *args)
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], res.stderr
    assert captured == []


def test_a_bad_config_file_value_names_the_file(captured: list[EvalConfig], tmp_path: Path) -> None:
    path = tmp_path / "eval.toml"
    path.write_text("samples = -2\n")
    res = invoke("--config", path, "--run", "r", "--models", "m")
    assert res.exit_code == 2 and f"{path}: samples must be at least 1, not -2" in res.stderr
    missing = tmp_path / "nope.toml"
    res = invoke("--config", missing, "--run", "r", "--models", "m")
    assert res.exit_code == 2 and f"config file {missing} not found" in res.stderr
    assert captured == []


def test_set_reads_values_as_their_settings_take_them() -> None:
    got = parse_eval_settings(
        ["data=2021", "models=a", "models=b", "threshold=0.5", "out=x", "all-examples=true"]
    )
    assert got == {
        "data": "2021", "models": ["a", "b"], "threshold": 0.5, "out": Path("x"),
        "all_examples": True,
    }  # fmt: skip


def test_the_command_runs_from_its_config(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "eval.toml"
    path.write_text(f'models = ["scripted/robust"]\nrun = ["{run}"]\nbootstrap = 50\n')
    res = invoke("--config", path, "--out", tmp_path / "ev")
    assert res.exit_code == 0, res.output
    (entry,) = json.loads(res.stdout)["evaluations"]
    assert entry["models"] == ["scripted/robust"] and entry["answers"]["total"] > 0
