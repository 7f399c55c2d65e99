"""Free-form answers under the protocol: the shape's reader, then the extractor, then the
grader; the wrong answers the search aims at; the leak check; refusing exact scoring."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import NO_CHOICE, SHORT_ANSWER, Question
from cdvkit.models.client import RoleClient
from cdvkit.protocol import Asker, Protocol
from cdvkit.search.constraints import LeakCheck
from cdvkit.search.engine import Searcher
from cdvkit.search.goal import TargetGoal
from cdvkit.search.node import Node
from cdvkit.search.proposers import ProposalContext, TemplateProposer, near_misses
from cdvkit.search.strategies import make_strategy
from cdvkit.tasks import AnswerKey
from freeform_helpers import FREE_QUESTIONS, numeric, write_free_questions
from scripted_helpers import scripted

EGGS = FREE_QUESTIONS[0]  # reference "13"
JFK = Question(
    "jfk",
    "Which US president was shot in Dallas in 1963?",
    (),
    NO_CHOICE,
    task=SHORT_ANSWER,
    references=("John F. Kennedy", "John Kennedy"),
)


def client(name: str, responder) -> RoleClient:
    return RoleClient(scripted(name, responder), name)


def replies(*texts: str):
    return lambda req, i: texts[i % len(texts)]


async def ask(q: Question, target, *, extractor=None, grader=None, samples: int = 3):
    asker = Asker(
        client("t", target),
        Protocol(samples=samples),
        extractor=client("x", extractor) if extractor else None,
        grader=client("g", grader) if grader else None,
    )
    return await asker.ask(q.question, q.choices, q.answer, AnswerKey.of(q))


async def test_numeric_replies_are_read_and_compared_as_numbers():
    out = await ask(EGGS, replies("Answer: 13", "so 13.0 eggs\n#### 13", "Answer: $14"))
    assert [a.answer for a in out.answers] == ["13", "13", "$14"]
    assert [a.correct for a in out.answers] == [True, True, False]
    assert out.correct and out.accuracy == pytest.approx(2 / 3)


async def test_all_wrong_is_fooled_and_unreadable_counts_as_wrong():
    out = await ask(EGGS, replies("Answer: 12", "I am not sure how to count these."))
    assert out.fooled and not any(a.correct for a in out.answers)
    assert out.answers[1].status == "unparsed" and out.answers[1].answer is None


async def test_the_extractor_reads_what_the_reader_cannot():
    seen = []

    def extractor(req, i):
        seen.append(req.messages[-1][1])
        return "13"

    out = await ask(EGGS, replies("It comes to thirteen in the end."), extractor=extractor)
    assert out.correct and out.answers[0].status == "extracted"
    assert out.answers[0].answer == "13"
    # One extraction for identical unreadable replies (sample 0 shared).
    assert len(seen) == 1 and "thirteen" in seen[0]


async def test_the_grader_decides_short_answers_that_match_no_alias():
    graded = []

    def grader(req, i):
        graded.append(req.messages[-1][1])
        return json.dumps({"correct": "JFK" in req.messages[-1][1], "reason": "alias"})

    out = await ask(JFK, replies("Answer: JFK", "Answer: Lyndon Johnson"), grader=grader)
    assert [a.correct for a in out.answers] == [True, False, True]
    assert [a.status for a in out.answers][:2] == ["graded", "graded"]
    assert "Reference answer: John F. Kennedy" in graded[0]


async def test_a_matching_alias_needs_no_grader_and_a_bad_verdict_changes_nothing():
    calls = []

    def grader(req, i):
        calls.append(1)
        return "I think it is right"  # no JSON: no verdict

    out = await ask(JFK, replies("Answer: John Kennedy", "Answer: JFK"), grader=grader)
    assert [a.correct for a in out.answers] == [True, False, True]
    assert out.answers[1].status == "ok"  # left as read: wrong, never a guess
    assert len(calls) == 1  # only the reply matching no alias was graded


async def test_refusals_go_to_no_extractor_nor_grader():
    def fail(req, i):
        raise AssertionError("a refusal is an answer: nothing to extract or grade")

    out = await ask(JFK, replies("I don't know."), extractor=fail, grader=fail, samples=1)
    assert out.fooled and out.answers[0].status == "refused"


async def test_exact_scoring_is_refused_for_free_form_questions():
    asker = Asker(client("t", replies("Answer: 13")), Protocol(scoring="exact"))
    with pytest.raises(ValueError, match="no choices to score exactly"):
        await asker.ask(EGGS.question, (), NO_CHOICE, AnswerKey.of(EGGS))


def test_cli_refuses_exact_protocol_on_numeric_data_in_one_line(tmp_path):
    data = write_free_questions(tmp_path / "math.jsonl")
    res = CliRunner().invoke(
        app,
        ["generate", "--data", str(data), "--protocol", "exact", "--run-dir", str(tmp_path / "r")],
    )
    assert res.exit_code == 2, res.output
    assert "no choices to score exactly" in res.output
    assert not (tmp_path / "r").exists()


# --- the wrong answers the search aims at ---------------------------------------------------------


class Recorder:
    """A proposer that records the wrong answers it is asked to push and suggests others."""

    name = "rec"

    def __init__(self, suggest: list[str]) -> None:
        self.suggest = suggest
        self.pushed: list[list[str]] = []

    async def wrong_answers(self, ctx: ProposalContext, k: int) -> list[str]:
        return list(self.suggest)

    async def propose(self, ctx: ProposalContext) -> str:
        if not self.pushed or self.pushed[-1] != list(ctx.wrongs):
            self.pushed.append(list(ctx.wrongs))
        return f"Someone mentioned {ctx.wrong} today."


async def search_with(target, proposer, q: Question = EGGS, wrong_answers: int = 3):
    goal = TargetGoal(client("t", target), scoring="sample", samples=5)
    searcher = Searcher(
        proposer=proposer,
        constraints=[LeakCheck()],
        goal=goal,
        strategy_factory=lambda: make_strategy("best-first"),
        wrong_answers=wrong_answers,
    )
    from cdvkit.search.engine import SearchLimits

    searcher.limits = SearchLimits(max_expansions=1, max_good=10, max_depth=3)
    return await searcher.search(q)


async def test_the_targets_own_wrong_answers_come_first_most_frequent_first():
    # Root answers: right 3 times, 12 once, "$15" once ... all distinct wrong answers counted.
    root = replies("Answer: 13", "Answer: 15", "Answer: 13", "Answer: $15", "Answer: 12")
    proposer = Recorder(["13", "14", "15.0", "16"])
    await search_with(root, proposer)
    # 15 twice (as "15" and "$15": one answer), then 12; the proposer fills the last place with
    # an answer not already chosen and not right ("13" and "15.0" are skipped).
    assert proposer.pushed[0] == ["15", "12", "14"]


async def test_a_node_the_target_always_gets_right_is_aimed_at_suggested_answers():
    proposer = Recorder(["13", "20", "20.00", "21"])
    result = await search_with(replies("Answer: 13"), proposer, wrong_answers=2)
    assert proposer.pushed[0] == ["20", "21"]
    assert [c.target_option for c in result.nodes[1:]] == ["20", "21"]
    assert all(c.choices == () and c.task == "numeric" for c in result.nodes)


def test_near_misses_are_wrong_and_plausible():
    rng = random.Random(0)
    got = near_misses(EGGS, 5, rng)
    assert len(got) == 5 and "13" not in got and all(float(x) >= 0 for x in got)
    assert near_misses(JFK, 3, rng) == []  # short answers need a model to invent
    assert "0" not in near_misses(numeric("z", "What is 1 - 1?", "0"), 5, rng)


async def test_template_proposer_offers_near_misses_offline():
    node = Node.root(EGGS)
    ctx = ProposalContext(EGGS, node, NO_CHOICE, random.Random(1))
    wrong = await TemplateProposer().wrong_answers(ctx, 3)
    assert len(wrong) == 3 and all(not AnswerKey.of(EGGS).is_right(w) for w in wrong)


@pytest.mark.parametrize(
    ("distraction", "leaks"),
    [
        ("My neighbour keeps 13 hens.", True),
        ("My neighbour keeps 13.0 hens.", True),
        ("My neighbour keeps 130 hens.", False),
        ("My neighbour keeps 14 hens.", False),
    ],
)
async def test_the_leak_check_reads_numbers_as_numbers(distraction, leaks):
    root = Node.root(EGGS)
    child = Node.root(EGGS)
    child.distraction = distraction
    verdict = await LeakCheck().check(EGGS, root, child)
    assert verdict.passed is not leaks


async def test_the_leak_check_knows_every_alias_of_a_short_answer():
    root, child = Node.root(JFK), Node.root(JFK)
    child.distraction = "A documentary about John Kennedy aired last night."
    assert not (await LeakCheck().check(JFK, root, child)).passed


def test_a_target_that_only_scores_choices_is_refused_for_free_form_data(tmp_path):
    data = write_free_questions(tmp_path / "math.jsonl")
    res = CliRunner().invoke(
        app, ["generate", "--data", str(data), "--run-dir", str(tmp_path / "r")]
    )  # the offline default target, an embedding model
    assert res.exit_code == 2, res.output
    assert "only scores choices, so it cannot answer numeric questions" in res.output
    assert not (tmp_path / "r").exists()
