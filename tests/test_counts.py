"""Counts that cannot exceed their whole: a run stopped early reports a success rate over finished
questions only, in its numerator and its denominator alike.

A run stopped by --max-calls leaves questions unfinished that already hold examples. The success
rate used to count those in its numerator but not in its denominator (finished questions only):
700% on a run where one question had finished and seven had examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.cli.generate_cmd import STOPPED_BY_BUDGET
from cdvkit.data.question import Question
from cdvkit.models.scripted import REGISTRY
from cdvkit.reporting.summary import success_rate, summarize
from cdvkit.store import RunStore
from scripted_helpers import marking_proposer, oracle_responder

pytestmark = pytest.mark.timeout(60)

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]


def write_rows(path: Path, n: int) -> list[Question]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        answer = COLORS[i % len(COLORS)]
        choices = [answer, *[c for c in COLORS if c != answer][:3]]
        rows.append({"question": f"Item {i} is painted which colour?", "choices": choices,
                     "answer": answer})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [Question(str(i), r["question"], tuple(r["choices"]), 0) for i, r in enumerate(rows)]


def generate(data: Path, run_dir: Path, *extra: str) -> Any:
    args = [
        "generate", "--data", str(data), "--target", "scripted/count-oracle",
        "--proposer", "scripted/count-prop", "--similarity-floor", "0", "--samples", "2",
        "--max-expansions", "4", "--concurrency", "4", "--run-dir", str(run_dir), "--json",
        *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, args)


def test_a_run_stopped_by_max_calls_has_a_success_rate_of_finished_questions(
    tmp_path: Path,
) -> None:
    data = tmp_path / "q.jsonl"
    qs = write_rows(data, 16)
    # Fooled by two stacked distractions, and searched on after its first examples (--max-good
    # 50): four questions at a time, the ceiling stops the third four after their examples.
    REGISTRY["count-oracle"] = oracle_responder(qs, fooled_at=2)
    REGISTRY["count-prop"] = marking_proposer
    run_dir = tmp_path / "run"
    res = generate(data, run_dir, "--max-good", "50", "--max-calls", "110")
    assert res.exit_code == STOPPED_BY_BUDGET, res.output
    stopped = json.loads(res.stdout)

    with RunStore(run_dir, readonly=True, lock=False) as store:
        statuses = {d["id"]: d["status"] for d in store.questions()}
        with_examples = {e["question_id"] for e in store.examples()}
    done = {q for q, s in statuses.items() if s == "done"}
    unfinished = with_examples - done
    # The situation of the issue: more questions hold examples than have finished (the old
    # rate: 8 / 4 = 200%).
    assert unfinished and len(with_examples) > len(done) > 0, (statuses, with_examples)
    assert stopped["originally_correct"] == len(done)
    assert stopped["with_example"] == len(with_examples & done) <= stopped["originally_correct"]
    assert stopped["with_example_unfinished"] == len(unfinished)
    assert 0.0 <= stopped["success_rate"] <= 1.0
    expected = len(with_examples & done) / len(done) if done else 0.0
    assert stopped["success_rate"] == pytest.approx(expected)

    # The text summary says the same, and shows the unfinished questions' examples apart.
    with RunStore(run_dir, readonly=True, lock=False) as store:
        summary = summarize(store)
    assert summary["success_rate"] == stopped["success_rate"]
    text = CliRunner().invoke(
        app, ["report", str(run_dir), "--format", "md", "-o", str(tmp_path / "r.md")]
    )
    assert text.exit_code == 0, text.output
    md = (tmp_path / "r.md").read_text()
    assert f"| success rate | {stopped['success_rate']:.1%} |" in md
    assert f"| + unfinished, with an example | {len(unfinished)} |" in md

    # Once a rerun finishes them, every question counts, and the rate is the full run's.
    again = generate(data, run_dir, "--max-good", "50")
    assert again.exit_code == 0, again.output
    full = json.loads(again.stdout)
    assert full["with_example_unfinished"] == 0
    assert full["with_example"] == full["originally_correct"] == 16
    assert full["success_rate"] == 1.0


def test_the_success_rate_has_one_definition() -> None:
    assert success_rate(3, 4) == 0.75
    assert success_rate(0, 0) == 0.0
