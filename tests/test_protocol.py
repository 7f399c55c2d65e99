"""One protocol, one definition: what `generate` calls originally correct and fooled is what
`evaluate` measures, and every example is confirmed under the protocol before it counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import Question
from cdvkit.models.base import MCQ, GenerateRequest, Message
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import PAPER_SYSTEM
from cdvkit.protocol import Protocol, exact_outcome
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions
from scripted_helpers import (
    MARK,
    SKY,
    marking_proposer,
    oracle_responder,
    scripted,
    write_questions,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _fakeserver import FakeServer

runner = CliRunner()


LAST: dict = {}  # the last evaluation's entry


def evaluate_overall(*args: str) -> dict[str, dict[str, float]]:
    res = runner.invoke(app, ["evaluate", *args, "--bootstrap", "100", "--json"])
    assert res.exit_code == 0, res.output
    entry = LAST["entry"] = json.loads(res.stdout)["evaluations"][0]
    (per_model,) = entry["results"].values()
    return {model: r["overall"] for model, r in per_model.items()}


# --- generate then evaluate: 100% original, 0% distracted, on the same model and protocol --------


@pytest.mark.parametrize("protocol", ["sample", "exact"])
def test_offline_default_generate_then_evaluate_agree(tmp_path, protocol):
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["generate", "--data", "sample", "--limit", "16", "--protocol", protocol,
         "--run-dir", str(run), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["with_example"] > 0
    assert summary["verified"] == summary["candidates"] - summary["rejected_by_verification"]
    overall = evaluate_overall("--run", str(run), "--models", "embed/all-MiniLM-L6-v2")
    o = overall["embed/all-MiniLM-L6-v2"]
    # Every searched question was answered right, every example answered wrong: the same words.
    assert (o["original"], o["distracted"], o["n"]) == (1.0, 0.0, summary["with_example"])
    # The evaluation asked exactly what the search's confirmations asked: all from the store.
    answers = LAST["entry"]["answers"]
    assert LAST["entry"]["paid_calls"] == 0 and answers["total"] > 0
    # The report shows the search's calls as the summary counted them.
    md = tmp_path / "report.md"
    assert runner.invoke(app, ["report", str(run), "--format", "md", "-o", str(md)]).exit_code == 0
    assert f"| paid model calls (search) | {summary['calls']} |" in md.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["sample", "exact"])
def test_simulated_llm_generate_then_evaluate_agree(tmp_path, monkeypatch, protocol):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    questions = load_questions("sample").questions[:12]
    data = write_questions(tmp_path / "q.jsonl", questions)
    run = tmp_path / "run"
    with FakeServer(questions) as fs:
        res = runner.invoke(
            app,
            ["generate", "--data", str(data), "--target", "openai-compatible/sim",
             "--proposer", "openai-compatible/sim", "--judge", "openai-compatible/sim",
             "--extractor", "openai-compatible/sim", "--base-url", fs.base_url,
             "--similarity-floor", "0", "--protocol", protocol, "--run-dir", str(run), "--json"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout)
        overall = evaluate_overall(
            "--run", str(run), "--models", "openai-compatible/sim", "--base-url", fs.base_url,
            "--extractor", "openai-compatible/sim",
        )  # fmt: skip
    assert summary["with_example"] > 0
    if protocol == "sample":
        # The search scored by log-probs; the protocol is step-by-step answers, so candidates
        # were confirmed by asking the target (role "verify"), and some did not hold.
        assert summary["by_role"]["verify"]["calls"] > 0
    o = overall["openai-compatible/sim"]
    assert (o["original"], o["distracted"], o["n"]) == (1.0, 0.0, summary["with_example"])


# --- originally correct and fooled are the protocol's verdicts -----------------------------------


def probs_of(table: dict[bool, list[float]]):
    """Choice probabilities by whether a distraction is present, in the node's choice order."""

    def probs(messages: list[Message], mcq: MCQ) -> list[float]:
        # The table lists probabilities in the original order of SKY's choices.
        order = [SKY.choices.index(c) for c in mcq.choices]
        row = table[MARK in mcq.question]
        return [row[i] for i in order]

    return probs


