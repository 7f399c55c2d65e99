"""The Ray executor: same examples and paid calls as the local one, SIGKILL-safe, evaluation.

One local Ray instance (2 CPUs) serves the whole module; the `cdv` subprocess of the kill test
joins it by address, so the killed driver leaves no Ray processes of its own behind.

The scripted target and proposer come from a rules file (not an in-process responder), because
Ray workers are other processes: they build their backends from the run's config, as in a real run.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdvkit.cli.app import app as cli_app
from cdvkit.data.question import LETTERS
from cdvkit.executors import make_executor
from cdvkit.executors.base import RunOutcome
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from cdvkit.tasks import load_questions
from test_resume import log_lines, write_data

try:
    import ray
except ImportError:  # the tests that need Ray skip; the missing-Ray error is still checked
    ray = None

pytestmark = [pytest.mark.timeout(180)]

N_QUESTIONS = 30
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
MARK = "DISTRACT"
# One proposer request per wrong option: a rules file answers each with its own sentence.
SETTINGS = {
    "samples": 2,
    "seed": 3,
    "max_expansions": 4,
    "similarity_floor": 0.0,
    "proposer_batch": False,
}


def write_rules(path: Path, data: Path, *, delay: float = 0.0, log: Path | None = None) -> Path:
    """An oracle as a rules file: right unless two distractions are stacked, then wrong.

    The proposer's rules come first: its prompt also holds the question and its choices.
    """
    rules: list[dict[str, str]] = [
        {
            "contains": f"Wrong option to make plausible: {c}\n",
            "reply": f"{MARK}: people often talk about {c} here.",
        }
        for c in COLORS
    ]
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    for fooled in (True, False):
        for i, row in enumerate(rows):
            for k in range(len(row["choices"])):
                # The answer sits at letter k of the node's (shuffled) choices.
                where = rf"(?=.*Item {i} of ).*\n{LETTERS[k]}\. {row['answer']}(\n|$)"
                if fooled:
                    rules.append(
                        {
                            "regex": rf"^(?=(?:.*?{MARK}){{2}}){where}",
                            "reply": f"Hmm. Answer: {LETTERS[(k + 1) % len(row['choices'])]}",
                        }
                    )
                else:
                    rules.append({"regex": where, "reply": f"Step by step. Answer: {LETTERS[k]}"})
    cfg: dict[str, object] = {"rules": rules, "default": "no idea", "delay": delay}
    if log is not None:
        cfg["log"] = str(log)
    path.write_text(json.dumps(cfg))
    return path


def config(rules: Path, data: Path) -> SearchConfig:
    spec = f"scripted/{rules}"
    return SearchConfig(data=str(data), target=spec, proposer=spec, concurrency=8, **SETTINGS)


def run(
    cfg: SearchConfig, run_dir: Path, executor: str = "local", *, complete: bool = True, **opts
) -> RunOutcome:
    with RunStore(run_dir) as store:
        prepare_store(store, cfg, lambda: load_questions(cfg.data).questions)
        outcome = asyncio.run(run_search(cfg, store, executor=make_executor(executor, **opts)))
    if complete:
        assert outcome.fatal is None and outcome.stopped is None and not outcome.errors, outcome
    return outcome


def results(run_dir: Path) -> dict[str, object]:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return {
            "examples": sorted(
                (e["question_id"], e["path"], e["question"], tuple(e["choices"]), e["answer"])
                for e in store.examples()
            ),
            "nodes": sorted((n["question_id"], n["path"], n["status"]) for n in store.nodes()),
            "statuses": sorted((d["id"], d["status"]) for d in store.questions()),
            "calls": store.paid_calls(),
            "by_role": {
                r: (u["calls"], u["samples"], u["prompt_tokens"], u["completion_tokens"])
                for r, u in store.usage_by_role().items()
            },
        }


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    if ray is None:
        pytest.skip("the ray extra is not installed (pip install 'cdvkit[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, dict[str, object], Path]:
    """The data, its rules file, a local run of it and its results: what Ray must reproduce."""
    root = tmp_path_factory.mktemp("ray-ref")
    data = write_data(root / "q.jsonl", N_QUESTIONS)
    rules = write_rules(root / "rules.json", data, log=root / "ref.log")
    run(config(rules, data), root / "local")
    ref = results(root / "local")
    assert ref["examples"], "the scripted setup must produce examples"
    assert len(log_lines(root / "ref.log")) == ref["calls"]
    return data, rules, ref, root / "local"


def test_ray_run_matches_local(ray_address: str, reference, tmp_path: Path) -> None:
    data, rules, ref, _ = reference
    run(config(rules, data), tmp_path / "ray", "ray", workers=2)
    got = results(tmp_path / "ray")
    # Same trees, same examples, same paid calls per role: per-question seeds make a question's
    # search independent of which worker runs it and of what runs beside it.
    assert got == ref


def test_progress_counts_a_ray_runs_writes_as_they_arrive(
    ray_address: str, reference, tmp_path: Path
) -> None:
    # The workers' writes reach the store as events in this process: the progress display
    # hears each paid call and each expansion, and ends at the run's own totals.
    data, rules, ref, _ = reference
    cfg = config(rules, data)
    seen: list[tuple[int, int, float]] = []
    with RunStore(tmp_path / "ray") as store:
        prepare_store(store, cfg, lambda: load_questions(cfg.data).questions)
        asyncio.run(
            run_search(
                cfg,
                store,
                executor=make_executor("ray", workers=2),
                on_progress=lambda p: seen.append((p.calls, p.examples, p.partial)),
            )
        )
        calls, examples = store.paid_calls("search"), store.count_nodes("good")
    assert any(partial > 0 for _, _, partial in seen)
    assert [c for c, _, _ in seen] == sorted(c for c, _, _ in seen)
    assert seen[-1][:2] == (calls, examples) == (ref["calls"], len(ref["examples"]))


def stored_calls(run_dir: Path) -> int:
    try:
        with RunStore(run_dir, lock=False, readonly=True) as store:
            return store.paid_calls()
    except (FileNotFoundError, sqlite3.OperationalError):
        return 0  # the driver has not created the store yet


def cdv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cdvkit.cli.app", *args]


def test_sigkilled_ray_driver_resumes_without_paying_twice(
    ray_address: str, reference, tmp_path: Path
) -> None:
    data, _, ref, _ = reference
    log = tmp_path / "calls.log"
    rules = write_rules(tmp_path / "rules.json", data, delay=0.05, log=log)
    spec = f"scripted/{rules}"
    cmd = cdv(
        "generate", "--data", str(data), "--target", spec, "--proposer", spec,
        "--similarity-floor", "0", "--samples", "2", "--seed", "3", "--max-expansions", "4",
        "--concurrency", "8", "--no-proposer-batch", "--run-dir", str(tmp_path / "run"), "--quiet",
        "--executor", "ray", "--ray-address", ray_address, "--ray-workers", "2",
    )  # fmt: skip
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if stored_calls(tmp_path / "run") >= 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Ray ends a dead driver's actors shortly after; until then they may still send calls.
    quiet_since, seen = time.time(), len(log_lines(log))
    while time.time() - quiet_since < 2.0:
        time.sleep(0.1)
        if len(log_lines(log)) != seen:
            quiet_since, seen = time.time(), len(log_lines(log))
    sent = len(log_lines(log))  # the scripted model logs each call when it is sent (paid)
    stored = stored_calls(tmp_path / "run")
    in_flight = sent - stored  # sent but never received by the driver: lost, as documented
    # At most the calls the models' shared limits let out at once (8 each, 2 models), plus the
    # answers still on their way to the driver: Ray stops a dead driver's actors at once.
    assert 0 <= in_flight <= 32
    assert 0 < stored < ref["calls"]

    write_rules(rules, data, delay=0.0, log=log)  # same model string, now fast
    subprocess.run(cmd, check=True, timeout=120)
    got = results(tmp_path / "run")
    assert got["examples"] == ref["examples"]
    assert got["calls"] == ref["calls"] and got["by_role"] == ref["by_role"]
    keys = [json.loads(x)["key"] for x in log_lines(log)]
    # Only the calls lost in flight were sent again; everything the driver stored was reused.
    assert len(keys) - len(set(keys)) == in_flight
    assert len(keys) == ref["calls"] + in_flight


def test_evaluate_on_ray_matches_local(ray_address: str, reference, tmp_path: Path) -> None:
    _, rules, _, run_dir = reference
    model = f"scripted/{rules}"
    runner = CliRunner()
    out: dict[str, dict] = {}
    for ex in ("local", "ray"):
        args = ["evaluate", "--run", str(run_dir), "--models", model, "--out", str(tmp_path / ex)]
        args += ["--samples", "2", "--bootstrap", "200", "--json"]
        if ex == "ray":
            args += ["--executor", "ray", "--ray-address", ray_address, "--ray-workers", "2"]
        res = runner.invoke(cli_app, args)
        assert res.exit_code == 0, res.output
        entry = json.loads(res.stdout)["evaluations"][0]
        out[ex] = entry["results"]
        assert entry["answers"]["cached"] == 0 and not entry["errors"]
    assert out["ray"] == out["local"]
    overall = next(iter(out["ray"].values()))[model]["overall"]
    assert overall["original"] == 1.0 and overall["distracted"] == 0.0
    with (
        RunStore(tmp_path / "local", lock=False, readonly=True) as a,
        RunStore(tmp_path / "ray", lock=False, readonly=True) as b,
    ):
        assert a.usage_by_role() == b.usage_by_role()


def test_the_call_budget_is_one_ceiling_over_all_workers(
    ray_address: str, reference, tmp_path: Path
) -> None:
    data, rules, ref, _ = reference
    cfg = config(rules, data)
    cfg.max_calls = 60
    outcome = run(cfg, tmp_path / "run", "ray", complete=False, workers=2)
    assert outcome.stopped and "call budget" in outcome.stopped
    # Reserved through one actor before each call: never overshot, and every call paid is stored.
    assert results(tmp_path / "run")["calls"] == 60
    cfg.max_calls = None
    run(cfg, tmp_path / "run", "ray", workers=2)
    got = results(tmp_path / "run")
    assert got["examples"] == ref["examples"] and got["calls"] == ref["calls"]


def test_api_models_share_one_concurrency_limit_across_workers(ray_address: str) -> None:
    from cdvkit.executors.ray_actors import LimiterActor, RemoteLimiter

    limiter = RemoteLimiter(ray.remote(LimiterActor).options(num_cpus=0).remote())

    async def scenario() -> None:
        limiter.release("m", await limiter.acquire("m", 2))  # the actor is up before timing
        waiting = [asyncio.create_task(limiter.acquire("m", 2)) for _ in range(4)]
        done, pending = await asyncio.wait(waiting, timeout=1.0)
        assert len(done) == 2 and len(pending) == 2  # the limit holds across callers
        first = pending.pop()
        first.cancel()  # a caller that gives up while waiting must not keep a slot
        for t in done:
            limiter.release("m", t.result())
        last = await asyncio.wait_for(pending.pop(), timeout=5)
        more = await asyncio.wait_for(limiter.acquire("m", 2), timeout=5)
        limiter.release("m", last)
        limiter.release("m", more)

    asyncio.run(scenario())


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    data = write_data(tmp_path / "q.jsonl", 3)
    outcome = run(config(write_rules(tmp_path / "r.json", data), data), tmp_path / "run", "ray",
                  complete=False)  # fmt: skip
    assert outcome.fatal and "pip install 'cdvkit[ray]'" in outcome.fatal
    res = CliRunner().invoke(
        cli_app, ["generate", "--data", str(data), "--executor", "local", "--ray-workers", "2"]
    )
    assert res.exit_code == 2 and "need --executor ray" in res.output
    res = CliRunner().invoke(cli_app, ["generate", "--data", str(data), "--executor", "dask"])
    assert res.exit_code == 2 and "unknown executor" in res.output
