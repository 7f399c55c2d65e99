"""The one map every executor serves: jobs and a recipe in, ends out, the same schedule for all.

A toy work defined here (no search, no evaluation) runs on the local executor: what an executor
does with a job's end must not depend on what the job was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cdvkit.executors import make_executor
from cdvkit.jobs import JobEnd, RunOutcome
from cdvkit.models.budget import Budget
from cdvkit.models.errors import AuthenticationError, error_named


@dataclass(frozen=True)
class Toy:
    key: str
    end: str = "ok"  # how the job ends
    delay: float = 0.0


@dataclass
class ToySpec:
    log: list[str] = field(default_factory=list)
    built: list[Any] = field(default_factory=list)
    broken: bool = False

    def build(self, recorder: Any, budget: Budget) -> ToyWork:
        if self.broken:
            raise ValueError("no such model: toy/none")
        self.built.append((recorder, budget))
        return ToyWork(self.log)


class ToyWork:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.closed = False

    async def run(self, job: Toy) -> JobEnd:
        self.log.append(f"start {job.key}")
        await asyncio.sleep(job.delay)
        self.log.append(f"end {job.key}")
        if job.end == "fatal":
            return JobEnd(job.key, "fatal", message="bad key", error="AuthenticationError")
        return JobEnd(job.key, job.end, message=f"{job.end} on {job.key}", value=job.key.upper())

    def backends(self) -> list[Any]:
        return []

    async def aclose(self) -> None:
        self.log.append("closed")


def run_map(spec: ToySpec, jobs: list[Toy], concurrency: int = 1) -> tuple[RunOutcome, list]:
    ends: list[JobEnd] = []
    store = object()
    outcome = asyncio.run(
        make_executor("local").map(
            spec, jobs, store, Budget(), concurrency=concurrency, on_end=ends.append
        )
    )
    if spec.built:
        assert spec.built[0][0] is store  # built once, writing where the caller said
        assert len(spec.built) == 1
    return outcome, ends


def test_every_job_runs_with_work_built_once_and_closed() -> None:
    spec = ToySpec()
    outcome, ends = run_map(spec, [Toy("a"), Toy("b", "failed"), Toy("c")], concurrency=2)
    assert [e.value for e in ends] == ["A", "B", "C"]
    assert outcome.errors == ["question b: failed on b"] and outcome.fatal is None
    assert spec.log[-1] == "closed"


def test_a_budget_end_lets_running_jobs_end_and_starts_no_new_one() -> None:
    spec = ToySpec()
    jobs = [Toy("a", delay=0.05), Toy("b", "budget"), Toy("c"), Toy("d")]
    outcome, ends = run_map(spec, jobs, concurrency=2)
    assert outcome.stopped == "budget on b"
    assert [e.key for e in ends] == ["a"]  # a was running: it ends; c and d never start
    assert "start c" not in spec.log and "start d" not in spec.log


def test_a_fatal_end_stops_running_jobs_and_names_its_error() -> None:
    spec = ToySpec()
    outcome, _ = run_map(spec, [Toy("a", delay=5), Toy("b", "fatal")], concurrency=2)
    assert outcome.fatal == "bad key" and "end a" not in spec.log  # a was stopped where it was
    assert isinstance(error_named(outcome.fatal_error, outcome.fatal), AuthenticationError)
    assert spec.log[-1] == "closed"


def test_work_that_cannot_be_built_stops_the_map_before_any_job() -> None:
    spec = ToySpec(broken=True)
    outcome, ends = run_map(spec, [Toy("a")])
    assert outcome.fatal == "no such model: toy/none" and outcome.fatal_error == "ValueError"
    assert not spec.log and not ends


def test_no_jobs_builds_nothing() -> None:
    spec = ToySpec(broken=True)
    outcome, _ = run_map(spec, [])
    assert outcome == RunOutcome()
