"""Presets and the goal's cost options: the reference call pattern, sequential, judge_last."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from cdvkit.data.question import Question
from cdvkit.models.base import GenerateRequest
from cdvkit.models.budget import Budget
from cdvkit.models.client import RoleClient
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search import node as ns
from cdvkit.search.build import build_roles, build_searcher
from cdvkit.search.config import SearchConfig
from cdvkit.search.goal import TargetGoal
from cdvkit.search.node import Node
from cdvkit.search.preset import PRESETS, apply_preset
from cdvkit.store import RunStore
from scripted_helpers import MARK, SKY, judge_says, marking_proposer, oracle_responder, scripted


def letter_reader(req: GenerateRequest, sample: int) -> str:
    """An extractor that reads the letter after 'Answer:' in the response it is shown."""
    shown = req.messages[-1][1].split("<<<", 1)[1]
    m = re.search(r"Answer: ([A-Z])", shown)
    return m.group(1) if m else "NONE"


def extractor_question(req: GenerateRequest) -> str:
    # The extractor prompt starts with the node's question, rendered before its choices.
    return req.messages[-1][1].split("\n\n", 1)[0]


def reference_searcher(models: dict, **overrides):
    cfg = apply_preset(
        SearchConfig(
            target="scripted/t",
            proposer="scripted/p",
            extractor="scripted/x",
            similarity_floor=0,
            **overrides,
        ),
        "reference",
    )
    roles = build_roles(cfg, None, Budget(), models)
    return cfg, build_searcher(cfg, roles, None)


async def test_reference_preset_pays_n_samples_and_n_extractions_per_child():
    models = {
        "target": scripted("t", oracle_responder([SKY], fooled_at=2)),
        "proposer": scripted("p", marking_proposer),
        "extractor": scripted("x", letter_reader),
    }
    cfg, searcher = reference_searcher(models)
    assert cfg.samples == 5 and cfg.always_extract and not cfg.batch_samples
    result = await searcher.search(SKY)

    evaluated = [n for n in result.nodes if n.rate is not None]
    assert len(evaluated) > 1 + 3, "the root and more than one expansion were measured"
    # Every node measured, root and children alike: n requests of one sample each, samples
    # 0..n-1, on the node's own text, and one extractor call per answer although every answer
    # parses and all five are identical (the reference never reuses an extraction).
    by_text: dict[str, list[int]] = {}
    for req, n in models["target"].calls:
        assert n == 1
        by_text.setdefault(req.mcq.question, []).append(req.first_sample)
    assert set(by_text) == {n.question for n in evaluated}
    assert all(sorted(s) == [0, 1, 2, 3, 4] for s in by_text.values())
    extractions = Counter(extractor_question(req) for req, _ in models["extractor"].calls)
    assert set(extractions) == {n.question for n in evaluated}
    assert set(extractions.values()) == {5}
    # The extractor's reading is used: answers are marked as extracted only when they differ.
    assert all(a["status"] == "ok" for n in evaluated for a in n.outputs["answers"])
    # Children of depth 3 carry two marks: the oracle fails them, so examples were found there.
    assert result.examples and all(e.rate == 0.0 and e.depth == 3 for e in result.examples)


async def test_reference_extractor_overrides_the_local_parse():
    # The target says B in its text but the extractor reads it as A: the extractor wins.
    models = {
        "target": scripted("t", lambda req, i: "Answer: B"),
        "proposer": scripted("p", marking_proposer),
        "extractor": scripted("x", lambda req, i: "A"),
    }
    _, searcher = reference_searcher(models)
    res = await searcher.goal.evaluate(Node.root(SKY))
    assert res.score == 1.0
    assert [a["status"] for a in res.answers] == ["extracted"] * 5


async def test_default_goal_extracts_only_unparsable_replies_once_each():
    replies = ["Answer: A", "it is the sky colour", "Answer: A", "it is the sky colour", "A"]
    target = scripted("t", lambda req, i: replies[i])
    extractor = scripted("x", lambda req, i: "A")
    goal = TargetGoal(
        RoleClient(target, "target"),
        samples=5,
        scoring="sample",
        extractor=RoleClient(extractor, "extractor"),
    )
    res = await goal.evaluate(Node.root(SKY))
    assert res.score == 1.0
    assert len(target.calls) == 1 and target.calls[0][1] == 5  # one request with n=5
    assert len(extractor.calls) == 1  # two identical unreadable replies, one paid extraction
    assert [a["status"] for a in res.answers] == ["ok", "extracted", "ok", "extracted", "ok"]


def sequence_responder(per_text: dict[str, list[str]]):
    def respond(req: GenerateRequest, sample: int) -> str:
        return per_text[req.mcq.question][sample]

    return respond


def three_nodes():
    easy = Node.root(SKY)
    hard = Node(
        path="r.0", depth=2, question=f"{MARK} {SKY.question}", choices=SKY.choices, answer=0
    )
    late = Node(
        path="r.1", depth=2, question=f"{SKY.question} {MARK}", choices=SKY.choices, answer=0
    )
    target = scripted(
        "t",
        sequence_responder(
            {
                easy.question: ["Answer: A"] * 5,
                hard.question: ["Answer: B"] * 5,
                late.question: ["Answer: B", "Answer: C", "Answer: A", "Answer: A", "Answer: A"],
            }
        ),
    )
    return easy, hard, late, target


async def test_sequential_sampling_stops_at_the_first_correct_answer():
    easy, hard, late, target = three_nodes()
    goal = TargetGoal(
        RoleClient(target, "target"),
        samples=5,
        scoring="sample",
        sequential=True,
        batch_samples=False,
    )
    res = await goal.evaluate(easy)
    assert [(r.first_sample, n) for r, n in target.calls] == [(0, 1)]
    assert not res.candidate and len(res.answers) == 1
    assert res.score == pytest.approx(2 / 3)  # posterior mean (1 + 1) / (1 + 2), for priority

    target.calls.clear()
    res = await goal.evaluate(hard)  # a failing child still gets all n samples
    assert [(r.first_sample, n) for r, n in target.calls] == [(i, 1) for i in range(5)]
    assert res.candidate and res.score == 0.0 and len(res.answers) == 5

    target.calls.clear()
    res = await goal.evaluate(late)
    assert [(r.first_sample, n) for r, n in target.calls] == [(0, 1), (1, 1), (2, 1)]
    assert not res.candidate and res.score == pytest.approx(2 / 5)  # ranks above the easy node


async def test_sequential_with_batching_sends_the_rest_in_one_request():
    easy, hard, late, target = three_nodes()
    goal = TargetGoal(RoleClient(target, "target"), samples=5, scoring="sample", sequential=True)
    res = await goal.evaluate(easy)
    assert [(r.first_sample, n) for r, n in target.calls] == [(0, 1)]
    assert not res.candidate and res.score == pytest.approx(2 / 3)

    target.calls.clear()
    res = await goal.evaluate(hard)
    assert [(r.first_sample, n) for r, n in target.calls] == [(0, 1), (1, 4)]
    assert res.candidate and res.score == 0.0 and len(res.answers) == 5

    target.calls.clear()
    res = await goal.evaluate(late)
    assert [(r.first_sample, n) for r, n in target.calls] == [(0, 1), (1, 4)]
    assert not res.candidate and res.score == pytest.approx((3 + 1) / (5 + 2))


async def test_sequential_samples_are_the_batched_samples():
    # Sample i is keyed by its index, so a sequential run reuses a batched run's cache and agrees.
    target = scripted("t", lambda req, i: ["Answer: B", "Answer: A"][i % 2])
    client = RoleClient(target, "target")
    batched = await TargetGoal(client, samples=5, scoring="sample").evaluate(Node.root(SKY))
    assert batched.score == pytest.approx(2 / 5)
    calls = len(target.calls)
    seq = await TargetGoal(client, samples=5, scoring="sample", sequential=True).evaluate(
        Node.root(SKY)
    )
    assert len(target.calls) == calls  # every sample came from the cache
    assert [a["choice"] for a in seq.answers] == [a["choice"] for a in batched.answers]
    assert seq.score == pytest.approx((2 + 1) / (5 + 2))


async def test_judge_last_asks_the_judge_only_about_failed_children():
    judge = scripted("j", judge_says(changes=False))
    models = {
        "target": scripted("t", oracle_responder([SKY], fooled_at=2)),
        "proposer": scripted("p", marking_proposer),
        "judge": judge,
    }
    cfg = SearchConfig.from_sources(
        target="scripted/t",
        proposer="scripted/p",
        judge="scripted/j",
        similarity_floor=0,
        preset="efficient",
    )
    assert cfg.judge_last and not cfg.sequential
    searcher = build_searcher(cfg, build_roles(cfg, None, Budget(), models), None)
    result = await searcher.search(SKY)

    judged = [
        req.messages[-1][1].split("Question with added context:\n")[1].split("\n\nDoes")[0]
        for req, _ in judge.calls
    ]
    good = [n for n in result.nodes if n.status == ns.GOOD]
    expanded = {n.parent_path for n in result.nodes if n.parent_path not in (None, "r")}
    assert good and expanded
    # Asked exactly about the examples and the nodes expanded, each once.
    assert sorted(judged) == sorted(
        n.question for n in result.nodes if n in good or n.path in expanded
    )
    idle = [n for n in result.nodes if n.status == ns.OPEN and n.path not in expanded]
    assert idle and all(n.verdicts["judge"]["passed"] is None for n in idle)
    assert all(n.verdicts["judge"]["passed"] is True for n in good)


async def test_judge_last_never_expands_an_invalid_node():
    proposer = scripted("p", marking_proposer)
    models = {
        "target": scripted("t", oracle_responder([SKY], fooled_at=2)),
        "proposer": proposer,
        "judge": scripted("j", judge_says(changes=True)),
    }
    cfg = SearchConfig.from_sources(
        target="scripted/t",
        proposer="scripted/p",
        judge="scripted/j",
        similarity_floor=0,
        judge_last=True,
    )
    searcher = build_searcher(cfg, build_roles(cfg, None, Budget(), models), None)
    result = await searcher.search(SKY)
    children = [n for n in result.nodes if n.path != "r"]
    # One expansion (the root): one batched proposer call for its three wrong options.
    assert result.expansions == 1 and len(proposer.calls) == 1
    assert len(children) == 3 and all(n.depth == 2 for n in children)
    assert all(n.status == ns.REJECTED and n.verdicts["judge"]["passed"] is False for n in children)


async def test_judge_last_rejection_drops_the_example():
    models = {
        "target": scripted("t", oracle_responder([SKY], fooled_at=1)),
        "proposer": scripted("p", marking_proposer),
        "judge": scripted("j", judge_says(changes=True)),
    }
    cfg = SearchConfig(
        target="scripted/t", proposer="scripted/p", judge="scripted/j", similarity_floor=0
    )
    cfg = apply_preset(cfg, "efficient")
    searcher = build_searcher(cfg, build_roles(cfg, None, Budget(), models), None)
    result = await searcher.search(SKY)
    assert result.examples == []
    children = [n for n in result.nodes if n.path != "r"]
    assert children and all(n.status == ns.REJECTED and n.rate == 0.0 for n in children)


def test_preset_precedence_and_validation(tmp_path):
    cfg = SearchConfig.from_sources(preset="reference", samples=3)
    assert cfg.samples == 3  # the command line beats the preset
    assert cfg.always_extract and not cfg.batch_samples and cfg.scoring == "sample"
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "reference"\nmax_good = 1\n')
    cfg = SearchConfig.from_sources(toml, max_expansions=4)
    assert (cfg.max_good, cfg.max_expansions, cfg.samples) == (1, 4, 5)
    # apply_preset overrides everything the preset names.
    assert apply_preset(SearchConfig(samples=2), "reference").samples == 5
    assert SearchConfig().preset is None and not SearchConfig().always_extract
    with pytest.raises(ValueError, match=r"preset must be one of .*, not .fastest."):
        SearchConfig.from_sources(preset="fastest")
    assert set(PRESETS) == {"reference", "efficient", "paper"}


async def test_reference_run_costs_by_role(tmp_path):
    qs = [SKY, Question("snow", "What color is fresh snow?", ("white", "blue", "orange"), 0)]
    models = {
        "target": scripted("t", oracle_responder(qs, fooled_at=1)),
        "proposer": scripted("p", marking_proposer),
        "extractor": scripted("x", letter_reader),
    }
    cfg = SearchConfig.from_sources(
        preset="reference",
        target="scripted/t",
        proposer="scripted/p",
        extractor="scripted/x",
        similarity_floor=0,
    )
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None
        s = summarize(store)
        measured = [n for n in store.nodes() if n["rate"] is not None]
        assert s["with_example"] == 2
        assert s["by_role"]["target"]["calls"] == 5 * len(measured)
        assert s["by_role"]["extractor"]["calls"] == 5 * len(measured)
        assert store.get_config()["preset"] == "reference"


async def _one_expansion(proposer_reply, **cfg_options):
    proposer = scripted("p", proposer_reply)
    models = {
        "target": scripted("t", oracle_responder([SKY], fooled_at=1)),
        "proposer": proposer,
    }
    cfg = SearchConfig(
        target="scripted/t",
        proposer="scripted/p",
        similarity_floor=0,
        max_expansions=1,
        max_good=10,
        **cfg_options,
    )
    searcher = build_searcher(cfg, build_roles(cfg, None, Budget(), models), None)
    result = await searcher.search(SKY)
    return proposer, [n for n in result.nodes if n.path != "r"]


@pytest.mark.parametrize("batch, calls", [(True, 1), (False, 3)])
async def test_the_batched_proposer_pays_one_call_per_node(batch, calls):
    proposer, children = await _one_expansion(marking_proposer, proposer_batch=batch)
    assert len(proposer.calls) == calls
    # Either way every wrong option gets its own sentence, and the example is found.
    assert sorted(n.target_option for n in children) == ["green", "red", "yellow"]
    assert all(n.target_option in n.distraction for n in children)
    assert all(n.status == ns.GOOD for n in children)


async def test_a_batched_reply_that_is_not_json_rejects_its_children():
    proposer, children = await _one_expansion(lambda req, i: "Sure! Here are three sentences.")
    assert len(proposer.calls) == 1 and len(children) == 3
    assert all(n.status == ns.REJECTED for n in children)
    assert all(n.verdicts["proposer"]["reason"] == "empty proposal" for n in children)


def test_strategy_reference_is_the_reference_preset():
    cfg = SearchConfig.from_sources(strategy="reference")
    assert cfg.preset == "reference" and cfg.strategy == "best-first"
    assert not cfg.batch_samples and cfg.always_extract and not cfg.proposer_batch
    with pytest.raises(ValueError, match="reference preset"):
        SearchConfig.from_sources(strategy="reference", preset="efficient")
