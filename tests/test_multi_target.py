"""`cdv generate --target A --target B [--fool all|any|K]`: a search that fools several models.

Scripted targets, each fooled by its own mark: A by MARKX, B by MARKY, C by MARKZ. The scripted
proposer writes, for the wrong options green, red and yellow, a sentence carrying MARKX, MARKY
and MARKZ (each tagged with its depth, so no two nodes share a text). Every question's choices
are (blue, green, red, yellow), blue right, kept in that order, so a node's children are
``.0`` (MARKX), ``.1`` (MARKY) and ``.2`` (MARKZ), and which marks a node carries is its path.

The search's score of a node is the mean of the K lowest targets' accuracies (one sample each);
best-first pops the highest exp(2 / score) * depth**-1, ties in the order pushed. Hand-computed
trees (max 2 expansions unless said):

- fool all, A+B: r.0 (A fooled: 0.5), r.1 (B: 0.5), r.2 (none: 1.0) are open; r.0 is expanded
  (first pushed of the tie): r.0.1 (X then Y) fools both: the one example. With 3 expansions
  r.1 (depth 2 beats r.0.0's depth 3) gives r.1.0 too.
- fool any, A+B: r.0 and r.1 are examples at once; r.2 (score 1.0) is expanded: r.2.0 and r.2.1.
- fool 2 of 3, A+B+C: r.0, r.1, r.2 each fool one (0.5 each); r.0 is expanded: r.0.1 (X, Y)
  and r.0.2 (X, Z) fool two.
- a question C answers wrong undistracted ("hard for C"): with 2 of 3 only A and B count (C is
  never asked about its nodes), so r.0.2 (A only of the counted) is no example; with all it is
  originally failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import LETTERS
from cdvkit.models.base import MCQ, GenerateRequest
from cdvkit.models.scripted import PROBS_REGISTRY, REGISTRY
from cdvkit.search.config import SearchConfig
from cdvkit.search.goals_multi import required_targets
from cdvkit.store import RunStore
from scripted_helpers import wrong_options

pytestmark = pytest.mark.timeout(120)

CHOICES = ["blue", "green", "red", "yellow"]
MARKS = {"green": "MARKX", "red": "MARKY", "yellow": "MARKZ"}
HARD_FOR_C = "hard for C"
QUESTIONS = {
    "0": "Which colour is the clear daytime sky?",
    "1": f"Which colour is the open ocean on a sunny day ({HARD_FOR_C})?",
}


def write_data(path: Path, ids: tuple[str, ...] = ("0",)) -> Path:
    rows = [{"id": i, "question": QUESTIONS[i], "choices": CHOICES, "answer": "blue"} for i in ids]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fooled_by(mark: str, hard: str | None = None):
    """A target that answers green when the question carries ``mark`` (or ``hard``), else blue."""

    def respond(req: GenerateRequest, sample: int) -> str:
        mcq = req.mcq
        assert mcq is not None
        wrong = mark in mcq.question or (hard is not None and hard in mcq.question)
        pick = "green" if wrong else "blue"
        return f"Thinking it over. Answer: {LETTERS[mcq.choices.index(pick)]}"

    return respond


def probs_fooled_by(mark: str):
    """Choice probabilities of the same target (its scoring from log-probs)."""

    def probs(messages: Any, mcq: MCQ) -> list[float]:
        wrong = mark in mcq.question
        return [0.1, 0.8, 0.05, 0.05] if wrong else [0.85, 0.05, 0.05, 0.05]

    return probs


def proposer(req: GenerateRequest, sample: int) -> str:
    depth = req.messages[-1][1].count("MARK")  # sentences the node already carries
    options = wrong_options(req)

    def sentence(wrong: str) -> str:
        return f"{MARKS[wrong]}{depth}: people keep saying {wrong} here."

    if "" in options:
        return sentence(options[""])
    return json.dumps({letter: sentence(text) for letter, text in options.items()})


@pytest.fixture(autouse=True)
def scripted_models() -> None:
    REGISTRY["mt-a"] = fooled_by("MARKX")
    REGISTRY["mt-b"] = fooled_by("MARKY")
    REGISTRY["mt-c"] = fooled_by("MARKZ", hard=HARD_FOR_C)
    REGISTRY["mt-prop"] = proposer
    REGISTRY["mt-pa"] = fooled_by("MARKX")
    PROBS_REGISTRY["mt-pa"] = probs_fooled_by("MARKX")
    REGISTRY["mt-pb"] = fooled_by("MARKY")
    PROBS_REGISTRY["mt-pb"] = probs_fooled_by("MARKY")


def generate(tmp_path: Path, run: str, targets: list[str], *extra: str, data: Path | None = None):
    data = data or write_data(tmp_path / "q.jsonl")
    args = ["generate", "--data", str(data), "--proposer", "scripted/mt-prop",
            "--similarity-floor", "0", "--samples", "1", "--max-expansions", "2",
            "--run-dir", str(tmp_path / run), "--json", "--seed", "1", *extra]  # fmt: skip
    for t in targets:
        args += ["--target", f"scripted/{t}"]
    return CliRunner().invoke(app, args)


def examples(run_dir: Path) -> dict[str, list[str]]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        out: dict[str, list[str]] = {}
        for e in store.examples():
            out.setdefault(str(e["question_id"]), []).append(e["path"])
        return {k: sorted(v) for k, v in out.items()}


def nodes(run_dir: Path) -> dict[str, dict[str, Any]]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return {f"{n['question_id']}:{n['path']}": n for n in store.nodes()}


def test_fool_all_needs_every_target_fooled(tmp_path: Path) -> None:
    res = generate(tmp_path, "all", ["mt-a", "mt-b"], "--fool", "all")
    assert res.exit_code == 0, res.output
    assert examples(tmp_path / "all") == {"0": ["r.0.1"]}
    tree = nodes(tmp_path / "all")
    # A alone (r.0) or B alone (r.1) is no example; the score is the mean of both accuracies.
    assert tree["0:r.0"]["status"] == "open" and tree["0:r.0"]["rate"] == 0.5
    assert tree["0:r.2"]["rate"] == 1.0
    good = tree["0:r.0.1"]["outputs"]
    assert good["required"] == 2
    verdicts = good["verify"]["targets"]
    assert set(verdicts) == {"scripted/mt-a", "scripted/mt-b"}
    assert not any(v["correct"] for v in verdicts.values())
    assert good["targets"]["scripted/mt-b"]["role"] == "target2"
    summary = json.loads(res.output)
    # Each target's calls are a line of its own: 1 root + 6 children each.
    assert summary["by_role"]["target"]["calls"] == 7
    assert summary["by_role"]["target2"]["calls"] == 7

    more = generate(tmp_path, "all3", ["mt-a", "mt-b"], "--max-expansions", "3")
    assert more.exit_code == 0, more.output
    assert examples(tmp_path / "all3") == {"0": ["r.0.1", "r.1.0"]}


def test_fool_any_needs_one_target_fooled(tmp_path: Path) -> None:
    res = generate(tmp_path, "any", ["mt-a", "mt-b"], "--fool", "any")
    assert res.exit_code == 0, res.output
    assert examples(tmp_path / "any") == {"0": ["r.0", "r.1", "r.2.0", "r.2.1"]}
    tree = nodes(tmp_path / "any")
    # Only the target whose own score said fooled is confirmed (free here: sampled scoring).
    assert set(tree["0:r.0"]["outputs"]["verify"]["targets"]) == {"scripted/mt-a"}


def test_two_of_three_and_targets_wrong_on_the_original(tmp_path: Path) -> None:
    data = write_data(tmp_path / "q.jsonl", ("0", "1"))
    res = generate(tmp_path, "k2", ["mt-a", "mt-b", "mt-c"], "--fool", "2", data=data)
    assert res.exit_code == 0, res.output
    assert examples(tmp_path / "k2") == {"0": ["r.0.1", "r.0.2"], "1": ["r.0.1"]}
    tree = nodes(tmp_path / "k2")
    root = tree["1:r"]["outputs"]
    assert {n: v["correct"] for n, v in root["verify"]["targets"].items()} == {
        "scripted/mt-a": True,
        "scripted/mt-b": True,
        "scripted/mt-c": False,
    }
    # C answered question 1 wrong undistracted: it is never asked about that question's nodes.
    child = tree["1:r.0.2"]["outputs"]["targets"]
    assert child["scripted/mt-c"] == {"role": "target3", "counted": False}
    assert tree["1:r.0.2"]["status"] == "open"
    summary = json.loads(res.output)
    assert summary["by_role"]["target3"]["calls"] == 2 + 6  # both roots, question 0's children
    assert summary["originally_correct"] == 2

    strict = generate(tmp_path, "all3", ["mt-a", "mt-b", "mt-c"], data=data)
    assert strict.exit_code == 0, strict.output
    summary = json.loads(strict.output)
    assert summary["originally_failed"] == 1 and summary["originally_correct"] == 1


def test_each_target_confirms_under_the_protocol_on_its_own_line(tmp_path: Path) -> None:
    """Scored from log-probs, confirmed by sampled answers: each target's confirmations are
    paid under its own role (verify, verify2)."""
    res = generate(tmp_path, "exact", ["mt-pa", "mt-pb"])
    assert res.exit_code == 0, res.output
    assert examples(tmp_path / "exact") == {"0": ["r.0.1"]}
    by_role = json.loads(res.output)["by_role"]
    # The original is asked under the protocol first (both), then the one candidate (both).
    assert by_role["verify"]["calls"] == 2 and by_role["verify2"]["calls"] == 2
    assert by_role["target"]["calls"] == 7 and by_role["target2"]["calls"] == 7


def test_max_calls_bounds_every_target_and_a_rerun_pays_nothing_twice(tmp_path: Path) -> None:
    data = write_data(tmp_path / "q.jsonl", ("0", "1"))
    ref = generate(tmp_path, "ref", ["mt-a", "mt-b"], "--fool", "any", data=data)
    assert ref.exit_code == 0, ref.output
    ref_calls = json.loads(ref.output)["calls"]
    assert ref_calls > 12

    stopped = generate(tmp_path, "run", ["mt-a", "mt-b"], "--fool", "any", "--max-calls", "9",
                       "--concurrency", "1", data=data)  # fmt: skip
    assert stopped.exit_code == 3, stopped.output
    with RunStore(tmp_path / "run", lock=False, readonly=True) as store:
        by_role = store.usage_by_role("search")
        paid = store.paid_calls("search")
    assert paid <= 9
    assert by_role["target"]["calls"] > 0 and by_role["target2"]["calls"] > 0

    resumed = generate(tmp_path, "run", ["mt-a", "mt-b"], "--fool", "any", data=data)
    assert resumed.exit_code == 0, resumed.output
    assert examples(tmp_path / "run") == examples(tmp_path / "ref")
    assert json.loads(resumed.output)["calls"] == ref_calls  # nothing was paid twice


def test_resumed_with_other_targets_or_fool_is_refused(tmp_path: Path) -> None:
    assert generate(tmp_path, "run", ["mt-a", "mt-b"]).exit_code == 0
    other = generate(tmp_path, "run", ["mt-a", "mt-b"], "--fool", "any")
    assert other.exit_code == 2 and "fool" in other.output
    fewer = generate(tmp_path, "run", ["mt-a"])
    assert fewer.exit_code == 2 and "target" in fewer.output


def test_report_and_show_give_each_targets_verdict(tmp_path: Path) -> None:
    assert generate(tmp_path, "run", ["mt-a", "mt-b"]).exit_code == 0
    runner = CliRunner()
    shown = runner.invoke(app, ["show", str(tmp_path / "run"), "--json"])
    assert shown.exit_code == 0, shown.output
    entry = json.loads(shown.output)[0]
    assert entry["path"] == "r.0.1"
    assert [(t["target"], t["role"], t["verdict"]) for t in entry["targets"]] == [
        ("scripted/mt-a", "target", "fooled"),
        ("scripted/mt-b", "target2", "fooled"),
    ]
    roots = json.loads(runner.invoke(app, ["show", str(tmp_path / "run"), "--status", "root",
                                           "--json"]).output)  # fmt: skip
    assert {t["verdict"] for t in roots[0]["targets"]} == {"right"}
    text = runner.invoke(app, ["show", str(tmp_path / "run")], terminal_width=100)
    assert "scripted/mt-b: fooled" in text.output

    out = tmp_path / "report.md"
    rep = runner.invoke(app, ["report", str(tmp_path / "run"), "-o", str(out), "--format", "md"])
    assert rep.exit_code == 0, rep.output
    md = out.read_text()
    assert "scripted/mt-a + scripted/mt-b (fool all)" in md
    assert "- Targets: scripted/mt-a: fooled; scripted/mt-b: fooled" in md
    html = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(tmp_path / "run"), "-o", str(html)]).exit_code == 0
    assert "scripted/mt-a: fooled; scripted/mt-b: fooled" in html.read_text()


def test_settings_one_target_stays_a_string_and_fool_is_checked() -> None:
    one = SearchConfig.from_sources(target=["scripted/mt-a"])
    assert one.target == "scripted/mt-a" and one.targets == ["scripted/mt-a"]
    assert one.differences({"target": "scripted/mt-a"}) == []  # a run stored before targets
    two = SearchConfig.from_sources(target=["scripted/mt-a", "scripted/mt-b"], fool=2)
    assert two.target == ["scripted/mt-a", "scripted/mt-b"] and two.fool == "2"
    with pytest.raises(ValueError, match="at most 2 \\(the targets given\\), not 3"):
        SearchConfig.from_sources(target=["scripted/mt-a", "scripted/mt-b"], fool="3")
    with pytest.raises(ValueError, match="given twice"):
        SearchConfig.from_sources(target=["scripted/mt-a", "scripted/mt-a"])
    with pytest.raises(ValueError, match="all, any or a whole number"):
        SearchConfig.from_sources(target=["scripted/mt-a", "scripted/mt-b"], fool="most")
    # [roles.target2] reaches the second target; a role for a third that is not there is refused.
    SearchConfig.from_sources(
        target=["scripted/mt-a", "scripted/mt-b"], roles={"target2": {"concurrency": 2}}
    )
    with pytest.raises(ValueError, match="unknown role 'target3'"):
        SearchConfig.from_sources(
            target=["scripted/mt-a", "scripted/mt-b"], roles={"target3": {"concurrency": 2}}
        )
    assert [required_targets(f, 3) for f in ("all", "any", "2")] == [3, 1, 2]


def test_forecast_counts_every_target() -> None:
    from cdvkit.api import estimate

    one = estimate("sample", target="scripted/mt-a", limit=3, proposer="scripted/mt-prop")
    two = estimate(
        "sample", target=["scripted/mt-a", "scripted/mt-b"], limit=3, proposer="scripted/mt-prop"
    )
    assert two.roles["target2"].calls == one.roles["target"].calls
    assert two.calls[1] > one.calls[1]


@pytest.mark.parametrize(("fool", "marked"), [("all", True), ("2", True), ("any", False)])
def test_evaluation_names_a_multi_target_set_and_marks_by_construction_only_for_all(
    tmp_path: Path, fool: str, marked: bool
) -> None:
    from cdvkit.evaluation import from_run_dir

    runner = CliRunner()
    res = generate(tmp_path, "run", ["mt-a", "mt-b"], "--fool", fool)
    assert res.exit_code == 0, res.output
    es = from_run_dir(tmp_path / "run")
    assert es.label == "scripted/mt-a + scripted/mt-b"
    # Every example fools both only when both had to be fooled; with any, one may be right.
    assert es.targets == (("scripted/mt-a", "scripted/mt-b") if marked else ())
    ev = runner.invoke(
        app,
        ["evaluate", "--run", str(tmp_path / "run"), "--models", "scripted/mt-a",
         "--bootstrap", "0", "--json"],
    )  # fmt: skip
    assert ev.exit_code == 0, ev.output
    (entry,) = json.loads(ev.stdout)["evaluations"]
    assert "['" not in json.dumps(entry)  # no set is named by a Python list
    text = runner.invoke(
        app, ["evaluate", "--run", str(tmp_path / "run"), "--models", "scripted/mt-a",
              "--bootstrap", "0"],
    )  # fmt: skip
    assert ("by construction" in text.stdout) == marked
