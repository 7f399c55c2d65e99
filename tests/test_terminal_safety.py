"""No control or escape character from a data file or a model reaches the terminal.

`tests/data/bad/control_chars.jsonl` holds NUL, BEL, ANSI colour and clear-screen sequences and
a CR in its questions and choices; the scripted models here add a window-title sequence, a C1
CSI and a bidi override to their distractions and to the error one of them raises. The commands
that show that text (`cdv generate`, its failure lines and summary, `cdv show`, `cdv evaluate`,
`cdv report -o -`) must print it with its control characters made visible, and nothing but a
newline or a tab from C0 and C1 may reach stdout or stderr. The store keeps the text verbatim.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.cli.safe_text import visible
from cdvkit.models.base import GenerateRequest
from cdvkit.models.errors import ModelError
from cdvkit.models.scripted import REGISTRY
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions
from scripted_helpers import MARK, oracle_responder, per_option

pytestmark = pytest.mark.timeout(90)

DATA = Path(__file__).resolve().parent / "data" / "bad" / "control_chars.jsonl"
# What a hostile model adds: a window title, a C1 CSI (clear screen), a bidi override, a bell.
HOSTILE = "\x1b]0;pwned\x07 \x9b2J \u202eevil\u202c \x07"
# Every C0 control but newline and tab, DEL, and every C1 control.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def no_controls(text: str, what: str) -> None:
    found = sorted({repr(c) for c in CONTROLS.findall(text)})
    assert not found, f"{what} passes {found} to the terminal:\n{text}"


def proposer_or_fail(req: GenerateRequest, sample: int) -> str:
    # The second question's distractions fail with a server message full of escapes.
    if "Which animal barks?" in req.messages[-1][1]:
        raise ModelError(f"request rejected (HTTP 400): {HOSTILE} bad", model="scripted/tprop")
    return propose(req, sample)


propose = per_option(lambda wrong: f"{MARK}: {HOSTILE} people often talk about {wrong} here.")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("tty")
    questions = load_questions(str(DATA)).questions
    REGISTRY["tty-oracle"] = oracle_responder(questions, fooled_at=1)
    REGISTRY["tty-prop"] = proposer_or_fail
    run_dir = base / "run"
    args = [
        "generate", "--data", str(DATA), "--target", "scripted/tty-oracle",
        "--proposer", "scripted/tty-prop", "--similarity-floor", "0", "--samples", "2",
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    return {"run_dir": run_dir, "generate": res, "questions": questions}


def test_generate_prints_no_control_character(run: dict[str, Any]) -> None:
    res = run["generate"]
    # One question lost its proposer call: incomplete, exit 1, its failure shown and counted.
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    no_controls(res.stdout, "cdv generate's stdout")
    no_controls(res.stderr, "cdv generate's stderr")
    # The failure line and the summary's failure table show the server's text, made visible.
    assert "\\x1b]0;pwned\\x07" in res.stderr, res.stderr
    assert "\\x9b2J" in " ".join(res.stdout.split()), res.stdout
    # The store keeps everything verbatim.
    with RunStore(run["run_dir"], readonly=True, lock=False) as store:
        assert any(HOSTILE in f["error"] for f in store.failures())
        assert any(HOSTILE in e["question"] for e in store.examples())
        stored = {d["question"].question for d in store.questions()}
    assert {q.question for q in run["questions"]} == stored
    assert any("\x1b[31m" in q for q in stored)


def test_show_prints_no_control_character(run: dict[str, Any]) -> None:
    res = CliRunner().invoke(app, ["show", str(run["run_dir"]), "--status", "all"])
    assert res.exit_code == 0, res.output
    no_controls(res.stdout, "cdv show")
    no_controls(res.stderr, "cdv show's stderr")
    flat = "".join(res.stdout.split())
    # The data's sequences and the model's are there to read, as escapes.
    for shown in ("\\x1b[31mgrass\\x1b[0m", "red\\x1b[2J", "\\x00", "\\r", "\\x1b]0;pwned\\x07"):
        assert shown in flat, (shown, res.stdout)
    assert "\\u202eevil\\u202c" in flat
    # --json is the same data, its control characters escaped as JSON does.
    res = CliRunner().invoke(app, ["show", str(run["run_dir"]), "--status", "all", "--json"])
    assert res.exit_code == 0, res.output
    no_controls(res.stdout, "cdv show --json")
    entries = json.loads(res.stdout)
    assert any(HOSTILE in (e["distraction"] or "") for e in entries)


def test_evaluate_and_report_print_no_control_character(run: dict[str, Any], tmp_path) -> None:
    REGISTRY["tty-eval"] = lambda req, i: f"{HOSTILE} Answer: A"
    res = CliRunner().invoke(
        app,
        ["evaluate", "--run", str(run["run_dir"]), "--models", "scripted/tty-eval",
         "--out", str(tmp_path / "eval")],
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in res.output
    no_controls(res.stdout, "cdv evaluate")
    no_controls(res.stderr, "cdv evaluate's stderr")
    res = CliRunner().invoke(app, ["report", str(run["run_dir"]), "--format", "md", "-o", "-"])
    assert res.exit_code == 0, res.output
    no_controls(res.stdout, "cdv report -o -")
    if "grass" in res.stdout:  # where the Markdown shows the question, it shows it visibly
        assert "\\x1b" in res.stdout


def test_visible_writes_out_every_control_and_keeps_the_rest() -> None:
    text = "a\x1b[2Jb\x9bc\x7fd\r\ne\tf\u202eg\x00 é 漢字"
    shown = visible(text)
    assert shown == "a\\x1b[2Jb\\x9bc\\x7fd\\r\ne\tf\\u202eg\\x00 é 漢字"
    no_controls(shown, "visible")
    assert visible("one\ntwo", newlines=False) == "one\\ntwo"
