"""The forecast: hand-computed numbers before a run, the run's own rates after 20 questions,
`cdv generate --estimate`, the line before every run, and a budget stop that names it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import Question
from cdvkit.models.scripted import REGISTRY, ScriptedModel
from cdvkit.prompts import target_request
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.search.forecast import (
    PRIORS,
    expected_expansions,
    forecast_from_store,
    forecast_run,
)
from cdvkit.store import RunStore
from scripted_helpers import marking_proposer, oracle_responder, write_questions

runner = CliRunner()
Q = Question("q1", "Which colour is the sky on a clear day?", ("blue", "red", "green", "grey"), 0)


def test_expected_expansions_by_hand():
    # Three children an expansion, each fooling with p = 0.12; stop at one example or two
    # expansions: the first always happens, the second when the first three all failed.
    assert expected_expansions(3, 0.12, 2, 1) == pytest.approx(1 + 0.88**3)
    # Never fooled: every expansion is spent; always fooled: only the first.
    assert expected_expansions(3, 0.0, 10, 3) == pytest.approx(10)
    assert expected_expansions(3, 1.0, 10, 3) == pytest.approx(1)


def test_a_forecast_before_the_run_matches_the_hand_computed_numbers():
    cfg = SearchConfig(
        target="scripted/t", proposer="template", samples=2, max_expansions=2, max_good=1
    )
    fc = forecast_run(cfg, [Q], {"target": (1.0, 2.0)}, exact_guided=False)
    assert set(fc.roles) == {"target"}  # no judge, no extractor, no proposer model
    req = target_request(Q.question, Q.choices, temperature=cfg.temperature)
    prompt = math.ceil(sum(len(c) for _, c in req.messages) / 4) + 1.5 * PRIORS.sentence_tokens
    low, mid, high = (0.35, 115), (0.12, 270), (0.03, 380)  # (P(fooled), reply tokens)

    def by_hand(fooled: float, reply: int) -> tuple[float, float]:
        # Searched with P 0.85 (0.15 fail the original): the root, then 3 children an expansion.
        calls = 1 + 0.85 * 3 * (1 + (1 - fooled) ** 3)
        cost = calls * (prompt * 1.0 + 2 * reply * 2.0) / 1e6  # n=2 samples in one request
        return calls, cost

    t = fc.roles["target"]
    assert t.calls == pytest.approx(tuple(by_hand(*lv)[0] for lv in (low, mid, high)))
    assert t.cost == pytest.approx(tuple(by_hand(*lv)[1] for lv in (low, mid, high)))
    assert t.prompt_tokens == pytest.approx(by_hand(*mid)[0] * prompt)
    assert t.completion_tokens == pytest.approx(by_hand(*mid)[0] * 2 * 270)
    assert fc.cost == pytest.approx(t.cost) and fc.basis == "settings"


def test_every_role_is_forecast_and_an_unpriced_one_is_said():
    cfg = SearchConfig(
        target="scripted/t", proposer="scripted/p", judge="scripted/j", extractor="scripted/x"
    )
    fc = forecast_run(cfg, [Q], {"target": (1.0, 1.0), "proposer": (1.0, 1.0)}, exact_guided=True)
    assert set(fc.roles) == {"target", "verify", "proposer", "judge", "extractor"}
    # Guided by choice probabilities, a node costs one call with one token out; the protocol's
    # samples go to the confirmations (verify), priced as the target.
    assert fc.roles["target"].completion_tokens == pytest.approx(fc.roles["target"].calls[1])
    assert fc.roles["verify"].priced and fc.roles["verify"].cost[1] > 0
    assert not fc.roles["judge"].priced and fc.roles["judge"].cost == (0, 0, 0)
    assert "no price for judge, extractor" in fc.line()
    lo, mid, hi = fc.cost
    assert lo <= mid <= hi and fc.calls[0] <= fc.calls[1] <= fc.calls[2]


@pytest.mark.parametrize("free", [False, True])
def test_the_proposer_spec_and_its_shorthand_forecast_alike(free: bool) -> None:
    # `--proposer llm:batch=false` is `--no-proposer-batch`: one proposer call per wrong option
    # (or wrong answer) an expansion, where the batched proposer makes one.
    from freeform_helpers import FREE_QUESTIONS

    q = FREE_QUESTIONS[0] if free else Q
    base = {"target": "scripted/t", "max_expansions": 2}
    price = {"target": (1.0, 1.0), "proposer": (1.0, 1.0)}

    def calls(**kw: Any) -> float:
        cfg = SearchConfig(**base, **kw)
        return forecast_run(cfg, [q], price, exact_guided=False).roles["proposer"].calls[1]

    batched = calls(proposer="scripted/p")
    one_by_one = calls(proposer="scripted/p", proposer_batch=False)
    assert one_by_one > batched
    assert calls(proposer="llm:model=scripted/p,batch=false") == pytest.approx(one_by_one)
    assert calls(proposer="llm:model=scripted/p,batch=true") == pytest.approx(batched)


def colour_questions(n: int) -> list[Question]:
    colours = ["red", "green", "blue", "yellow"]
    return [
        Question(f"c{i}", f"Item {i} is painted which colour?", tuple(colours), i % 4)
        for i in range(n)
    ]


async def test_after_20_questions_the_forecast_is_the_runs_own_rates(tmp_path):
    questions = colour_questions(30)
    cfg = SearchConfig(
        target="scripted/t", proposer="scripted/p", similarity_floor=0, samples=2,
        concurrency=1, max_calls=115,
    )  # fmt: skip
    models = {
        "target": ScriptedModel("scripted/t", responder=oracle_responder(questions)),
        "proposer": ScriptedModel("scripted/p", responder=marking_proposer),
    }
    for m in models.values():
        m.price_per_mtok = (1.0, 2.0)
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: questions)
        out = await run_search(cfg, store, models=models)
        assert out.stopped  # the ceiling stopped it with questions left
        statuses = {d["id"]: d["status"] for d in store.questions()}
        finished = [q for q, s in statuses.items() if s in ("done", "original_failed")]
        assert 20 <= len(finished) < 30
        assert forecast_from_store(store, min_finished=len(finished) + 1) is None
        fc = forecast_from_store(store)
        assert fc is not None and fc.basis == "run" and fc.finished == len(finished)
        per_q = store.usage_by_question("search")
        mean = sum(sum(r["cost"] for r in per_q[q].values()) for q in finished) / len(finished)
        left = sum(1 for s in statuses.values() if s not in ("done", "original_failed"))
        spent = store.total_cost("search")
        assert fc.spent_cost == pytest.approx(spent) and spent > 0
        assert fc.cost[1] == pytest.approx(spent + left * mean)
        assert fc.cost[0] <= fc.cost[1] <= fc.cost[2]
        assert "from this run's first" in fc.line()


def test_estimate_runs_nothing_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    res = runner.invoke(
        app,
        ["generate", "--data", "sample", "--limit", "5", "--target", "openai/gpt-4o-mini",
         "--proposer", "openai/gpt-4o", "--run-dir", str(run_dir), "--estimate", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    fc = json.loads(res.stdout)
    assert fc["questions"] == 5 and fc["basis"] == "settings"
    # Priced from the providers' list prices, with no key and no request.
    assert fc["roles"]["target"]["priced"] and fc["cost"][1] > 0
    assert fc["roles"]["proposer"]["model"] == "openai/gpt-4o"
    assert not run_dir.exists()
    table = runner.invoke(app, ["generate", "--data", "sample", "--limit", "5", "--estimate"])
    assert table.exit_code == 0 and "forecast:" in table.stdout and "target" in table.stdout


def test_the_forecast_is_printed_before_a_run_and_named_when_a_budget_stops_it(tmp_path):
    questions = colour_questions(6)
    data = write_questions(tmp_path / "q.jsonl", questions)
    REGISTRY["fc-target"] = oracle_responder(questions)
    REGISTRY["fc-prop"] = marking_proposer
    res = runner.invoke(
        app,
        ["generate", "--data", str(data), "--target", "scripted/fc-target", "--proposer",
         "scripted/fc-prop", "--similarity-floor", "0", "--run-dir", str(tmp_path / "r"),
         "--max-calls", "5", "--concurrency", "1"],
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    before = res.output.index("forecast:")
    assert before < res.output.index("stopped early")
    assert "stopped early" in res.output and "forecast:" in res.output.split("stopped early")[1]


def test_a_server_that_may_give_log_probs_is_forecast_both_ways():
    cfg = SearchConfig(target="scripted/t", proposer="template", samples=5)
    prices = {"target": (1.0, 1.0)}
    maybe = forecast_run(cfg, [Q], prices, exact_guided=None)
    yes = forecast_run(cfg, [Q], prices, exact_guided=True)
    no = forecast_run(cfg, [Q], prices, exact_guided=False)
    # The middle assumes log-probs; the other case is said, and the range covers both.
    assert maybe.cost[1] == pytest.approx(yes.cost[1])
    assert maybe.without_logprobs == pytest.approx((no.calls[1], no.cost[1]))
    assert maybe.cost[0] <= min(yes.cost[0], no.cost[0])
    assert maybe.cost[2] >= max(yes.cost[2], no.cost[2])
    assert "if the target gives no log-probs" in maybe.line()
    assert "log-probs" not in yes.line() and "log-probs" not in no.line()


def test_more_proposals_widen_the_forecast_tree():
    one = SearchConfig(target="scripted/t", proposer="scripted/p", max_expansions=3, max_good=1)
    two = SearchConfig(**{**one.to_dict(), "proposals": 2})
    prices = {"target": (1.0, 1.0), "proposer": (1.0, 1.0)}
    f1 = forecast_run(one, [Q], prices, exact_guided=True)
    f2 = forecast_run(two, [Q], prices, exact_guided=True)
    mid = PRIORS.fooled[1]
    # Searched with P 0.85: the root, then 3 (or 6) children an expansion; one batch proposer
    # call an expansion for each round of proposals.
    for f, branching, rounds in ((f1, 3, 1), (f2, 6, 2)):
        expansions = expected_expansions(branching, mid, 3, 1)
        assert f.roles["target"].calls[1] == pytest.approx(1 + 0.85 * branching * expansions)
        assert f.roles["proposer"].calls[1] == pytest.approx(0.85 * rounds * expansions)
