"""Every command on generated bad input: arguments, config files, data files and prompts files.

Whatever it is given, a command ends with one of the documented exit codes (0, 1, 2, 3, 130,
143), never prints a Python traceback, and never changes an existing run store (the run
directory's database files keep their checksums).

The examples are bounded so `make test` stays fast; CDV_FUZZ_EXAMPLES=N runs a longer search
(e.g. `CDV_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_cli.py`), with new random examples each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cdvkit.cli.app import app
from eval_helpers import QUESTIONS, make_run, register_models

EXAMPLES = int(os.environ.get("CDV_FUZZ_EXAMPLES", "60"))
# `make test` replays the same examples every time; a longer run explores new ones.
DERANDOMIZE = "CDV_FUZZ_EXAMPLES" not in os.environ
# One small file per kind of bad row (tests/test_bad_inputs.py documents each outcome).
BAD_DATA = Path(__file__).parent / "data" / "bad"
EXIT_CODES = {0, 1, 2, 3, 130, 143}
runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    register_models(QUESTIONS)
    root = tmp_path_factory.mktemp("fuzz")
    run = make_run(root / "run")
    # A run with an evaluation: report, export and show have everything to read.
    res = runner.invoke(app, ["evaluate", "--run", str(run), "--models", "scripted/robust"])
    assert res.exit_code == 0, res.output
    data = root / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": q.question, "choices": list(q.choices), "answer": q.answer})
            + "\n"
            for q in QUESTIONS
        )
    )
    (root / "a_dir").mkdir()
    return {"root": root, "run": run, "data": data, "dir": root / "a_dir"}


def checksums(run: Path) -> dict[str, str]:
    # A folder where a store file belongs (a new run made inside this one) is a change too.
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "not a file"
        for p in sorted(run.iterdir())
        if p.name.startswith("run.db")
    }


# --- what a user might type -------------------------------------------------------------------
NUMBERS = st.one_of(
    st.sampled_from(["0", "-1", "-5", "nan", "inf", "-inf", "1e309", "0.5", "abc", "", "3"]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
WORDS = st.one_of(
    st.sampled_from(["", "x", "none", "paper", "shuffle", "letter", "best-first", "all", "-"]),
    st.text(max_size=12),
)


def path_values(world: dict[str, Path]) -> st.SearchStrategy[str]:
    run = world["run"]
    return st.sampled_from(
        [
            str(run / "run.db"),
            str(run / "run.db-wal"),
            str(run / "run.lock"),
            str(run),
            str(world["dir"]),
            str(world["data"]),
            str(world["root"] / "missing" / "deeper" / "out.json"),
            "/proc/version",
            "/",
            "",
        ]
    )


GENERATE_OPTIONS = [
    "--samples", "--temperature", "--max-expansions", "--max-good", "--max-depth",
    "--max-calls", "--max-cost", "--length-ratio", "--similarity-floor", "--threshold",
    "--concurrency", "--model-concurrency", "--proposals", "--wrong-answers", "--k", "--n",
    "--prefilter-threshold", "--limit", "--seed", "--proposer-temperature",
]  # fmt: skip
GENERATE_CHOICES = [
    "--protocol", "--scoring", "--strategy", "--target-prompt", "--proposer-prompt",
    "--judge-prompt", "--choice-order", "--task", "--preset", "--max-tokens", "--set",
]  # fmt: skip
EVALUATE_OPTIONS = [
    "--samples", "--temperature", "--threshold", "--bootstrap", "--seed", "--concurrency",
    "--max-calls", "--max-cost",
]  # fmt: skip
EVALUATE_CHOICES = ["--protocol", "--target-prompt", "--preset", "--by", "--defense"]


@st.composite
def invocation(draw: st.DrawFn, world: dict[str, Path]) -> list[str]:
    paths = path_values(world)
    run = str(world["run"])
    command = draw(
        st.sampled_from(
            ["generate", "evaluate", "report", "export", "show", "prompts", "init", "prefilter"]
        )
    )
    if command == "generate":
        bad_rows = st.sampled_from(sorted(str(f) for f in BAD_DATA.iterdir()))
        data = draw(st.one_of(st.just(str(world["data"])), bad_rows, paths))
        args = ["generate", "--data", data]
        if draw(st.booleans()):
            args.append("--skip-invalid")
        args += ["--target", "scripted/oracle", "--proposer", "scripted/prop"]
        args += ["--run-dir", draw(st.one_of(st.just(str(world["root"] / "new")), paths))]
        for _ in range(draw(st.integers(0, 3))):
            args += [draw(st.sampled_from(GENERATE_OPTIONS)), draw(NUMBERS)]
        for _ in range(draw(st.integers(0, 2))):
            args += [draw(st.sampled_from(GENERATE_CHOICES)), draw(WORDS)]
        if draw(st.booleans()):
            args += ["--config", draw(st.one_of(st.just("CONFIG"), paths))]
        if draw(st.booleans()):
            args += ["--prompts", draw(st.one_of(st.just("PROMPTS"), paths))]
        # A bound on any run the fuzzer happens to make valid: the point is the input.
        args += ["--max-calls", "40", "--quiet"]
        return args
    if command == "evaluate":
        args = ["evaluate", "--run", draw(st.one_of(st.just(run), paths))]
        args += ["--models", draw(st.sampled_from(["scripted/robust", "nope", "x/y", ""]))]
        for _ in range(draw(st.integers(0, 3))):
            args += [draw(st.sampled_from(EVALUATE_OPTIONS)), draw(NUMBERS)]
        for _ in range(draw(st.integers(0, 2))):
            args += [draw(st.sampled_from(EVALUATE_CHOICES)), draw(WORDS)]
        args += ["--out", draw(st.one_of(st.just(str(world["root"] / "eval")), paths))]
        return [*args, "--quiet"]
    if command == "report":
        args = ["report", draw(st.one_of(st.just(run), paths)), "-o", draw(paths)]
        if draw(st.booleans()):
            args += ["--format", draw(st.sampled_from(["html", "md", "pdf", ""]))]
        return args
    if command == "export":
        fmt = draw(st.sampled_from(["jsonl", "hf", "reference", "lm-eval", "sft", "dpo", "x"]))
        return ["export", draw(st.one_of(st.just(run), paths)), "--format", fmt, "-o", draw(paths)]
    if command == "show":
        args = ["show", draw(st.one_of(st.just(run), paths))]
        if draw(st.booleans()):
            args += ["--depth", draw(NUMBERS)]
        if draw(st.booleans()):
            args += ["--status", draw(WORDS)]
        return args
    if command == "prompts":
        return ["prompts", "--prompts", draw(st.one_of(st.just("PROMPTS"), paths))]
    if command == "init":
        return ["init", draw(paths)]
    return ["prefilter", "eval", "--data", draw(paths)]


TOML_VALUES = st.one_of(
    st.integers(-5, 10**12).map(str),
    st.sampled_from(['"five"', "nan", "-1.0", "true", "[1, 2]", "{a = 1}", '""', '"paper"']),
)
TOML_KEYS = st.sampled_from(
    [
        "samples", "temperature", "max_expansions", "concurrency", "length_ratio", "preset",
        "strategy", "target_prompt", "choice_order", "max_tokens", "prompts", "proposals",
        "roles.target.max_retries", "roles.target.concurrency", "roles.judge.timeout",
        "roles.nobody.x", "unknown_key",
    ]
)  # fmt: skip


@st.composite
def config_text(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=64))
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        key, value = draw(TOML_KEYS), draw(TOML_VALUES)
        if key.startswith("roles."):
            _, role, opt = key.split(".")
            lines.append(f"[roles.{role}]\n{opt} = {value}")
        else:
            lines.insert(0, f"{key} = {value}")
    return "\n".join(lines).encode()


@st.composite
def prompts_text(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=64))
    table = draw(
        st.sampled_from(
            ["target.letter", "judge.standard", "judge.paper", "proposer.one", "judge.fancy",
             "nobody.x", "target.letter.reply", "extractor.paper.reply"]
        )
    )  # fmt: skip
    key = draw(st.sampled_from(["user", "system", "format", "key", "pass_when", "temperature"]))
    value = draw(
        st.sampled_from(['"{question}"', '"{nope}"', '"{"', '"json"', "3", "true", '"yaml"'])
    )
    return f"[{table}]\n{key} = {value}\n".encode()


@pytest.mark.slow
def test_no_input_gives_a_traceback_or_touches_a_run(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty path is the current folder: a run or an output made there stays in the test's.
    cwd = world["root"] / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    before = checksums(world["run"])

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        args = data.draw(invocation(world))
        config = world["root"] / "fuzz_config.toml"
        config.write_bytes(data.draw(config_text()))
        prompts = world["root"] / "fuzz_prompts.toml"
        prompts.write_bytes(data.draw(prompts_text()))
        args = [
            str(config) if a == "CONFIG" else str(prompts) if a == "PROMPTS" else a for a in args
        ]
        res = runner.invoke(app, args)
        shown = res.output
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            shown += "".join(traceback.format_exception(res.exception))
        assert res.exit_code in EXIT_CODES, (args, res.exit_code, shown[-2000:])
        assert "Traceback" not in shown, (args, shown[-3000:])
        assert checksums(world["run"]) == before, args

    check()
