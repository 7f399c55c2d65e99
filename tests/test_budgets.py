"""`--max-calls` and `--max-cost` are ceilings even with many calls in flight, and a run stopped by
one resumes, paying nothing twice, when it is rerun with a higher ceiling.
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
from cdvkit.models.budget import Budget
from cdvkit.models.scripted import REGISTRY
from cdvkit.store import RunStore
from loopback_server import Reply, Seen, completion, oracle_letter, serving
from scripted_helpers import marking_proposer, oracle_responder

pytestmark = pytest.mark.timeout(60)

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]


def write_rows(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        answer = COLORS[i % len(COLORS)]
        choices = [answer, *[c for c in COLORS if c != answer][:3]]
        choices = choices[i % 4 :] + choices[: i % 4]
        rows.append({"question": f"Item {i} is painted which colour?", "choices": choices,
                     "answer": answer})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def outcome(run_dir: Path) -> tuple[list[tuple[Any, ...]], int, float]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        examples = sorted(
            (e["question_id"], e["path"], e["question"], tuple(e["choices"]), e["answer"])
            for e in store.examples()
        )
        return examples, store.paid_calls(), store.total_cost()


class PeakBudget:
    """Watches every Budget (wherever a run builds it) for the documented in-flight bound."""

    peak_in_flight = 0
    in_flight_when_cost_reached: int | None = None


@pytest.fixture
def peak_budget(monkeypatch: pytest.MonkeyPatch) -> type[PeakBudget]:
    PeakBudget.peak_in_flight = 0
    PeakBudget.in_flight_when_cost_reached = None
    # Patched on the class, not swapped in one module: any code path that makes a Budget is seen.
    reserve, settle = Budget.reserve, Budget.settle

    def peak_reserve(self: Budget) -> None:
        reserve(self)
        PeakBudget.peak_in_flight = max(PeakBudget.peak_in_flight, self.in_flight)

    def peak_settle(self: Budget, cost: float, *, sent: bool = True) -> None:
        before = self.cost
        settle(self, cost, sent=sent)
        reached = self.max_cost is not None and before < self.max_cost <= self.cost
        if reached and PeakBudget.in_flight_when_cost_reached is None:
            PeakBudget.in_flight_when_cost_reached = self.in_flight

    monkeypatch.setattr(Budget, "reserve", peak_reserve)
    monkeypatch.setattr(Budget, "settle", peak_settle)
    return PeakBudget


# --- --max-calls, scripted models -----------------------------------------------------------------


def scripted_args(data: Path, config: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["generate", "--data", str(data), "--target", "scripted/budget-oracle",
            "--proposer", "scripted/budget-prop", "--similarity-floor", "0", "--samples", "2",
            "--max-expansions", "4", "--concurrency", "16", "--config", str(config),
            "--run-dir", str(run_dir), "--json", *extra]  # fmt: skip


def sent_keys(log: Path) -> list[str]:
    return [json.loads(x)["key"] for x in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_max_calls_is_a_hard_ceiling_and_a_higher_one_resumes(
    tmp_path: Path, peak_budget: type[PeakBudget]
) -> None:
    rows = write_rows(tmp_path / "q.jsonl", 16)
    qs = [Question(str(i), r["question"], tuple(r["choices"]), r["choices"].index(r["answer"]))
          for i, r in enumerate(rows)]  # fmt: skip
    # Fooled only by two stacked distractions: every question needs a second round of calls.
    REGISTRY["budget-oracle"] = oracle_responder(qs, fooled_at=2)
    REGISTRY["budget-prop"] = marking_proposer
    log, ref_log = tmp_path / "sent.log", tmp_path / "ref.log"

    def config(log_path: Path) -> Path:
        # Slow models with room for 16 calls each in flight: the ceiling is hit mid-flight.
        path = tmp_path / f"{log_path.stem}.toml"
        path.write_text(
            "".join(
                f'[roles.{role}]\ndelay = 0.02\nconcurrency = 16\nlog_path = "{log_path}"\n'
                for role in ("target", "proposer")
            )
        )
        return path

    res = CliRunner().invoke(app, scripted_args(tmp_path / "q.jsonl", config(ref_log),
                                                tmp_path / "ref"))  # fmt: skip
    assert res.exit_code == 0, res.output
    ref_examples, ref_calls, _ = outcome(tmp_path / "ref")
    assert ref_examples and ref_calls > 100

    max_calls = 37
    args = scripted_args(tmp_path / "q.jsonl", config(log), tmp_path / "run")
    res = CliRunner().invoke(app, [*args, "--max-calls", str(max_calls)])
    # Stopped by the user's own ceiling: no failure, but no complete result either.
    assert res.exit_code == STOPPED_BY_BUDGET, res.output
    assert "Rerun to continue" in res.stderr
    summary = json.loads(res.stdout)
    assert "call budget reached" in summary["stopped"]
    assert summary["unfinished"] > 0
    assert peak_budget.peak_in_flight > 8  # the ceiling really was met with many calls in flight
    sent = sent_keys(log)
    _, stored, _ = outcome(tmp_path / "run")
    # Requests that reached a model, not only those stored, stay within the ceiling.
    assert stored <= len(sent) <= max_calls
    assert summary["calls"] == stored

    # The same command with a higher ceiling finishes the run as if it had never stopped.
    res = CliRunner().invoke(app, [*args, "--max-calls", str(ref_calls + 50)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["stopped"] is None
    examples, calls, _ = outcome(tmp_path / "run")
    assert (examples, calls) == (ref_examples, ref_calls)
    keys = sent_keys(log)
    # Paid once: only calls cut off while in flight when the first run ended were sent again.
    assert len(keys) - len(set(keys)) == len(sent) - stored
    assert len(set(keys)) == len(set(sent_keys(ref_log)))


# --- --max-cost, a priced model behind the loopback server -------------------------------------

PRICE = 1000.0  # USD per million tokens, in and out: each request (10 + 5 tokens) costs 0.015
CALL_COST = 15 * PRICE / 1e6


def priced_args(data: Path, config: Path, url: str, run_dir: Path, *extra: str) -> list[str]:
    return ["generate", "--data", str(data), "--target", "openai-compatible/priced",
            "--base-url", url, "--proposer", "template", "--similarity-floor", "0",
            "--samples", "2", "--scoring", "sample", "--max-expansions", "2",
            "--concurrency", "16", "--config", str(config), "--run-dir", str(run_dir),
            "--json", *extra]  # fmt: skip


@pytest.mark.slow
def test_max_cost_overshoots_by_at_most_the_calls_in_flight(
    tmp_path: Path, peak_budget: type[PeakBudget], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = tmp_path / "q.jsonl"
    rows = write_rows(data, 16)
    originals = {r["question"]: r["answer"] for r in rows}
    config = tmp_path / "cdv.toml"
    # 16 questions at once could want 48 target calls at once; the backend allows 8.
    config.write_text(f"[roles.target]\nprice_per_mtok = [{PRICE}, {PRICE}]\nconcurrency = 8\n")

    def route(req: Seen) -> Reply:
        letter = oracle_letter(req.user, originals)
        return Reply(json=completion([f"Answer: {letter}"] * req.n), hang=0.05)

    with serving(route) as server:
        res = CliRunner().invoke(app, priced_args(data, config, server.url, tmp_path / "ref"))
        assert res.exit_code == 0, res.output
        ref_examples, ref_calls, ref_cost = outcome(tmp_path / "ref")
        assert ref_cost == pytest.approx(ref_calls * CALL_COST)
        ref_requests = len(server.seen())
        assert ref_requests == ref_calls

        max_cost = 0.1
        args = priced_args(data, config, server.url, tmp_path / "run")
        res = CliRunner().invoke(app, [*args, "--max-cost", str(max_cost)])
        assert res.exit_code == STOPPED_BY_BUDGET, res.output
        summary = json.loads(res.stdout)
        assert "cost budget reached" in summary["stopped"]
        in_flight = peak_budget.in_flight_when_cost_reached
        assert in_flight is not None and in_flight > 1
        # Documented bound: calls in flight when the ceiling is reached still finish, and are
        # paid; a call reserves only once it holds a backend slot, so they are at most the
        # backend's concurrency limit, however many calls wait for a slot.
        assert in_flight <= 8 and peak_budget.peak_in_flight <= 8
        with RunStore(tmp_path / "run", lock=False, readonly=True) as store:
            # One row per sample; the samples of one request share a batch and its cost.
            costs = [
                r[0]
                for r in store.db.execute(
                    "SELECT SUM(cost) FROM calls GROUP BY COALESCE(batch, key) ORDER BY MIN(rowid)"
                ).fetchall()
            ]
        total, reached_at = 0.0, None
        for i, c in enumerate(costs):
            total += c
            if reached_at is None and total >= max_cost - 1e-12:
                reached_at = i
        assert reached_at is not None
        assert len(costs) - 1 - reached_at <= in_flight  # nothing new was sent after the ceiling
        # The call that crossed the ceiling started below it, so it counts as in flight too.
        assert summary["cost"] - max_cost < (in_flight + 1) * CALL_COST
        first_requests = len(server.seen()) - ref_requests
        assert first_requests == len(costs)  # every request sent was recorded and paid for

        # A higher ceiling resumes the run; it ends as the unbounded one did, paying nothing twice.
        res = CliRunner().invoke(app, [*args, "--max-cost", "100"])
        assert res.exit_code == 0, res.output
        examples, calls, cost = outcome(tmp_path / "run")
        assert (examples, calls) == (ref_examples, ref_calls)
        assert cost == pytest.approx(ref_cost)
        assert len(server.seen()) - ref_requests == ref_requests
