"""One error policy (cdvkit.models.errors.STOPS_RUN): the search, the evaluation and the
prefilter's root phase stop on the same errors, and nothing else keeps a list of its own."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from typer.testing import CliRunner

import cdvkit
from cdvkit.cli.app import app
from cdvkit.models.errors import (
    STOPS_RUN,
    AuthenticationError,
    BackendUnavailableError,
    BadResponseError,
    BudgetExceeded,
    OutageError,
    UnsupportedError,
)
from eval_helpers import QUESTIONS, register_models
from scripted_helpers import write_questions

runner = CliRunner()
SRC = Path(cdvkit.__file__).parent


def test_the_policy_is_decided_once():
    stop = (AuthenticationError, OutageError, BudgetExceeded, BackendUnavailableError)
    assert all(issubclass(e, STOPS_RUN) for e in (*stop, UnsupportedError))
    assert not issubclass(BadResponseError, STOPS_RUN)  # lost: its question is incomplete
    # No module keeps a tuple of these error classes of its own to decide what stops a run.
    ours = {e.__name__ for e in STOPS_RUN}
    lists = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if isinstance(value, ast.Tuple):
                names = {e.id for e in value.elts if isinstance(e, ast.Name)}
                if len(names & ours) >= 2:
                    lists.append(path.relative_to(SRC).as_posix())
    assert lists == ["models/errors.py"], lists


def test_a_model_without_what_the_protocol_needs_stops_the_run(tmp_path):
    """--scoring exact on a model that gives no choice probabilities: every question would fail
    the same way, so the run stops at once, naming the model."""
    register_models(QUESTIONS)
    data = write_questions(tmp_path / "q.jsonl", QUESTIONS)
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--target", "scripted/oracle", "--scoring", "exact",
         "--run-dir", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    summary = json.loads(res.stdout)
    assert summary["fatal"] and "scripted/oracle" in summary["fatal"]
    assert summary["examples"] == 0 and summary["originally_correct"] == 0
