"""Free-form (numeric) runs end to end: search on a simulated LLM server, every example verified
to fool the simulated target, kill-and-resume, then evaluate, report, show and export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))
from _fakeserver import FakeServer  # noqa: E402
from _freeworld import problem_rows  # noqa: E402

runner = CliRunner()


def write_problems(path: Path, n: int = 50, seed: int = 0) -> Path:
    """``n`` numeric problems of the simulated server's free-form world, as a JSONL file."""
    path.write_text("".join(json.dumps(r) + "\n" for r in problem_rows(n, seed)))
    return path


def generate(data: Path, run: Path, base_url: str, *extra: str) -> dict:
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--target", "openai-compatible/sim",
         "--proposer", "openai-compatible/sim", "--judge", "openai-compatible/sim",
         "--extractor", "openai-compatible/sim", "--base-url", base_url,
         "--similarity-floor", "0", "--run-dir", str(run), "--json", *extra],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.slow
def test_simulated_numeric_search_finds_examples_that_fool_the_target(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = write_problems(tmp_path / "math.jsonl")
    questions = load_questions(str(data)).questions
    assert len(questions) == 50 and all(q.task == "numeric" for q in questions)
    run = tmp_path / "run"
    with FakeServer(questions) as fs:
        summary = generate(data, run, fs.base_url)
        with RunStore(run, lock=False, readonly=True) as store:
            examples = list(store.examples())
            nodes = store.nodes()
            statuses = {d["id"]: d["status"] for d in store.questions()}
        assert summary["with_example"] >= 10 and len(examples) >= summary["with_example"]
        for ex in examples:
            assert ex["task"] == "numeric" and ex["choices"] == []
            node = next(
                n
                for n in nodes
                if n["question_id"] == ex["question_id"] and n["path"] == ex["path"]
            )
            # Confirmed under the protocol: none of the target's answers was right ...
            verify = node["outputs"].get("verify") or node["outputs"]
            assert node["verified"] is True and verify["answers"]
            assert not any(a["correct"] for a in verify["answers"])
            # ... and the simulated target's true distribution agrees: its likeliest answer is
            # wrong on the example, right on the original.
            answer, probs = fs.free_probs(ex["question"])
            assert max(probs, key=probs.get) != answer
            _, before = fs.free_probs(ex["original_question"])
            assert max(before, key=before.get) == answer
            assert statuses[ex["question_id"]] == "done"
            # The sentence pushes a wrong number and never names the right one.
            assert float(ex["target_option"]) != answer
        # The search aimed at wrong answers the target gave or the proposer suggested.
        assert summary["by_role"]["proposer"]["calls"] > 0


def test_free_form_proposals_come_in_rounds_each_aimed_at_the_same_wrong_answers(tmp_path):
    data = write_problems(tmp_path / "math.jsonl", n=12, seed=1)
    questions = load_questions(str(data)).questions
    with FakeServer(questions) as fs:
        generate(data, tmp_path / "run", fs.base_url, "--proposals", "2")
    with RunStore(tmp_path / "run", lock=False, readonly=True) as store:
        nodes = store.nodes()
    by_parent: dict[tuple[str, str], list[dict]] = {}
    for n in nodes:
        if n["parent_path"] is not None:
            by_parent.setdefault((n["question_id"], n["parent_path"]), []).append(n)
    wide = [kids for kids in by_parent.values() if len(kids) > 3]
    assert wide  # some expansion wanted a second round
    for kids in wide:
        kids.sort(key=lambda k: int(k["path"].rsplit(".", 1)[1]))
        first, second = kids[: len(kids) // 2], kids[len(kids) // 2 :]
        # The second round aims at the first round's wrong answers, with other sentences.
        assert [k["target_option"] for k in first] == [k["target_option"] for k in second]
        assert {k["distraction"] for k in first}.isdisjoint(k["distraction"] for k in second)


def free_cmd(data: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, str(HERE / "drive_cli.py"), "generate",
        "--data", str(data), "--target", "scripted/free-oracle", "--proposer", "scripted/free-prop",
        "--similarity-floor", "0", "--samples", "2", "--seed", "3", "--concurrency", "4",
        "--max-expansions", "3", "--run-dir", str(run_dir), "--quiet",
    ]  # fmt: skip


def free_env(data: Path, log: Path, delay: str) -> dict[str, str]:
    return {**os.environ, "CDV_FREE_DATA": str(data), "CDV_SCRIPTED_LOG": str(log),
            "CDV_SCRIPTED_DELAY": delay, "HF_HUB_OFFLINE": "1"}  # fmt: skip


def outcome(run_dir: Path) -> tuple[list[tuple], int]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        examples = sorted(
            (e["question_id"], e["path"], e["question"], e["target_option"])
            for e in store.examples()
        )
        return examples, store.paid_calls()


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
def test_a_killed_free_form_run_resumes_with_the_same_examples(tmp_path):
    data = write_problems(tmp_path / "math.jsonl", n=12)
    ref_log = tmp_path / "ref.log"
    subprocess.run(
        free_cmd(data, tmp_path / "ref"), env=free_env(data, ref_log, "0"), check=True, timeout=120
    )
    ref_examples, ref_calls = outcome(tmp_path / "ref")
    assert ref_examples

    log = tmp_path / "killed.log"
    proc = subprocess.Popen(free_cmd(data, tmp_path / "run"), env=free_env(data, log, "0.05"))
    deadline = time.time() + 60
    while len(lines(log)) < 20 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = len(lines(log))
    assert 0 < sent < len(lines(ref_log))

    subprocess.run(
        free_cmd(data, tmp_path / "run"), env=free_env(data, log, "0"), check=True, timeout=120
    )
    examples, calls = outcome(tmp_path / "run")
    assert examples == ref_examples
    assert calls == ref_calls


# --- downstream: evaluate, report, show on a free-form run ----------------------------------------


def test_evaluate_report_and_show_take_a_free_form_run(tmp_path):
    from cdvkit.models.scripted import REGISTRY
    from freeform_helpers import FREE_QUESTIONS, free_oracle, make_free_run

    run = make_free_run(tmp_path / "run")
    REGISTRY["free-oracle"] = free_oracle()
    REGISTRY["free-robust"] = free_oracle(fooled_at=99)
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(run), "--models", "scripted/free-oracle", "scripted/free-robust",
         "--bootstrap", "100", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["evaluations"][0]
    (per_model,) = entry["results"].values()
    fooled, robust = per_model["scripted/free-oracle"], per_model["scripted/free-robust"]
    # The search's target is fooled by every first example, exactly as the search found.
    assert (fooled["overall"]["original"], fooled["overall"]["distracted"]) == (1.0, 0.0)
    assert fooled["overall"]["n"] == len(FREE_QUESTIONS)
    assert (robust["overall"]["original"], robust["overall"]["distracted"]) == (1.0, 1.0)
    assert "each read as a number" in entry["settings"]["protocol"]

    html = tmp_path / "r.html"
    assert runner.invoke(app, ["report", str(run), "-o", str(html)]).exit_code == 0
    from test_report import embedded_payload

    data = embedded_payload(html.read_text())
    eggs = next(q for q in data["questions"] if q["id"] == "eggs")
    assert eggs["task"] == "numeric" and eggs["references"] == ["13"] and eggs["choices"] == []
    good = [n for n in eggs["nodes"] if n["status"] == "good"]
    assert good and all(a["answer"] != "13" and not a["correct"] for a in good[0]["answers"])
    md = runner.invoke(app, ["report", str(run), "--format", "md", "-o", "-"])
    assert md.exit_code == 0 and "each read as a number" in md.stdout

    shown = runner.invoke(app, ["show", str(run), "--status", "good", "--question", "eggs"])
    assert shown.exit_code == 0, shown.output
    assert "answer   13" in shown.stdout and "pushed" in shown.stdout

    # The reference-format export reads back as the same examples.
    ref = tmp_path / "reference.json"
    assert (
        runner.invoke(app, ["export", str(run), "--format", "reference", "-o", str(ref)]).exit_code
        == 0
    )
    again = runner.invoke(
        app,
        ["evaluate", "--examples", str(ref), "--models", "scripted/free-oracle",
         "--out", str(tmp_path / "ev"), "--bootstrap", "100", "--json", "--all-examples"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    (m,) = json.loads(again.stdout)["evaluations"][0]["results"].values()
    assert m["scripted/free-oracle"]["overall"]["distracted"] == 0.0