async def search(tmp_path: Path, cfg: SearchConfig, models: dict) -> dict:
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: [SKY])
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None, outcome
        return {"summary": summarize(store), "nodes": store.nodes(), "q": store.questions()[0]}


async def test_a_root_the_target_gets_wrong_is_originally_failed_under_exact(tmp_path):
    # P(correct) = 0.24 but the most likely choice is wrong: the target gets it wrong.
    target = scripted(
        "t", lambda r, i: "", probs_fn=probs_of({False: [0.24, 0.5, 0.16, 0.1], True: [1, 1, 1, 1]})
    )
    cfg = SearchConfig(target="scripted/t", similarity_floor=0, protocol="exact")
    got = await search(tmp_path, cfg, {"target": target})
    assert got["q"]["status"] == "original_failed"
    assert got["summary"]["examples"] == 0 and got["summary"]["originally_failed"] == 1


async def test_a_root_wrong_in_every_sample_is_originally_failed(tmp_path):
    # Log-probs say the target is right, its step-by-step answers say otherwise: the protocol
    # (sampled answers) decides, not the cheaper score.
    target = scripted(
        "t",
        lambda r, i: "Thinking it over, the answer is (B).",
        probs_fn=probs_of({False: [0.9, 0.05, 0.03, 0.02], True: [0.9, 0.05, 0.03, 0.02]}),
    )
    cfg = SearchConfig(target="scripted/t", similarity_floor=0)
    got = await search(tmp_path, cfg, {"target": target})
    assert got["q"]["status"] == "original_failed"
    (root,) = got["nodes"]
    assert root["outputs"]["verify"]["correct"] is False
    assert [a["choice"] for a in root["outputs"]["verify"]["answers"]] == [1] * 5


async def test_candidates_the_protocol_rejects_are_not_examples(tmp_path):
    # Log-probs are fooled by any distraction, the step-by-step answers never are: every
    # candidate is rejected by verification, and none counts.
    target = scripted(
        "t",
        oracle_responder([SKY], fooled_at=99),
        probs_fn=probs_of({False: [0.9, 0.05, 0.03, 0.02], True: [0.1, 0.8, 0.05, 0.05]}),
    )
    proposer = scripted("p", marking_proposer)
    judge_calls: list[int] = []

    def judge(req: GenerateRequest, i: int) -> str:
        judge_calls.append(i)
        return json.dumps({"changes_answer": False, "reason": "ok"})

    cfg = SearchConfig(
        target="scripted/t",
        proposer="scripted/p",
        judge="scripted/j",
        similarity_floor=0,
        max_expansions=3,
    )
    models = {"target": target, "proposer": proposer, "judge": scripted("j", judge)}
    got = await search(tmp_path, cfg, models)
    s = got["summary"]
    assert s["candidates"] > 0 and s["verified"] == 0
    assert s["rejected_by_verification"] == s["candidates"]
    assert s["examples"] == 0 and got["q"]["status"] == "done"
    rejected = [n for n in got["nodes"] if n["verified"] is False]
    assert rejected and all(n["status"] == "open" for n in rejected)
    assert all(n["outputs"]["verify"]["correct"] for n in rejected)
    # Confirmations are paid as their own role, inside the run's counts.
    assert s["by_role"]["verify"]["calls"] > 0
    assert s["calls"] == sum(u["calls"] for u in s["by_role"].values())
    # The judge was asked about expanded nodes only, never about a rejected candidate's validity
    # as an example.
    assert len(judge_calls) <= 3


