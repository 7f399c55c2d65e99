"""Usability: `cdv show`, `cdv init`, `-o -` to stdout, one-line `cdv train` errors, prefilter
progress, the fake server's --help, and the resume hint after Ctrl-C."""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cdvkit.cli import show_cmd
from cdvkit.cli.app import app
from cdvkit.cli.init_cmd import starter_config
from cdvkit.data.question import Question
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore

runner = CliRunner()
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def cdv(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(res, *needles: str) -> str:
    """The command failed with exit code 2 and one `error:` line, no traceback."""
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert res.stdout == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def squeeze(text: str) -> str:
    """``text`` without whitespace: what survives any wrapping."""
    return "".join(text.split())


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A small real run: the bundled sample against the offline default target."""
    run = tmp_path_factory.mktemp("usability") / "run"
    res = cdv("generate", "--data", "sample", "--limit", 4, "--run-dir", run, "--quiet")
    assert res.exit_code == 0, res.output
    with RunStore(run, lock=False, readonly=True) as store:
        assert list(store.examples()), "the sample run must have examples to show"
    return run


# Text a renderer could mistake for rich markup or emoji codes, and a long unbroken token.
MARKUP = "[bold red]not a style[/] [/] :thumbs_up: [link=x]y[/link]"
LONG_TOKEN = "https://example.org/" + "a" * 120
SKY = Question(
    "sky", f"What color is the sky on a clear day? {MARKUP}", ("blue", "green [b]", "red"), 0
)
FIRST = "Many painters mix [green] paint for fields, as everyone around here says."
SECOND = f"A long note {LONG_TOKEN} keeps talking about green things for a while longer."


@pytest.fixture
def crafted_run(tmp_path) -> Path:
    """A run with every node status, markup-like text and lines too long for 80 columns."""
    run = tmp_path / "crafted"
    with RunStore(run) as store:
        store.add_questions([SKY])
        store.set_question_status("sky", "done", original_rate=1.0)
        base = {"choices": ["blue", "green [b]", "red"], "answer": 0, "verdicts": {}}
        nodes = [
            {"path": "r", "depth": 1, "question": SKY.question, "status": "root", "rate": 1.0},
            {
                "path": "r.0",
                "parent_path": "r",
                "depth": 2,
                "question": f"{FIRST} {SKY.question}",
                "distraction": FIRST,
                "placement": "prefix",
                "target_option": "green [b]",
                "status": "open",
                "rate": 0.6,
            },
            {
                "path": "r.0.0",
                "parent_path": "r.0",
                "depth": 3,
                "question": f"{FIRST} {SKY.question} {SECOND}",
                "choices": ["red", "green [b]", "blue"],
                "answer": 2,
                "distraction": SECOND,
                "placement": "suffix",
                "target_option": "green [b]",
                "status": "good",
                "rate": 0.0,
                "verified": True,
            },
            {
                "path": "r.1",
                "parent_path": "r",
                "depth": 2,
                "question": f"{SKY.question} Red is the [i]answer[/i].",
                "distraction": "Red is the [i]answer[/i].",
                "placement": "suffix",
                "target_option": "red",
                "status": "rejected",
                "verdicts": {
                    "length": {"passed": True, "reason": "", "score": 1.2},
                    "leak": {
                        "passed": False,
                        "reason": "the distraction labels [an option] as right or wrong",
                        "score": None,
                    },
                },
            },
            {
                "path": "r.2",
                "parent_path": "r",
                "depth": 2,
                "question": f"{FIRST} {SKY.question}",
                "distraction": FIRST,
                "status": "duplicate",
            },
            {
                "path": "r.3",
                "parent_path": "r",
                "depth": 2,
                "question": SKY.question,
                "status": "error",
                "outputs": {"error": "[target] server said [500]"},
            },
        ]
        for node in nodes:
            store.save_node("sky", {**base, **node})
    return run


# --- cdv show ---------------------------------------------------------------------------------


def test_show_lists_the_examples_of_a_run(real_run):
    with RunStore(real_run, lock=False, readonly=True) as store:
        examples = list(store.examples())
        nodes = store.nodes()
        questions = store.questions()
    res = cdv("show", real_run)
    assert res.exit_code == 0, res.output
    for ex in examples:
        assert ex["question_id"] in res.stdout
        assert squeeze(ex["distraction"]) in squeeze(res.stdout)
    assert res.stdout.count("[correct]") == len(examples)
    assert res.stdout.count("[pushed by the distraction]") == len(examples)

    shown = json.loads(cdv("show", real_run, "--json").stdout)
    assert sorted((e["question_id"], e["path"]) for e in shown) == sorted(
        (e["question_id"], e["path"]) for e in examples
    )
    for e in shown:
        assert e["status"] == "good" and e["choices"][e["target_index"]] == e["target_option"]
        assert e["answer_text"] == e["choices"][e["answer"]]
    every = json.loads(cdv("show", real_run, "--status", "all", "--limit", 0, "--json").stdout)
    assert len(every) == len(nodes)
    roots = json.loads(cdv("show", real_run, "--status", "root", "--json").stdout)
    assert [e["question_id"] for e in roots] == [q["id"] for q in questions]
    deep = json.loads(cdv("show", real_run, "--depth", 2, "--json").stdout)
    assert deep and all(e["depth"] == 2 for e in deep)

    res = cdv("show", real_run, "--limit", 2, "--json")
    assert len(json.loads(res.stdout)) == 2
    assert f"showing 2 of {len(examples)}" in res.stderr

    qid = examples[0]["question_id"]
    mine = json.loads(cdv("show", real_run, "--question", qid[:-3], "--json").stdout)
    assert mine and {e["question_id"] for e in mine} == {qid}


def test_show_wraps_at_80_columns_and_reads_no_markup(crafted_run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = cdv("show", crafted_run, "--status", "all")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "..." not in out
    flat = squeeze(out)
    # Every text whole (wrapped, never cut), and markup-like text shown as it is.
    for text in (f"{FIRST} {SKY.question} {SECOND}", LONG_TOKEN, MARKUP, "green [b]"):
        assert squeeze(text) in flat, text
    assert "👍" not in out
    assert "[target] server said [500]" in out  # the error node says what failed


def test_show_says_why_a_node_was_rejected(crafted_run):
    res = cdv("show", crafted_run, "--status", "rejected")
    assert res.exit_code == 0, res.output
    assert "leak: the distraction labels [an option] as right or wrong" in " ".join(
        res.stdout.split()
    )
    assert "length" not in res.stdout  # a check that passed is no reason
    entry = json.loads(cdv("show", crafted_run, "--status", "rejected", "--json").stdout)[0]
    assert entry["failed_checks"] == {
        "leak": "the distraction labels [an option] as right or wrong"
    }
    res = cdv("show", crafted_run, "--status", "duplicate")
    assert "same text as another node" in res.stdout


def test_show_highlights_the_distraction(crafted_run, monkeypatch):
    screen = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=80)
    monkeypatch.setattr(show_cmd, "console", screen)
    res = cdv("show", crafted_run)
    assert res.exit_code == 0, res.output
    out = screen.file.getvalue()
    bold_yellow, yellow = "\x1b[1;33m", "\x1b[33m"
    assert bold_yellow + SECOND.split()[0] in out  # this node's own distraction
    assert yellow + FIRST.split()[0] in out  # the one it inherited, lighter
    assert "\x1b[1;32m" in out  # the correct choice is marked in green


def test_show_refuses_bad_input_in_one_line(crafted_run, tmp_path):
    one_line_error(cdv("show", crafted_run, "--status", "best"), "--status", "all")
    one_line_error(cdv("show", crafted_run, "--question", "nope"), "nope")
    one_line_error(cdv("show", tmp_path / "missing"), "no cdvkit run")
    one_line_error(cdv("show", crafted_run, "--limit", -1), "--limit")
    res = cdv("show", crafted_run, "--depth", 9)
    assert res.exit_code == 0 and "no good nodes match" in res.stdout


def test_show_reads_a_read_only_run(real_run, tmp_path):
    run = tmp_path / "ro"
    shutil.copytree(real_run, run)
    before = snapshot(run)
    for p in run.iterdir():
        p.chmod(0o444)
    run.chmod(0o555)
    try:
        res = cdv("show", run, "--status", "all", "--limit", 0)
        assert res.exit_code == 0, res.output
        assert snapshot(run) == before  # no lock, journal or -wal/-shm file appeared
    finally:
        run.chmod(0o755)
        for p in run.iterdir():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


# --- cdv init ---------------------------------------------------------------------------------


def test_init_writes_the_defaults(tmp_path):
    path = tmp_path / "cdv.toml"
    res = cdv("init", path)
    assert res.exit_code == 0, res.output
    text = path.read_text()
    assert text == starter_config()
    assert SearchConfig.from_sources(path) == SearchConfig()
    # Settings a preset sets are left commented out, so a preset still applies.
    assert SearchConfig.from_sources(path, preset="reference") == SearchConfig.from_sources(
        None, preset="reference"
    )
    for key in ("data", "target", "proposer", "judge", "extractor", "base_url", "protocol"):
        assert f"{key} = " in text
    for key in ("samples", "temperature", "target_prompt", "threshold", "scoring", "strategy"):
        assert f"{key} = " in text
    for key in ("max_expansions", "max_good", "max_depth", "max_calls", "max_cost"):
        assert f"{key} = " in text
    for key in ("constraints", "[roles.target]", "concurrency", "timeout", "max_retries"):
        assert key in text
    assert "api_key_env" in text
    names = {f for f in SearchConfig.__dataclass_fields__}
    assert all(name in text for name in names), "every setting is at least named"

    defaults = SearchConfig()
    lines = text.splitlines()
    roles_at = lines.index("# [roles.target]")
    for line in lines[:roles_at]:
        if line.startswith("# ") and " = " in line:
            # A commented-out setting shows its true default (or, unset ones, an example).
            ((key, value),) = tomllib.loads(line[2:]).items()
            if getattr(defaults, key) is not None:
                assert value == getattr(defaults, key), key
    # The [roles.target] block, uncommented, is a valid role table.
    block = "\n".join(ln[2:] for ln in lines[roles_at:] if ln.startswith("# ") and "=" in ln[:30])
    roles = tomllib.loads("[roles.target]\n" + block)["roles"]
    cfg = SearchConfig.from_sources(None, roles=roles)
    assert cfg.roles["target"]["timeout"] > 0 and cfg.roles["target"]["max_retries"] >= 0
    assert cfg.roles["target"]["concurrency"] == defaults.model_concurrency


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "cdv.toml"
    path.write_text("# mine\n")
    one_line_error(cdv("init", path), "already exists", "--force")
    assert path.read_text() == "# mine\n"
    assert cdv("init", path, "--force").exit_code == 0
    assert path.read_text() == starter_config()
    one_line_error(cdv("init", tmp_path), "directory")


def test_generate_accepts_the_init_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cdv("init").exit_code == 0
    assert Path("cdv.toml").is_file()
    res = cdv("generate", "--config", "cdv.toml", "--limit", 2, "--run-dir", "run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["questions"] == 2


# --- -o - writes to stdout --------------------------------------------------------------------


def without_timestamp(markdown: str) -> str:
    return "\n".join(ln for ln in markdown.splitlines() if "generated" not in ln)


def test_report_markdown_to_stdout(real_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cdv("report", real_run, "--format", "md", "-o", "-")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# CDV report")
    assert "wrote" not in res.stdout
    assert cdv("report", real_run, "--format", "md", "-o", "r.md").exit_code == 0
    assert without_timestamp(res.stdout) == without_timestamp(Path("r.md").read_text())

    res = cdv("report", real_run, "--format", "md", "-o", "-", "--png", "plots")
    assert res.exit_code == 0, res.output
    assert "PNG" not in res.stdout and "PNG plots" in res.stderr

    one_line_error(cdv("report", real_run, "-o", "-"), "md")  # html is not for stdout
    assert not Path("-").exists()


@pytest.mark.parametrize(("fmt", "what"), [("jsonl", "examples"), ("reference", "questions")])
def test_export_to_stdout(real_run, tmp_path, monkeypatch, fmt, what):
    monkeypatch.chdir(tmp_path)
    res = cdv("export", real_run, "--format", fmt, "-o", "-")
    assert res.exit_code == 0, res.output
    assert cdv("export", real_run, "--format", fmt, "-o", "out").exit_code == 0
    assert res.stdout == Path("out").read_text()  # the same bytes as the file, nothing else
    assert f"{what}" in res.stderr and "stdout" in res.stderr
    if fmt == "jsonl":
        rows = [json.loads(line) for line in res.stdout.splitlines()]
        with RunStore(real_run, lock=False, readonly=True) as store:
            assert len(rows) == len(list(store.examples()))
    else:
        assert isinstance(json.loads(res.stdout), list)


@pytest.mark.parametrize("fmt", ["hf", "lm-eval", "sft", "dpo"])
def test_folder_exports_refuse_stdout_in_one_line(real_run, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    one_line_error(cdv("export", real_run, "--format", fmt, "-o", "-"), fmt, "folder")
    assert not any(tmp_path.iterdir())


# --- cdv train errors -------------------------------------------------------------------------


def test_train_errors_are_one_line(tmp_path):
    data = tmp_path / "dpo"
    data.mkdir()
    one_line_error(cdv("train", "--data", tmp_path / "nope", "--model", "hf/x"), "not found")
    one_line_error(cdv("train", "--data", data, "--model", "hf/x"), "train.jsonl", "not found")
    (data / "train.jsonl").write_text("not json\n")
    one_line_error(cdv("train", "--data", data, "--model", "hf/x"), "line 1")
    (data / "train.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    one_line_error(cdv("train", "--data", data, "--model", "hf/x"), "not DPO data")
    one_line_error(cdv("train", "--data", data, "--model", "hf/x", "--method", "ppo"), "--method")
    for model in ("openai/gpt-4o-mini", "Qwen/Qwen2.5-0.5B", "hf/"):
        one_line_error(cdv("train", "--data", data, "--model", model), "hf/<path-or-hub-id>")


def test_train_library_errors_become_one_line(tmp_path, monkeypatch):
    # The package re-exports a function named like the module: fetch the module itself.
    train_module = importlib.import_module("cdvkit.mitigation.train")

    def broken(opts, warn=None):
        raise OSError("We couldn't connect to the hub\nCheck your internet connection")

    monkeypatch.setattr(train_module, "train", broken)
    line = one_line_error(cdv("train", "--data", tmp_path, "--model", "hf/some/model"))
    assert "connect to the hub Check your internet" in line


# --- prefilter progress -----------------------------------------------------------------------


def labelled_file(path: Path) -> Path:
    simple = [f"What color is a ripe {f}?" for f in ("tomato", "banana", "lemon", "lime", "plum")]
    simple += [f"What color is fresh {x}?" for x in ("snow", "milk", "grass", "coal", "ink")]
    hard = [
        f"Under the doctrine of {d}, which consideration most affects jurisdiction abroad?"
        for d in (
            "passive personality",
            "protective jurisdiction",
            "universality",
            "objective territoriality",
            "effects jurisdiction",
            "active nationality",
            "act of state",
            "sovereign immunity",
            "comity",
            "state responsibility",
        )
    ]
    prompt = "Determine whether the following question is too simple to be enhanced:\n"
    rows = [
        {"instruction": f"{prompt}Question: {q}\nChoices: ['a', 'b']", "output": out}
        for qs, out in ((simple, "Yes"), (hard, "No"))
        for q in qs
    ]
    path.write_text(json.dumps(rows))
    return path


def test_prefilter_cross_validation_shows_progress(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("sentence_transformers")
    data = labelled_file(tmp_path / "labels.json")
    res = cdv("prefilter", "train", "-d", data, "-o", tmp_path / "m.joblib", "--cv", 3)
    assert res.exit_code == 0, res.output
    assert "3/3" in res.stderr and "folds" in res.stderr
    assert "3-fold AUC" in res.stdout and "3/3" not in res.stdout

    res = cdv("prefilter", "train", "-d", data, "-o", tmp_path / "m.joblib", "--cv", 3, "--json")
    assert res.exit_code == 0 and res.stderr == ""
    assert json.loads(res.stdout)["cv_auc_folds"]
    res = cdv("prefilter", "train", "-d", data, "-o", tmp_path / "m.joblib", "--cv", 3, "-q")
    assert res.exit_code == 0 and res.stderr == ""

    res = cdv("prefilter", "eval", "-d", data, "--folds", 3)
    assert res.exit_code == 0, res.output
    assert "3/3" in res.stderr and "3-fold cross-validation" in res.stdout


def test_prefilter_progress_callback_and_threshold_rows_live_in_the_library(tmp_path):
    pytest.importorskip("sklearn")
    from cdvkit.cli import prefilter_cmd
    from cdvkit.prefilter import cross_validated_auc, load_labelled, threshold_rows

    calls: list[tuple[int, int]] = []
    data = load_labelled(labelled_file(tmp_path / "labels.json"))
    aucs = cross_validated_auc(data, folds=3, progress=lambda done, n: calls.append((done, n)))
    assert len(aucs) == 3 and calls == [(1, 3), (2, 3), (3, 3)]
    assert not hasattr(prefilter_cmd, "threshold_rows")  # analysis is not the CLI's
    (row,) = threshold_rows([1, 0, 0, 1], [0.1, 0.2, 0.9, 0.8], [0.5])
    assert row["skipped"] == 2 and row["enhanceable_lost"] == 1 and row["skipped_share"] == 0.5


# --- bench/_fakeserver.py ---------------------------------------------------------------------


def test_fakeserver_help_says_what_it_takes(tmp_path):
    server = ROOT / "bench" / "_fakeserver.py"
    res = subprocess.run(
        [sys.executable, str(server), "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    help_text = " ".join(res.stdout.split())
    assert "0-based index" in help_text
    for word in ('"question"', '"choices"', '"answer"', "JSON", "list", "simulated"):
        assert word in help_text, word
    description = res.stdout.split("\n\n")[1]
    assert description.count(". ") <= 1  # one or two sentences

    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([{"question": "Q?", "choices": ["a", "b"], "answer": 1}]))
    proc = subprocess.Popen(
        [sys.executable, str(server), "--questions", str(questions)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("PORT ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- Ctrl-C -----------------------------------------------------------------------------------


def slow_generate(tmp_path: Path, delay: str) -> tuple[list[str], dict[str, str]]:
    data = tmp_path / "q.jsonl"
    rows = [
        {"question": f"Item {i} is painted which colour, {c}?", "choices": [c, "grey"], "answer": c}
        for i, c in enumerate(["red", "green", "blue", "yellow", "purple", "orange"])
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmd = [
        sys.executable, str(HERE / "drive_cli.py"), "generate", "--data", str(data),
        "--target", "scripted/oracle", "--proposer", "scripted/prop", "--similarity-floor", "0",
        "--samples", "2", "--run-dir", str(tmp_path / "run"), "--quiet",
    ]  # fmt: skip
    env = {
        **os.environ,
        "CDV_ORACLE_DATA": str(data),
        "CDV_SCRIPTED_LOG": str(tmp_path / "calls.log"),
        "CDV_SCRIPTED_DELAY": delay,
        "HF_HUB_OFFLINE": "1",
    }
    return cmd, env


def test_ctrl_c_prints_how_to_resume(tmp_path):
    cmd, env = slow_generate(tmp_path, "0.2")
    log = tmp_path / "calls.log"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert "interrupted" in err and "rerun the same command to resume" in err

    # And rerunning it does resume, to the end.
    cmd, env = slow_generate(tmp_path, "0")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_ctrl_c_elsewhere_promises_no_resume(monkeypatch, capsys):
    from cdvkit.cli import app as app_module

    def interrupted() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemExit(130) from exc  # what typer makes of Ctrl-C

    monkeypatch.setattr(app_module, "app", interrupted)
    monkeypatch.setattr(sys, "argv", ["cdv", "report", "runs/x"])
    with pytest.raises(SystemExit) as exit_info:
        app_module.main()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" not in err
