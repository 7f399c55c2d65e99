"""`--preset paper`: the paper's procedure step for step, on a scripted world whose outcomes are
computed by hand.

The world: three questions. The target gets the Red Planet question right unless a distraction
(marked PUSH) stands in it; it always answers the boiling point question wrong (originally
failed); it always gets the photosynthesis question right. The target is also the judge, as in
the paper, and refuses every distraction about nitrogen. The extractor reads every answer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import REGISTRY
from cdvkit.store import RunStore

runner = CliRunner()

QUESTIONS = [
    ("Which planet is known as the Red Planet?", ["Mars", "Venus", "Jupiter"], "Mars", "astronomy"),
    (
        "What is the boiling point of water at sea level in degrees Celsius?",
        ["100", "90", "80"],
        "100",
        "physics",
    ),
    (
        "Which gas do green plants take in for photosynthesis?",
        ["carbon dioxide", "oxygen", "nitrogen"],
        "carbon dioxide",
        "biology",
    ),
]
SEEN: dict[str, list[GenerateRequest]] = {}


def _user(req: GenerateRequest) -> str:
    return req.messages[-1][1]


def paper_target(req: GenerateRequest, sample: int) -> str:
    """Answers (and judges) as the world says, in free text naming the choice."""
    text = _user(req)
    if "answer_unchanged" in text:
        SEEN.setdefault("judge", []).append(req)
        verdict = "No" if "nitrogen" in text.split("added sentences:")[-1] else "Yes"
        return f'Let me compare them step by step. {{"answer_unchanged": "{verdict}"}}'
    SEEN.setdefault("target", []).append(req)
    q = req.mcq.question
    if "boiling point" in q:
        pick = "90"
    elif "Red Planet" in q and "PUSH" in q:
        pick = "Venus"
    else:
        pick = next(a for question, _, a, _ in QUESTIONS if question in q)
    return f"Thinking it through step by step, I pick {pick}.\nThat is my reasoning."


def paper_proposer(req: GenerateRequest, sample: int) -> str:
    SEEN.setdefault("proposer", []).append(req)
    text = _user(req)
    question = text.split("Question:\n")[1].split("\n\nAlternative answer:")[0]
    wrong = text.split("Alternative answer:\n")[1].split("\n")[0]
    # Unique per node, so no child duplicates another (the paper's code has no dedupe).
    return f"Sure.\nDistraction: PUSH people ({len(question)}) keep mentioning {wrong}."


def paper_extractor(req: GenerateRequest, sample: int) -> str:
    SEEN.setdefault("extractor", []).append(req)
    pick = re.search(r"I pick (.+?)\.\n", _user(req)).group(1)
    return json.dumps({"final_answer": pick})


def _world(tmp_path: Path) -> Path:
    SEEN.clear()
    REGISTRY["paper-world-target"] = paper_target
    REGISTRY["paper-world-proposer"] = paper_proposer
    REGISTRY["paper-world-extractor"] = paper_extractor
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": q, "choices": c, "answer": a, "subject": s}) + "\n"
            for q, c, a, s in QUESTIONS
        )
    )
    return data


def _generate(tmp_path: Path, *extra: str):
    data = _world(tmp_path)
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--preset", "paper",
         "--target", "scripted/paper-world-target", "--proposer", "scripted/paper-world-proposer",
         "--extractor", "scripted/paper-world-extractor", "--run-dir", str(run), "--json", *extra],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return run, json.loads(res.stdout)


def test_paper_preset_runs_the_papers_procedure(tmp_path):
    run, summary = _generate(tmp_path)
    assert (summary["originally_correct"], summary["originally_failed"]) == (2, 1)
    # The Red Planet question: its first expansion gives two children, both fooled: two
    # examples, and the search ends (no open node left). Photosynthesis: never fooled, ten
    # expansions (max_try 10).
    assert (summary["with_example"], summary["examples"]) == (1, 2)
    with RunStore(run, readonly=True, lock=False) as store:
        nodes = store.nodes()
        cfg = store.get_config()
    children = [n for n in nodes if n["parent_path"] is not None]
    expansions = {(n["question_id"], n["parent_path"]) for n in children}
    assert len(expansions) == 1 + 10
    judged_out = [n for n in children if n["status"] == "rejected"]
    simulated = [n for n in children if n["status"] != "rejected"]
    assert judged_out and all("nitrogen" in n["distraction"] for n in judged_out)
    assert all(n["verdicts"]["judge"]["passed"] is False for n in judged_out)
    # The judge runs on every child, before it is simulated: a child it refused has no answers.
    assert all(not n["outputs"].get("answers") for n in judged_out)

    # Requests per role, as the paper's procedure makes them: one proposer call per wrong
    # option of each expanded node; the target as judge on every child; five target answers
    # (one request each) per simulated node (the three originals and every child the judge
    # let through); the extractor on every answer.
    by_role = summary["by_role"]
    assert by_role["proposer"]["calls"] == len(children) == 2 * len(expansions)
    assert by_role["judge"]["calls"] == len(children)
    assert by_role["target"]["calls"] == 5 * (3 + len(simulated))
    assert by_role["extractor"]["calls"] == by_role["target"]["calls"]
    assert "verify" not in by_role  # sampled scoring is the protocol: no second asking

    # What each role was shown: the paper's layouts.
    red_props = [_user(r) for r in SEEN["proposer"] if "Red Planet" in _user(r)]
    assert len(red_props) == 2
    for prop in red_props:  # the node's question and one wrong option: no answer, no choices
        assert ("Venus" in prop) != ("Jupiter" in prop)
        assert "Mars" not in prop and "[" not in prop
    red_judge = [_user(r) for r in SEEN["judge"] if "Red Planet" in _user(r)]
    assert red_judge and all("Mars" not in j for j in red_judge)  # only the two questions
    assert {r.temperature for r in SEEN["judge"]} == {0.0001}
    root = next(r for r in SEEN["target"] if r.mcq.question == QUESTIONS[0][0])
    assert root.temperature == 0.0001 and root.max_tokens >= 4096
    assert "['Mars', 'Venus', 'Jupiter']" in _user(root) and "A. " not in _user(root)
    ext = SEEN["extractor"][0]
    assert "final_answer" in _user(ext) and ext.temperature == 0.0001

    # The paper's settings are recorded: choices shuffled, no similarity floor, no leak check.
    assert cfg["choice_order"] == "shuffle" and cfg["similarity_floor"] == 0.0
    assert cfg["leak_check"] is False and cfg["judge"] == "target"
    # The distraction stands before or after the node's question, and the choices move.
    shuffled = [n for n in simulated if tuple(n["choices"]) != tuple(QUESTIONS[0][1])]
    assert any(n["placement"] == "prefix" for n in simulated)
    assert any(n["placement"] == "suffix" for n in simulated)
    assert shuffled


def test_originally_failed_enters_the_paper_export_as_itself(tmp_path):
    run, _ = _generate(tmp_path)
    out = tmp_path / "ref.json"
    res = runner.invoke(app, ["export", str(run), "--format", "reference", "-o", str(out)])
    assert res.exit_code == 0, res.output
    entries = {e["question"]: e for e in json.loads(out.read_text())}
    failed = entries[QUESTIONS[1][0]]["good_questions"]
    assert len(failed) == 1 and failed[0]["question"] == QUESTIONS[1][0]
    assert failed[0]["rate"] == 0 and failed[0]["originally_failed"] is True
    red = entries[QUESTIONS[0][0]]["good_questions"]
    assert len(red) == 2 and all("PUSH" in g["question"] for g in red)
    assert not any(g.get("originally_failed") for g in red)
    assert entries[QUESTIONS[2][0]]["good_questions"] == []


def test_paper_preset_needs_an_extractor(tmp_path):
    data = _world(tmp_path)
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--preset", "paper",
         "--target", "scripted/paper-world-target", "--run-dir", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--extractor" in res.output and not (tmp_path / "r").exists()


def test_a_run_keeps_the_choice_order_by_default(tmp_path):
    """cdvkit's default keeps a child's choices in its parent's order, so the target's drop is
    the distraction's alone; the paper's shuffle is one option away."""
    data = _world(tmp_path)
    counts: Counter[str] = Counter()
    for order in ("keep", "shuffle"):
        run = tmp_path / order
        res = runner.invoke(
            app,
            ["generate", "--data", str(data), "--target", "scripted/paper-world-target",
             "--target-prompt", "paper", "--proposer", "llm:model=scripted/paper-world-proposer",
             "--proposer-prompt", "paper", "--extractor", "scripted/paper-world-extractor",
             "--similarity-floor", "0", "--choice-order", order, "--run-dir", str(run)],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        with RunStore(run, readonly=True, lock=False) as store:
            for n in store.nodes():
                original = next(c for q, c, _, _ in QUESTIONS if q in n["question"])
                counts[order] += list(n["choices"]) != original
    assert counts["keep"] == 0 and counts["shuffle"] > 0


def test_the_lengthening_baselines_rewrite_each_question_once(tmp_path):
    """`paraphrase-long` and `background`: one rewrite per question, no search, no length or
    similarity check (lengthening is their point); each rewrite is a node at depth 2."""
    data = _world(tmp_path)
    asked: list[str] = []

    def rewriter(req: GenerateRequest, sample: int) -> str:
        text = _user(req)
        asked.append(text)
        question = text.split("Question:\n")[1].split("\n\n")[0]
        padding = " ".join(["Some long and winding preamble."] * 30)
        return f"Here is my version.\nRewritten question: {padding} {question}"

    REGISTRY["paper-world-rewriter"] = rewriter
    for name in ("paraphrase-long", "background"):
        asked.clear()
        run = tmp_path / name
        res = runner.invoke(
            app,
            ["generate", "--data", str(data), "--target", "scripted/paper-world-target",
             "--target-prompt", "paper", "--extractor", "scripted/paper-world-extractor",
             "--proposer", f"{name}:model=scripted/paper-world-rewriter", "--run-dir", str(run),
             "--json"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout)
        # The originally failed question is not rewritten; the other two are, once each.
        assert summary["by_role"]["proposer"]["calls"] == 2 == len(asked)
        with RunStore(run, readonly=True, lock=False) as store:
            children = [n for n in store.nodes() if n["parent_path"] is not None]
        assert len(children) == 2
        for n in children:
            assert n["depth"] == 2 and n["placement"] == "rewrite"
            assert n["question"].startswith("Some long and winding preamble.")
            assert len(n["question"].split()) > 10 * 8  # far past the search's 10x limit
            assert n["status"] in ("open", "good") and "length" not in n["verdicts"]
        if name == "paraphrase-long":
            assert all("ten times" in a and "['" in a for a in asked)  # shown the choices
        else:
            assert all("background" in a and "['" not in a for a in asked)


def paper_robust(req: GenerateRequest, sample: int) -> str:
    """Another evaluated model: wrong on the boiling point like the target, never distracted."""
    SEEN.setdefault("robust", []).append(req)
    q = req.mcq.question
    pick = "90" if "boiling point" in q else next(a for t, _, a, _ in QUESTIONS if t in q)
    # Worded apart from the target's replies, so no extraction is served from the search's cache.
    return f"Weighing each choice in turn, I pick {pick}.\nDone."


def test_generate_then_evaluate_paper_prints_the_papers_numbers(tmp_path):
    """The paper's table, by hand. Original accuracy is over every question (3); enhanced over
    the first example of each question that has one, the originally failed question as itself
    (2: the Red Planet's first example and the boiling point question).
    - the target: original 2/3 (wrong on boiling), enhanced 0/2 (fooled; boiling wrong): drop
      66.7 points;
    - a robust model: original 2/3, enhanced 1/2 (right on the example): drop 16.7 points."""
    run, _ = _generate(tmp_path)
    REGISTRY["paper-world-robust"] = paper_robust
    SEEN.clear()
    models = ["scripted/paper-world-target", "scripted/paper-world-robust"]
    res = runner.invoke(
        app,
        ["evaluate", "--preset", "paper", "--run", str(run), "--models", *models, "--json"],
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["evaluations"][0]
    assert entry["settings"]["preset"] == "paper"
    assert entry["settings"]["samples"] == 1 and entry["settings"]["temperature"] == 0.0001
    results = entry["results"][models[0]]
    want = {models[0]: (2 / 3, 0.0), models[1]: (2 / 3, 1 / 2)}
    for model, (original, enhanced) in want.items():
        paper = results[model]["paper"]["overall"]
        assert (paper["n_original"], paper["n_enhanced"], paper["originally_failed"]) == (3, 2, 1)
        assert paper["original"] == pytest.approx(original)
        assert paper["enhanced"] == pytest.approx(enhanced)
        assert paper["drop"] == pytest.approx(original - enhanced)
    # One answer per item at 0.0001, and the extractor on every answer asked. The target's
    # answers to the originals and the example are the search's first samples, already paid
    # (the same requests): it is asked only the Red Planet question in its example's choice
    # order (the order control); the robust model is asked all five.
    assert len(SEEN["target"]) == 1 and len(SEEN["robust"]) == 5
    assert len(SEEN["extractor"]) == 6
    asked = SEEN["target"] + SEEN["robust"]
    assert all(r.temperature == 0.0001 and "['" in _user(r) for r in asked)
    res = runner.invoke(
        app, ["evaluate", "--preset", "paper", "--run", str(run), "--models", *models]
    )
    flat = " ".join(res.output.split())
    assert "The paper's numbers" in flat
    assert "66.7%" in flat and "50.0%" in flat and "16.7%" in flat
    html = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(run), "-o", str(html)]).exit_code == 0
    page = html.read_text()
    assert "paper" in page.lower() and "enhanced" in page.lower()
