"""Every setting is checked against its one declaration, however it arrives: a bad value on the
command line, in `--set`, in a config file or through the Python API is one line naming the
setting as the user wrote it, the value and what is allowed; exit 2, no traceback, no run
directory. The cases are read from the declarations themselves, so a setting declared tomorrow
is tested the day it is declared."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cdvkit
from cdvkit.allowed import Allowed, Shape, check_value, declared
from cdvkit.cli.app import app
from cdvkit.cli.evaluate_cmd import evaluate_command
from cdvkit.evaluation.settings import BUDGET_OPTIONS, EvalSettings, option_of
from cdvkit.models.base import Completion, GenerateRequest, Model, Usage
from cdvkit.models.options import MODEL_OPTIONS, Option
from cdvkit.models.registry import PROVIDERS, load_model, provider
from cdvkit.search.config import CONVERTED, SearchConfig, option_name

runner = CliRunner()


def bad_values(hint: Any, allowed: Allowed) -> list[tuple[Any, str]]:
    """Values the declaration refuses, each with the words of the rule its message must say."""
    shape = Shape.of(hint)
    choices = allowed.choice_list()
    if choices:
        return [("no-such-choice", "one of " + ", ".join(choices))]
    out: list[tuple[Any, str]] = []
    span = allowed.range_words()
    whole = int in shape.types and float not in shape.types
    step = 1 if whole else 0.5
    if allowed.min is not None:
        out.append((allowed.min - step, span))
    if allowed.above is not None:
        out.append((allowed.above, span))
    if allowed.max is not None:
        out.append((allowed.max + step, span))
    if allowed.below is not None:
        out.append((allowed.below, span))
    out = [(int(v) if whole else float(v), words) for v, words in out]
    if float in shape.types:
        out.append((math.nan, "a finite number"))
    # A value of the wrong type: text where a number is wanted.
    out.append(("five", "a whole number" if whole else "a finite number"))
    return out


def search_cases() -> list[Any]:
    cases = []
    for name, (hint, allowed) in declared(SearchConfig).items():
        if allowed is None or name in CONVERTED:
            continue
        for value, words in bad_values(hint, allowed):
            shown = "nan" if isinstance(value, float) and math.isnan(value) else str(value)
            cases.append(pytest.param(name, value, words, id=f"{name}={shown}"))
    return cases


SEARCH_CASES = search_cases()


def test_the_declared_settings_are_the_numeric_and_enumerated_ones() -> None:
    # Every setting with a range or a list of choices declares it: a number or a name that is
    # not declared would escape the tests below.
    names = {c.values[0] for c in SEARCH_CASES}
    assert {
        "temperature", "length_ratio", "max_calls", "concurrency", "samples", "threshold",
        "scoring", "protocol", "strategy", "choice_order", "task", "preset", "seed", "k", "n",
        "max_cost", "similarity_floor", "prefilter_threshold", "proposer_temperature",
    } <= names  # fmt: skip
    for name, (hint, allowed) in declared(SearchConfig).items():
        shape = Shape.of(hint)
        if {int, float} & set(shape.types) and name not in CONVERTED:
            assert allowed is not None and allowed.range_words(), f"{name} declares no range"


def one_line_error(res: Any, *needles: str) -> str:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def cli_text(value: Any) -> str:
    return "nan" if isinstance(value, float) and math.isnan(value) else str(value)


def toml_text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return cli_text(value)


@pytest.mark.parametrize(("name", "value", "words"), SEARCH_CASES)
def test_a_bad_setting_is_one_line_on_every_way_in(
    tmp_path: Path, name: str, value: Any, words: str
) -> None:
    run = tmp_path / "run"
    shown = cli_text(value) if not isinstance(value, str) else repr(value)
    # The command line, named as typed (text where a number is wanted: typer's own refusal).
    res = runner.invoke(
        app, ["generate", "--run-dir", str(run), option_name(name), cli_text(value)]
    )
    if isinstance(value, str) and Shape.of(declared(SearchConfig)[name][0]).types != (str,):
        assert res.exit_code == 2 and "Traceback" not in res.output
    else:
        one_line_error(res, f"{option_name(name)} must be", words, f"not {shown}")
    # --set KEY=VALUE, named as the --set key.
    res = runner.invoke(
        app, ["generate", "--run-dir", str(run), "--set", f"{name}={cli_text(value)}"]
    )
    set_shown = repr(cli_text(value)) if isinstance(value, float) and math.isnan(value) else shown
    one_line_error(res, f"--set {name} must be", words, f"not {set_shown}")
    # A config file, named by the file and its key.
    config = tmp_path / "cdv.toml"
    config.write_text(f"{name} = {toml_text(value)}\n")
    res = runner.invoke(app, ["generate", "--run-dir", str(run), "--config", str(config)])
    one_line_error(res, f"{config}: {name} must be", words, f"not {shown}")
    # The Python API, named by its keyword.
    with pytest.raises(ValueError) as info:
        cdvkit.generate(run_dir=run, **{name: value})
    message = str(info.value)
    assert message.startswith(f"{name} must be") and words in message and "\n" not in message
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--temperature", "nan"],
            "--temperature must be a finite number between 0 and 2, not nan",
        ),
        (["--length-ratio", "-1"], "--length-ratio must be above 1, not -1.0"),
        (["--max-calls", "-5"], "--max-calls must be at least 0, not -5"),
        (["--concurrency", "0"], "--concurrency must be at least 1, not 0"),
        (["--set", "max-calls=-5"], "--set max_calls must be at least 0, not -5"),
        (["--proposer-temperature", "inf"], "--proposer-temperature must be a finite number"),
    ],
)
def test_the_values_the_issue_found_accepted_are_refused(
    tmp_path: Path, args: list[str], says: str
) -> None:
    run = tmp_path / "run"
    one_line_error(runner.invoke(app, ["generate", "--run-dir", str(run), *args]), says)
    assert not run.exists()


# --- role options --------------------------------------------------------------------------------


def generate_with_roles(tmp_path: Path, toml: str, *target: str) -> Any:
    config = tmp_path / "cdv.toml"
    config.write_text(toml)
    args = ["generate", "--run-dir", str(tmp_path / "run"), "--config", str(config), *target]
    return runner.invoke(app, args)


HOSTED = ["--target", "openai-compatible/x", "--base-url", "http://127.0.0.1:9/v1"]


def test_a_role_option_of_the_wrong_type_is_one_line_before_anything_is_built(
    tmp_path: Path,
) -> None:
    res = generate_with_roles(tmp_path, '[roles.target]\nmax_retries = "five"\n', *HOSTED)
    one_line_error(res, "roles.target.max_retries must be a whole number of at least 0, not 'five'")
    assert not (tmp_path / "run").exists()
    res = generate_with_roles(tmp_path, "[roles.target]\ntimeout = -1\n", *HOSTED)
    one_line_error(res, "roles.target.timeout must be above 0, not -1")
    res = generate_with_roles(tmp_path, '[roles.target]\nprice_per_mtok = "cheap"\n', *HOSTED)
    one_line_error(res, "roles.target.price_per_mtok: price_per_mtok must be two numbers")
    res = runner.invoke(
        app,
        ["generate", "--run-dir", str(tmp_path / "run"), *HOSTED,
         "--set", "roles.target.concurrency=0"],
    )  # fmt: skip
    one_line_error(res, "roles.target.concurrency must be at least 1, not 0")
    assert not (tmp_path / "run").exists()


def test_an_unknown_role_option_is_refused_with_the_options_known(tmp_path: Path) -> None:
    res = generate_with_roles(tmp_path, "[roles.target]\nmax_retry = 3\n", *HOSTED)
    line = one_line_error(res, "roles.target.max_retry: not an option of openai-compatible/x")
    assert "max_retries" in line and "timeout" in line and "api_key_env" in line
    # A role with no model in this run: an option no provider takes.
    res = generate_with_roles(tmp_path, "[roles.grader]\nflavour = 3\n")
    one_line_error(res, "roles.grader.flavour: no provider takes it")
    assert not (tmp_path / "run").exists()


def test_a_role_key_of_the_wrong_type_is_refused_without_showing_it(tmp_path: Path) -> None:
    res = generate_with_roles(tmp_path, "[roles.target]\napi_key = 987654321\n", *HOSTED)
    line = one_line_error(res, "roles.target.api_key must be text")
    assert "987654321" not in line


def test_a_hosted_option_given_to_a_local_model_is_checked_then_left_out(tmp_path: Path) -> None:
    # A role table written for a hosted model keeps working when the model is a local one.
    cfg = SearchConfig.from_sources(None, roles={"target": {"timeout": 9, "api_key_env": "X"}})
    assert cfg.roles["target"]["timeout"] == 9
    with pytest.raises(ValueError, match=r"roles\.target\.timeout must be above 0, not 0"):
        SearchConfig.from_sources(None, roles={"target": {"timeout": 0}})
    spec = f"scripted/{rules_file(tmp_path)}"
    model = load_model(spec, timeout=9, api_key_env="X", price_per_mtok=[1, 2])
    assert model.concurrency > 0  # built: the ignored options never reached its constructor


BACKENDS = {
    "openai": ("cdvkit.models.http_api", "HostedModel"),
    "anthropic": ("cdvkit.models.http_api", "HostedModel"),
    "hf": ("cdvkit.models.hf_backend", "HFModel"),
    "embed": ("cdvkit.models.embed_backend", "EmbedModel"),
    "scripted": ("cdvkit.models.scripted", "ScriptedModel"),
}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_builtin_provider_declares_exactly_what_its_backend_takes(name: str) -> None:
    import importlib

    module, cls = BACKENDS[name]
    init = getattr(importlib.import_module(module), cls).__init__
    base = inspect.signature(Model.__init__).parameters
    takes = {
        p.name
        for sig in (inspect.signature(init).parameters, base)
        for p in sig.values()
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty
    }
    # Set programmatically (tests, the API), not from a config file.
    takes -= {"responder", "probs_fn", "compatible"}
    known = PROVIDERS.get(name).known_options()
    # What it uses is what it takes; what it takes only to ignore is declared too.
    assert {k for k, o in known.items() if not o.ignored} <= takes <= set(known)
    assert set(MODEL_OPTIONS) <= set(known)


class Flavoured(Model):
    provider = "flavoured"

    def __init__(self, spec: str, name: str, *, flavour: str = "plain", **options: Any) -> None:
        super().__init__(spec, **options)
        self.flavour = flavour

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        return Completion(["Answer: A"] * n, Usage(1, 1))


@pytest.fixture
def flavoured():
    provider("flavoured", options={"flavour": Option(str, Allowed(choices=("plain", "salty")))})(
        Flavoured
    )
    yield
    PROVIDERS.remove("flavoured")


def test_a_plugin_provider_declares_its_own_options(flavoured: None) -> None:
    roles = {"target": {"flavour": "salty", "concurrency": 2}}
    cfg = SearchConfig.from_sources(None, target="flavoured/x", roles=roles)
    model = load_model("flavoured/x", **cfg.roles["target"])
    assert isinstance(model, Flavoured) and model.flavour == "salty" and model.concurrency == 2
    with pytest.raises(ValueError, match=r"roles\.target\.flavour must be one of plain, salty"):
        SearchConfig.from_sources(None, target="flavoured/x", roles={"target": {"flavour": "x"}})
    with pytest.raises(ValueError, match=r"roles\.target\.timeout: not an option of flavoured/x"):
        SearchConfig.from_sources(None, target="flavoured/x", roles={"target": {"timeout": 3}})


# --- cdv evaluate --------------------------------------------------------------------------------


def eval_cases() -> list[Any]:
    options = set(inspect.signature(evaluate_command).parameters)
    rules = {option_of(n): rule for n, rule in declared(EvalSettings).items()} | BUDGET_OPTIONS
    cases = []
    for name, (hint, allowed) in rules.items():
        if allowed is None or name not in options:
            continue
        for value, words in bad_values(hint, allowed):
            if isinstance(value, str) and not allowed.choice_list():
                continue  # typer refuses text for a number itself
            cases.append(pytest.param(name, value, words, id=f"{name}={cli_text(value)}"))
    return cases


EVAL_CASES = eval_cases()


def test_every_numeric_evaluate_option_is_declared() -> None:
    names = {c.values[0] for c in EVAL_CASES}
    assert {
        "samples", "temperature", "bootstrap", "concurrency", "max_calls", "max_cost",
        "threshold", "seed", "protocol", "target_prompt", "by", "preset",
    } <= names  # fmt: skip


@pytest.mark.parametrize(("name", "value", "words"), EVAL_CASES)
def test_a_bad_evaluate_option_is_one_line(
    tmp_path: Path, name: str, value: Any, words: str
) -> None:
    out = tmp_path / "out"
    flag = "--" + name.replace("_", "-")
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(tmp_path / "nope"), "--models", "scripted/none",
         "--out", str(out), flag, cli_text(value)],
    )  # fmt: skip
    shown = repr(value) if isinstance(value, str) else cli_text(value)
    one_line_error(res, f"{flag} must be", words, f"not {shown}")
    with pytest.raises(ValueError) as info:
        cdvkit.evaluate(["scripted/none"], run=tmp_path / "nope", out=out, **{name: value})
    assert str(info.value).startswith(f"{name} must be") and words in str(info.value)
    assert not out.exists()


# --- input files -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_an_empty_data_file_says_it_holds_no_questions(tmp_path: Path, suffix: str) -> None:
    data = tmp_path / f"empty{suffix}"
    data.write_text("\n  \n")
    res = runner.invoke(app, ["generate", "--data", str(data), "--run-dir", str(tmp_path / "r")])
    line = one_line_error(res, str(data), "contains no questions")
    assert "JSON" not in line
    assert not (tmp_path / "r").exists()


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(128, 256)) * 3)
    res = runner.invoke(
        app, ["generate", "--config", str(binary), "--run-dir", str(tmp_path / "r")]
    )
    one_line_error(res, f"config file {binary}", "not UTF-8")
    res = runner.invoke(
        app, ["generate", "--config", str(tmp_path), "--run-dir", str(tmp_path / "r")]
    )
    one_line_error(res, f"config file {tmp_path}", "directory")
    table = tmp_path / "table.toml"
    table.write_text("generate = 3\n")
    res = runner.invoke(app, ["generate", "--config", str(table), "--run-dir", str(tmp_path / "r")])
    one_line_error(res, f"config file {table}", "[generate]")
    assert not (tmp_path / "r").exists()


# --- --json hides nothing ------------------------------------------------------------------------


def rules_file(tmp_path: Path) -> Path:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [], "default": "Answer: A"}))
    return rules


def test_generate_json_carries_skipped_and_repaired_rows(tmp_path: Path) -> None:
    data = tmp_path / "q.jsonl"
    rows = [
        {"question": "Two and two?", "choices": ["4", "5", "4", "6"], "answer": "4"},
        {"question": "Capital of France?", "choices": ["Paris", "Rome"], "answer": "Berlin"},
        {"question": "Sky colour?", "choices": ["blue", "green"], "answer": "blue"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--data", str(data), "--skip-invalid", "--target", f"scripted/{rules_file(tmp_path)}",
              "--similarity-floor", "0", "--max-expansions", "1", "--json"]  # fmt: skip
    for extra in (["--run-dir", str(tmp_path / "run")], ["--estimate"]):
        res = runner.invoke(app, ["generate", *common, *extra])
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout)
        (skipped,) = summary["skipped_rows"]
        assert skipped["file"] == str(data) and skipped["row"] == 2
        assert "'Berlin' is not one of the choices" in skipped["reason"]
        (repaired,) = summary["warnings"]
        assert repaired["row"] == 1 and "duplicate choices" in repaired["reason"]


def test_evaluate_json_carries_the_entries_left_out(tmp_path: Path) -> None:
    original = "What is the capital of France?"
    row = {
        "question_id": "france", "original_question": original,
        "original_choices": ["Paris", "Rome"], "original_answer": 0,
        "question": "Rome is old. " + original, "choices": ["Paris", "Rome"], "answer": 0,
    }  # fmt: skip
    same = {**row, "question_id": "spain", "original_question": "Capital of Spain?",
            "original_choices": ["Madrid", "Rome"], "question": "Capital of Spain?",
            "choices": ["Madrid", "Rome"]}  # fmt: skip
    examples = tmp_path / "ex.jsonl"
    examples.write_text(json.dumps(row) + "\n" + json.dumps(same) + "\n")
    res = runner.invoke(
        app,
        ["evaluate", "--examples", str(examples), "--models", f"scripted/{rules_file(tmp_path)}",
         "--out", str(tmp_path / "out"), "--bootstrap", "0", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    (left_out,) = out["skipped_rows"]
    assert left_out["file"] == str(examples) and left_out["row"] == 2 and left_out["reason"]


# --- the declarations' own words -----------------------------------------------------------------


def test_the_check_reads_types_as_the_issue_asks() -> None:
    check_value("x", 3, float, Allowed(min=0))  # an int where a float is wanted is fine
    for bad in (True, math.inf, -math.inf, math.nan, "3"):
        with pytest.raises(ValueError, match="x must be a finite number"):
            check_value("x", bad, float)
    with pytest.raises(ValueError, match="x must be a whole number, not true"):
        check_value("x", True, int)  # a bool is not an int
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\], not 0"):
        check_value("x", 0, float, Allowed(above=0, max=1))
    check_value("x", None, int | None, Allowed(min=1))
    with pytest.raises(ValueError, match="x must be a list"):
        check_value("x", "a", list[str])