async def test_a_verified_candidate_is_an_example(tmp_path):
    target = scripted(
        "t",
        oracle_responder([SKY]),
        probs_fn=probs_of({False: [0.9, 0.05, 0.03, 0.02], True: [0.1, 0.8, 0.05, 0.05]}),
    )
    cfg = SearchConfig(
        target="scripted/t", proposer="scripted/p", similarity_floor=0, max_expansions=2
    )
    models = {"target": target, "proposer": scripted("p", marking_proposer)}
    got = await search(tmp_path, cfg, models)
    s = got["summary"]
    assert s["examples"] > 0 and s["verified"] == s["candidates"] == s["examples"]
    good = [n for n in got["nodes"] if n["status"] == "good"]
    assert all(n["verified"] is True and n["outputs"]["verify"]["correct"] is False for n in good)


def test_threshold_only_makes_exact_stricter():
    probs = [0.15, 0.6, 0.25]
    assert exact_outcome(probs, 0).fooled
    assert exact_outcome(probs, 0, threshold=0.2).fooled
    assert not exact_outcome(probs, 0, threshold=0.1).fooled  # P(correct) not below it
    assert not exact_outcome([0.5, 0.3, 0.2], 0, threshold=0.9).fooled  # argmax right
    with pytest.raises(ValueError):
        Protocol(threshold=0)


# --- the paper's prompt: choices as a list, the answer given by its text --------------------------


def test_paper_prompt_is_sent_and_its_text_answers_are_read(tmp_path):
    questions = [
        Question("q1", "Where would you find a jellyfish?", ("desert", "ocean", "attic"), 1),
        Question("q2", "What do cows drink?", ("milk", "water", "juice"), 1),
    ]
    seen: list[GenerateRequest] = []

    def by_text(req: GenerateRequest, sample: int) -> str:
        seen.append(req)
        mcq = req.mcq
        original = next(q for q in questions if q.question in mcq.question)
        pick = original.answer_text
        if MARK in mcq.question:
            pick = next(c for c in mcq.choices if c != original.answer_text)
        return f"Let's think step by step.\n\nThe final answer is: **'{pick}'**"

    REGISTRY["paper-target"] = by_text
    REGISTRY["paper-prop"] = marking_proposer
    data = write_questions(tmp_path / "q.jsonl", questions)
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--target", "scripted/paper-target",
         "--proposer", "scripted/paper-prop", "--target-prompt", "paper",
         "--similarity-floor", "0", "--run-dir", str(run), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["originally_correct"] == 2 and summary["with_example"] == 2
    system, user = seen[0].messages
    assert system == ("system", PAPER_SYSTEM)
    # The choices as a Python list, no option letters, and no final-answer line asked for
    # (the paper's own layout: its extractor reads every reply).
    assert "Choices:\n['desert', 'ocean', 'attic']" in user[1] and "A. " not in user[1]
    assert "Answer:" not in user[1] and "final answer is" not in user[1]
    with RunStore(run, readonly=True, lock=False) as store:
        assert store.get_config()["target_prompt"] == "paper"
        answers = [a for n in store.nodes() for a in n["outputs"].get("answers", [])]
    assert answers and all(a["status"] == "ok" for a in answers)
    # Evaluating the run asks the same way by default.
    overall = evaluate_overall("--run", str(run), "--models", "scripted/paper-target")
    assert overall["scripted/paper-target"]["original"] == 1.0
    assert overall["scripted/paper-target"]["distracted"] == 0.0


def test_protocol_options_are_validated(tmp_path):
    for args, message in [
        (["--protocol", "vote"], "--protocol must be one of sample, exact, not 'vote'"),
        (["--target-prompt", "essay"], "--target-prompt must be one of letter, paper"),
        (["--samples", "0"], "--samples must be at least 1"),
    ]:
        res = runner.invoke(
            app, ["generate", "--data", "sample", "--run-dir", str(tmp_path / "r"), *args]
        )
        assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
        assert not (tmp_path / "r").exists()
