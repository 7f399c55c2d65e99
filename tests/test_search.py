"""The search, driven by scripted models: each test fails on a known defect of the reference."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from cdvkit.data.question import Question
from cdvkit.models.client import RoleClient
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search import node as ns
from cdvkit.search.config import SearchConfig
from cdvkit.search.constraints import LLMJudge
from cdvkit.search.engine import Searcher, SearchLimits
from cdvkit.search.goal import TargetGoal
from cdvkit.search.node import Node
from cdvkit.search.proposers import LLMProposer, TemplateProposer
from cdvkit.search.strategies import BestFirst, make_strategy
from cdvkit.store import RunStore
from scripted_helpers import (
    MARK,
    SKY,
    judge_says,
    marking_proposer,
    oracle_responder,
    per_option,
    scripted,
)


def make_searcher(target, *, proposer=None, judge=None, samples=3, limits=None, store=None):
    tclient = RoleClient(target, "target", store=store)
    constraints = [LLMJudge(RoleClient(judge, "judge", store=store))] if judge else []
    prop = (
        LLMProposer(RoleClient(proposer, "proposer", store=store))
        if proposer
        else TemplateProposer()
    )
    return Searcher(
        proposer=prop,
        constraints=constraints,
        goal=TargetGoal(tclient, samples=samples, temperature=0.7, scoring="sample"),
        strategy_factory=lambda: make_strategy("best-first"),
        limits=limits or SearchLimits(),
        store=store,
    )


async def test_goal_is_measured_on_the_child_text_not_the_parent():
    target = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(target, proposer=scripted("prop", marking_proposer))
    result = await searcher.search(SKY)

    assert result.original_rate == 1.0
    assert result.examples, "a child the target fails must be found"
    for ex in result.examples:
        assert ex.rate == 0.0  # the reference would report the parent's rate, 1.0
        assert MARK in ex.question
    # The target saw every child's own text: the prompts it answered include the distractions.
    seen = [req.mcq.question for req, _ in target.calls]
    assert all(ex.question in seen for ex in result.examples)


async def test_judge_no_drops_the_child_and_saves_the_target_call():
    target = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(
        target,
        proposer=scripted("prop", marking_proposer),
        judge=scripted("judge", judge_says(changes=True)),
        limits=SearchLimits(max_expansions=3),
    )
    result = await searcher.search(SKY)
    assert result.examples == []
    children = [n for n in result.nodes if n.path != "r"]
    assert children and all(n.status == ns.REJECTED for n in children)
    assert all(n.verdicts["judge"]["passed"] is False for n in children)
    assert len(target.calls) == 1  # only the original question was ever sent to the target


async def test_judge_yes_keeps_the_child():
    target = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(
        target,
        proposer=scripted("prop", marking_proposer),
        judge=scripted("judge", judge_says(changes=False)),
    )
    result = await searcher.search(SKY)
    assert result.examples and all(e.verdicts["judge"]["passed"] for e in result.examples)


async def test_malformed_judge_reply_is_retried_then_drops():
    replies = iter(["not json", '{"changes_answer": false, "reason": "fine"}'] * 10)
    judge = scripted("judge", lambda req, i: next(replies))
    target = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(target, proposer=scripted("prop", marking_proposer), judge=judge)
    result = await searcher.search(SKY)
    assert result.examples, "a malformed verdict followed by a valid one must pass"

    bad = scripted("judge", lambda req, i: "I refuse to answer in JSON")
    target2 = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(target2, proposer=scripted("prop", marking_proposer), judge=bad)
    result = await searcher.search(SKY)
    assert result.examples == []
    child = next(n for n in result.nodes if n.path != "r")
    assert "no valid verdict" in child.verdicts["judge"]["reason"]


def test_priority_order_matches_the_formula():
    k, n = 2.0, 1.0
    specs = [(0.8, 2), (0.4, 3), (0.4, 2), (0.6, 1), (0.2, 5), (1.0, 2), (0.2, 4)]
    strategy = BestFirst(k, n)
    for i, (rate, depth) in enumerate(specs):
        strategy.push(
            Node(path=f"n{i}", depth=depth, question="", choices=("a", "b"), answer=0, score=rate)
        )
    popped = []
    while (node := strategy.pop()) is not None:
        popped.append((node.rate, node.depth))
    expected = sorted(specs, key=lambda s: -(math.exp(k / s[0]) * s[1] ** -n))
    assert popped == expected


async def test_max_good_stops_the_search():
    target = scripted("oracle", oracle_responder([SKY]))
    searcher = make_searcher(
        target,
        proposer=scripted("prop", marking_proposer),
        limits=SearchLimits(max_expansions=10, max_good=1),
    )
    result = await searcher.search(SKY)
    assert result.expansions == 1
    assert len(result.examples) >= 1


async def test_max_expansions_stops_the_search():
    # Never fooled: the search would go on for ever without the expansion budget.
    target = scripted("oracle", oracle_responder([SKY], fooled_at=99))
    searcher = make_searcher(
        target,
        proposer=scripted("prop", lambda req, i: f"{MARK} {len(req.messages[-1][1])}"),
        limits=SearchLimits(max_expansions=4, max_depth=10),
    )
    result = await searcher.search(SKY)
    assert result.expansions == 4
    assert result.examples == []
    assert len([n for n in result.nodes if n.path != "r"]) == 4 * 3


async def test_max_depth_limits_stacking():
    target = scripted("oracle", oracle_responder([SKY], fooled_at=99))
    searcher = make_searcher(
        target,
        proposer=scripted("prop", lambda req, i: f"{MARK} {len(req.messages[-1][1])}"),
        limits=SearchLimits(max_expansions=50, max_depth=2),
    )
    result = await searcher.search(SKY)
    assert max(n.depth for n in result.nodes) == 3  # root depth 1 plus two distractions


async def test_answer_outside_the_choices_lowers_the_rate():
    replies = ["Answer: A", "Answer: F", "Answer: A", "no idea at all", "Answer: A"]
    target = scripted("t", lambda req, i: replies[i % len(replies)])
    goal = TargetGoal(RoleClient(target, "target"), samples=5, scoring="sample")
    res = await goal.evaluate(Node.root(SKY))
    assert res.score == pytest.approx(3 / 5)  # the reference would drop F and report 3/3
    statuses = [a["status"] for a in res.answers]
    assert statuses == ["ok", "outside", "ok", "unparsed", "ok"]


async def test_extractor_reads_unparsable_answers():
    target = scripted("t", lambda req, i: "It is definitely the colour of the ocean.")
    extractor = scripted("x", lambda req, i: "A")
    goal = TargetGoal(
        RoleClient(target, "target"),
        samples=2,
        scoring="sample",
        extractor=RoleClient(extractor, "extractor"),
    )
    res = await goal.evaluate(Node.root(SKY))
    assert res.score == 1.0
    assert [a["status"] for a in res.answers] == ["extracted", "extracted"]


async def test_exact_scoring_uses_choice_probabilities():
    probs = {"calm": [0.9, 0.05, 0.03, 0.02], "fooled": [0.1, 0.7, 0.1, 0.1]}
    model = scripted(
        "p",
        lambda req, i: "",
        probs_fn=lambda msgs, mcq: probs["fooled" if MARK in mcq.question else "calm"],
    )
    goal = TargetGoal(RoleClient(model, "target"), scoring="auto", threshold=0.2)
    assert (await goal.evaluate(Node.root(SKY))).candidate is False
    node = Node(path="x", depth=2, question=f"{MARK} {SKY.question}", choices=SKY.choices, answer=0)
    res = await goal.evaluate(node)
    assert res.mode == "exact" and res.candidate and res.score == pytest.approx(0.1)
    assert model.calls == []  # no generation was paid for


async def test_already_failed_original_is_recorded_not_searched():
    target = scripted("t", lambda req, i: "Answer: B")
    searcher = make_searcher(target, proposer=scripted("prop", marking_proposer))
    result = await searcher.search(SKY)
    assert result.status == "original_failed"
    assert result.expansions == 0 and len(result.nodes) == 1


async def test_strategies_random_and_greedy():
    for name, expect_expansions in (("random", 1), ("greedy", None)):
        target = scripted("oracle", oracle_responder([SKY], fooled_at=99))
        searcher = make_searcher(
            target,
            proposer=scripted("prop", lambda req, i: f"{MARK} {len(req.messages[-1][1])}"),
            limits=SearchLimits(max_expansions=5, max_depth=10),
        )
        searcher.strategy_factory = lambda name=name: make_strategy(name)
        result = await searcher.search(SKY)
        if expect_expansions is not None:
            assert result.expansions == expect_expansions
        else:
            # Greedy only ever expands a child of the node it just expanded: a chain.
            expanded = sorted({n.parent_path for n in result.nodes if n.parent_path})
            for a, b in itertools.pairwise(expanded):
                assert b.startswith(a + ".")


async def test_duplicate_proposals_are_not_paid_twice():
    target = scripted("oracle", oracle_responder([SKY], fooled_at=99))
    same = scripted("prop", lambda req, i: f"{MARK} the same sentence.")
    searcher = make_searcher(target, proposer=same, limits=SearchLimits(max_expansions=1))
    # Same sentence for every wrong option, and placement/shuffle may coincide: any child whose
    # text repeats a sibling's is marked duplicate and gets no constraint or target call.
    result = await searcher.search(SKY)
    dups = [n for n in result.nodes if n.status == ns.DUPLICATE]
    sent = {req.mcq.question for req, _ in target.calls}
    assert len(sent) == len({n.question for n in result.nodes if n.status != ns.DUPLICATE})
    assert all(n.rate is None for n in dups)


async def test_run_search_writes_everything_to_the_store(tmp_path):
    qs = [
        SKY,
        Question("grass", "What color is fresh grass?", ("purple", "green", "black"), 1),
        Question("snow", "What color is fresh snow?", ("white", "blue", "orange"), 0),
    ]
    cfg = SearchConfig(
        target="scripted/oracle", proposer="scripted/prop", similarity_floor=0, samples=2
    )
    models = {
        "target": scripted("oracle", oracle_responder(qs)),
        "proposer": scripted("prop", marking_proposer),
    }
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None and outcome.errors == []
        s = summarize(store)
        assert s["questions"] == 3 and s["originally_correct"] == 3
        assert s["with_example"] == 3 and s["success_rate"] == 1.0
        assert s["examples"] == len(store.nodes(status="good"))
        assert s["calls"] == sum(r["calls"] for r in s["by_role"].values())
        first_calls = s["calls"]

    # Rerunning a finished run pays nothing.
    models = {
        "target": scripted("oracle", oracle_responder(qs)),
        "proposer": scripted("prop", marking_proposer),
    }
    with RunStore(tmp_path / "run") as store:
        for d in store.questions():
            store.set_question_status(d["id"], "pending")
        await run_search(cfg, store, models=models)
        assert summarize(store)["calls"] == first_calls
        assert models["target"].calls == [] and models["proposer"].calls == []


async def test_proposals_write_several_distractions_per_wrong_option_a_batch_call_a_round():
    target = scripted("oracle", oracle_responder([SKY], fooled_at=99))
    prop = scripted(
        "prop", lambda req, i: per_option(lambda wrong: f"{MARK}: talk {i} of {wrong}.")(req, i)
    )
    searcher = Searcher(
        proposer=LLMProposer(RoleClient(prop, "proposer"), batch=True),
        constraints=[],
        goal=TargetGoal(RoleClient(target, "target"), samples=1, temperature=0.7),
        strategy_factory=lambda: make_strategy("best-first"),
        limits=SearchLimits(max_expansions=1),
        proposals=2,
    )
    result = await searcher.search(SKY)
    children = [n for n in result.nodes if n.depth == 2]
    wrongs = len(SKY.choices) - 1
    # Two rounds of one sentence per wrong option: twice the children, each option aimed at
    # twice, the second round being the proposer's second sample (one batch call a round).
    assert [n.path for n in children] == [f"r.{k}" for k in range(2 * wrongs)]
    aimed = [n.target_option for n in children]
    assert sorted(aimed) == sorted(aimed[:wrongs] * 2)
    assert len(prop.calls) == 2
    assert len({n.distraction for n in children}) == 2 * wrongs


async def test_a_further_round_of_proposals_is_paid_only_while_examples_are_wanted():
    fooled_at_once = scripted("oracle", oracle_responder([SKY], fooled_at=1))
    prop = scripted(
        "prop", lambda req, i: per_option(lambda wrong: f"{MARK}: talk {i} of {wrong}.")(req, i)
    )

    def searcher(max_good: int) -> Searcher:
        return Searcher(
            proposer=LLMProposer(RoleClient(prop, "proposer"), batch=True),
            constraints=[],
            goal=TargetGoal(RoleClient(fooled_at_once, "target"), samples=1, temperature=0.7),
            strategy_factory=lambda: make_strategy("best-first"),
            limits=SearchLimits(max_expansions=1, max_good=max_good),
            proposals=3,
        )

    wrongs = len(SKY.choices) - 1
    # Every child fools: the first round gives 3 examples, enough for max_good 3 but not 4.
    few = await searcher(3).search(SKY)
    assert len(few.examples) == wrongs and len(prop.calls) == 1
    more = await searcher(wrongs + 1).search(SKY)
    assert len(more.examples) == 2 * wrongs and len(prop.calls) == 1 + 2


def test_node_states_are_one_enum_of_the_stored_names():
    from cdvkit.search import node as ns

    assert [s.value for s in ns.NodeState] == [
        "root", "open", "good", "rejected", "duplicate", "error",
    ]  # fmt: skip
    assert ns.GOOD is ns.NodeState.GOOD and ns.GOOD == "good"
    record = Node.root(SKY).to_record()
    assert record["status"] == "root" and json.dumps(record["status"]) == '"root"'
