"""`--prefilter auto`: a prefilter that learns from the run's own outcomes while the run goes on.

The scripted world: the target is fooled by two stacked distractions, except on "hopeless"
questions, where nothing fools it; its choice probabilities give the game away (P(correct) about
0.93 on a hopeless question, about 0.6 on the others), as a real target's confidence would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from typer.testing import CliRunner

from cdvkit.cli.app import app
from cdvkit.data.question import LETTERS, Question
from cdvkit.executors import LocalExecutor
from cdvkit.models.base import MCQ, GenerateRequest
from cdvkit.models.budget import Budget
from cdvkit.prefilter.auto import AutoPrefilter, seeded_order
from cdvkit.prefilter.features import ROOT_FEATURES, OnlineModel, root_features
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from scripted_helpers import MARK, marking_proposer, scripted, write_questions

HERE = Path(__file__).resolve().parent
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
WARMUP, BATCH = 10, 8


def make_questions(n: int) -> list[Question]:
    out = []
    for i in range(n):
        answer = COLOURS[i % len(COLOURS)]
        choices = [answer, *[c for c in COLOURS if c != answer][:3]]
        choices = choices[i % 4 :] + choices[: i % 4]
        text = f"Item {i} of the test set is painted which colour, {answer}?"
        out.append(Question(str(i), text, tuple(choices), choices.index(answer)))
    return out


def world(questions: list[Question], hopeless: set[str], telling: bool = True):
    """(responder, probs_fn) of the scripted target; not ``telling``: its probabilities on an
    original are the same whether the question is hopeless or not."""
    by_text = {q.question: q for q in questions}

    def original(text: str) -> Question:
        return next(q for t, q in by_text.items() if t in text)

    def fooled(q: Question, text: str) -> bool:
        return q.id not in hopeless and text.count(MARK) >= 2

    def respond(req: GenerateRequest, sample: int) -> str:
        mcq = req.mcq
        assert mcq is not None
        q = original(mcq.question)
        right = mcq.choices.index(q.answer_text)
        pick = (right + 1) % len(mcq.choices) if fooled(q, mcq.question) else right
        return f"Step by step... Answer: {LETTERS[pick]}"

    def probs(messages, mcq: MCQ) -> list[float]:
        q = original(mcq.question)
        marks = mcq.question.count(MARK)
        k = int(q.id) % 3
        if q.id in hopeless:
            p = (0.9 if telling else 0.55) + 0.03 * k - 0.01 * marks
        else:
            p = 0.55 + 0.05 * k - 0.25 * marks
        p = max(p, 0.05)
        right = mcq.choices.index(q.answer_text)
        wrong = [(right + j) % len(mcq.choices) for j in (1, 2, 3)]
        out = [0.0] * len(mcq.choices)
        out[right] = p
        for j, share in zip(wrong, (0.5, 0.3, 0.2), strict=True):
            out[j] = (1 - p) * share
        return out

    return respond, probs


def config(**kw) -> SearchConfig:
    base = dict(
        target="scripted/auto-target", proposer="scripted/auto-prop", similarity_floor=0,
        samples=2, max_expansions=4, seed=3, concurrency=4, prefilter="auto",
        prefilter_threshold=0.5, prefilter_warmup=WARMUP, prefilter_batch=BATCH,
    )  # fmt: skip
    return SearchConfig(**{**base, **kw})


def models(questions: list[Question], hopeless: set[str], telling: bool = True) -> dict:
    respond, probs = world(questions, hopeless, telling)
    return {
        "target": scripted("auto-target", respond, probs_fn=probs),
        "proposer": scripted("auto-prop", marking_proposer),
    }


def every_third(questions: list[Question]) -> set[str]:
    return {q.id for q in questions if int(q.id) % 3 == 0}


def state(run_dir: Path) -> dict:
    """Everything a run decided and found, to compare two runs."""
    with RunStore(run_dir, readonly=True, lock=False) as store:
        return {
            "questions": [
                (d["id"], d["status"], d["prefilter_p"], d["error"]) for d in store.questions()
            ],
            "examples": sorted(
                (e["question_id"], e["path"], e["question"]) for e in store.examples()
            ),
            "calls": store.paid_calls(),
        }


async def run(
    tmp_path: Path, name: str, questions, hopeless, telling: bool = True, **kw
) -> tuple[Path, dict]:
    cfg = config(**kw)
    ms = models(questions, hopeless, telling)
    with RunStore(tmp_path / name) as store:
        prepare_store(store, cfg, lambda: questions)
        outcome = await run_search(cfg, store, models=ms)
        assert outcome.fatal is None and not outcome.errors and outcome.stopped is None
    return tmp_path / name, ms


# --- the seeded order and the features -------------------------------------------------------


def test_the_warm_up_order_is_a_seeded_random_order():
    ids = [str(i) for i in range(40)]
    order = seeded_order(ids, 3)
    assert sorted(order, key=int) == ids and order != ids
    assert seeded_order(ids, 3) == order  # the same seed, the same order
    assert seeded_order(ids, 4) != order
    # Not the order of the file in any part: a fair sample.
    assert order[:WARMUP] != ids[:WARMUP]


def test_root_features_read_the_targets_answers():
    q = Question("q", "Which colour is the sky on a clear day?", ("blue", "red", "green"), 0)
    right = {"choice": 0, "correct": True, "status": "ok"}
    wrong = {"choice": 1, "correct": False, "status": "ok"}
    unread = {"choice": None, "correct": False, "status": "unparsed"}
    sampled = root_features({"outputs": {"mode": "sample", "answers": [right, wrong, unread]}}, q)
    f = dict(zip(ROOT_FEATURES, sampled, strict=True))
    assert f["share_right"] == pytest.approx(1 / 3) and f["share_unread"] == pytest.approx(1 / 3)
    assert f["vote_entropy"] == pytest.approx(1.0) and f["has_probs"] == 0.0
    exact = {"mode": "exact", "probs": [0.8, 0.15, 0.05], "verify": {"answers": [right] * 5}}
    f = dict(zip(ROOT_FEATURES, root_features({"outputs": exact}, q), strict=True))
    assert f["has_probs"] == 1.0 and f["share_right"] == 1.0 and f["vote_entropy"] == 0.0
    assert f["logit_p_correct"] == pytest.approx(1.386, abs=1e-3)  # log(0.8 / 0.2)
    assert f["log_margin"] == pytest.approx(1.674, abs=1e-3)  # log(0.8 / 0.15)


def test_one_class_gives_the_smoothed_share():
    import numpy as np

    root = np.zeros((4, len(ROOT_FEATURES)))
    model = OnlineModel().fit(root, None, [1, 1, 1, 1])
    assert model.predict(root[:2], None).tolist() == [5 / 6, 5 / 6]
    assert OnlineModel().fit(root, None, [0, 0, 0, 0]).predict(root[:1], None)[0] == 1 / 6


# --- runs ------------------------------------------------------------------------------------


async def test_auto_skips_the_hopeless_questions_it_learnt_to_spot(tmp_path):
    qs = make_questions(48)
    hopeless = every_third(qs)
    run_dir, ms = await run(tmp_path, "run", qs, hopeless)
    order = seeded_order([q.id for q in qs], 3)
    with RunStore(run_dir, readonly=True, lock=False) as store:
        rows = {d["id"]: d for d in store.questions()}
        with_example = {e["question_id"] for e in store.examples()}
        summary = summarize(store)
    skipped = {q for q, d in rows.items() if d["status"] == "skipped"}
    assert skipped and skipped <= hopeless  # no question that had an example to give
    assert with_example == {q.id for q in qs} - hopeless  # every example found
    for q in skipped:
        assert rows[q]["prefilter_p"] < 0.5 and "prefilter auto: P(enhanceable)" in rows[q]["error"]
    # The warm-up (the head of the seeded order) was searched before anything was learnt.
    warm = {q for q, d in rows.items() if d["status"] == "done" and d["prefilter_p"] is None}
    assert warm == set(order[:WARMUP])
    # Every other question was searched or skipped under a P it kept.
    assert all(rows[q]["prefilter_p"] is not None for q in set(rows) - warm)
    assert summary["skipped"] == len(skipped)
    # A skipped question cost its root answers only: the proposer never wrote for it.
    prop_prompts = [req.messages[-1][1] for req, _ in ms["proposer"].calls]
    for q in qs:
        if q.id in skipped:
            assert not any(q.question in p for p in prop_prompts)


async def test_the_progress_hears_each_original_answered_and_each_question_end_once(tmp_path):
    from cdvkit.store.status import ROOT_ANSWERED

    qs = make_questions(48)
    heard: list[tuple[str, str]] = []
    cfg = config()
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        await run_search(
            cfg,
            store,
            models=models(qs, every_third(qs)),
            on_question_done=lambda q, st: heard.append((q, st)),
        )
        final = {d["id"]: d["status"] for d in store.questions()}
    answered = [q for q, st in heard if st == ROOT_ANSWERED]
    ends = [(q, st) for q, st in heard if st != ROOT_ANSWERED]
    # Each original auto answers before deciding (the warm-up's from the cache) is heard once,
    # apart from the ends: every question ends once, skipped ones included.
    assert sorted(answered) == sorted(final)
    assert sorted(ends) == sorted(final.items())
    assert "skipped" in final.values()


async def test_it_retrains_as_outcomes_arrive(tmp_path):
    qs = make_questions(48)
    order = seeded_order([q.id for q in qs], 3)
    # Nothing hopeless in the warm-up: the first model has seen one class only and ranks every
    # question alike; only the outcomes of the first batches teach it what a hopeless one is.
    hopeless = set(order[WARMUP::3])
    cfg = config()
    ms = models(qs, hopeless)
    with RunStore(tmp_path / "run") as store:
        prepare_store(store, cfg, lambda: qs)
        budget = Budget()

        async def run_map(spec, jobs, on_end):
            return await LocalExecutor().map(
                spec, jobs, store, budget, concurrency=4, on_end=on_end
            )

        auto = AutoPrefilter(cfg, store, run_map, models=ms)
        outcome = await auto.run()
        assert outcome.fatal is None
        status = {d["id"]: d["status"] for d in store.questions()}
    first, last = auto.decisions[0], auto.decisions[-1]
    assert first["trained_on"] == first["positives"] == WARMUP
    assert set(first["batch"]) & hopeless  # the warm-up model could not tell them apart
    assert last["trained_on"] > first["trained_on"] and last["positives"] < last["trained_on"]
    assert [d["trained_on"] for d in auto.decisions] == sorted(
        d["trained_on"] for d in auto.decisions
    )
    skipped = {q for q, s in status.items() if s == "skipped"}
    assert skipped and skipped <= hopeless  # what it learnt made it skip what it first searched


async def test_it_never_skips_on_the_base_rate_alone(tmp_path):
    qs = make_questions(48)
    rng = random.Random(0)
    hopeless = {q.id for q in qs if rng.random() < 0.7}
    # Most questions are hopeless, so P(enhanceable) is below the threshold for every one of
    # them; but nothing tells which: skipping would cut the run short, not pick what to leave.
    run_dir, _ = await run(tmp_path, "run", qs, hopeless, telling=False)
    rows = state(run_dir)["questions"]
    assert {st for _, st, _, _ in rows} == {"done"}
    assert sum(p < 0.5 for _, _, p, _ in rows if p is not None) > 0


def test_it_may_skip_only_once_it_ranks_better_than_chance():
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20)
    telling = (y + rng.normal(0, 0.3, len(y)))[:, None].repeat(len(ROOT_FEATURES), axis=1)
    model = OnlineModel().fit(telling, None, y.tolist())
    assert model.discriminates and model.oof_auc > 0.9
    # Features that say nothing: 200 outcomes, so that chance correlations stay small.
    noise = np.random.default_rng(1).normal(size=(200, len(ROOT_FEATURES)))
    model = OnlineModel().fit(noise, None, [0, 1] * 100)
    assert not model.discriminates and model.p_value > 0.01
    few = OnlineModel().fit(telling[:4], None, [0, 1, 0, 1])  # 2 of each: too few to weigh
    assert few.p_value is None and not few.discriminates


async def test_same_seed_same_run_other_seed_other_warm_up(tmp_path):
    qs = make_questions(48)
    hopeless = every_third(qs)
    a, _ = await run(tmp_path, "a", qs, hopeless, concurrency=4)
    b, _ = await run(tmp_path, "b", qs, hopeless, concurrency=16)  # concurrency changes nothing
    assert state(a) == state(b)
    c, _ = await run(tmp_path, "c", qs, hopeless, seed=4)
    warm = lambda s: {q for q, st, p, _ in s["questions"] if st == "done" and p is None}  # noqa: E731
    assert warm(state(c)) != warm(state(a))


async def test_a_small_run_is_searched_whole(tmp_path):
    qs = make_questions(WARMUP + BATCH - 1)
    run_dir, _ = await run(tmp_path, "run", qs, every_third(qs))
    rows = state(run_dir)["questions"]
    assert {st for _, st, _, _ in rows} == {"done"} and all(p is None for _, _, p, _ in rows)


async def test_include_skipped_searches_them_without_paying_twice(tmp_path):
    qs = make_questions(48)
    hopeless = every_third(qs)
    run_dir, _ = await run(tmp_path, "run", qs, hopeless)
    before = state(run_dir)
    skipped = [q for q, st, _, _ in before["questions"] if st == "skipped"]
    assert skipped
    cfg = config(include_skipped=True)
    ms = models(qs, hopeless)
    with RunStore(run_dir) as store:
        prepare_store(store, cfg, lambda: qs)  # the same run: include_skipped may change
        outcome = await run_search(cfg, store, models=ms)
        assert outcome.fatal is None and not outcome.errors
        rows = {d["id"]: d for d in store.questions()}
        assert summarize(store)["skipped"] == 0
    assert all(rows[q]["status"] == "done" and rows[q]["prefilter_p"] < 0.5 for q in skipped)
    # Their root answers were paid by the first run: asked again, they came from the cache.
    texts = {qs[int(q)].question for q in skipped}
    asked = [req.mcq.question for req, _ in ms["target"].calls if req.mcq is not None]
    assert not any(t in texts for t in asked)  # the original itself was never asked again
    written = [req.messages[-1][1] for req, _ in ms["proposer"].calls]
    assert all(any(t in w for w in written) for t in texts)  # and now each one is searched
    # A plain rerun afterwards leaves everything as it is.
    again = state(run_dir)
    await run(tmp_path, "run", qs, hopeless)
    assert state(run_dir) == again


def test_the_options_are_on_the_command_line(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["generate", "--help"], terminal_width=200).output
    for flag in ("--include-skipped", "--prefilter-warmup", "--prefilter-batch", "'auto'"):
        assert flag in out, flag
    res = runner.invoke(app, ["init", str(tmp_path / "cdv.toml")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "cdv.toml").read_text()
    assert "include_skipped" in text and "prefilter_warmup" in text
    assert "include_skipped" in SearchConfig.RESUMABLE_CHANGES
    assert replace(config(), include_skipped=True).differences(config().to_dict()) == []


# --- kill and resume -------------------------------------------------------------------------

DRIVER = """
import os, sys
sys.path.insert(0, {tests!r})
from cdvkit.models.scripted import PROBS_REGISTRY, REGISTRY
from scripted_helpers import marking_proposer
from test_prefilter_auto import make_questions, world

qs = make_questions(int(os.environ["CDV_AUTO_N"]))
respond, probs = world(qs, {{q.id for q in qs if int(q.id) % 3 == 0}})
REGISTRY["auto-target"], PROBS_REGISTRY["auto-target"] = respond, probs
REGISTRY["auto-prop"] = marking_proposer
from cdvkit.cli.app import main
main()
"""


def cdv_cmd(driver: Path, data: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, str(driver), "generate", "--data", str(data),
        "--target", "scripted/auto-target", "--proposer", "scripted/auto-prop",
        "--similarity-floor", "0", "--samples", "2", "--seed", "3", "--concurrency", "4",
        "--max-expansions", "4", "--prefilter", "auto", "--prefilter-threshold", "0.5",
        "--prefilter-warmup", str(WARMUP), "--prefilter-batch", str(BATCH),
        "--run-dir", str(run_dir), "--quiet",
    ]  # fmt: skip


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [0.35, 0.8])  # while answering the roots; mid-batch
def test_kill_and_resume_decides_the_same(tmp_path, kill_at):
    n = 40
    qs = make_questions(n)
    data = write_questions(tmp_path / "q.jsonl", qs)
    driver = tmp_path / "drive_auto.py"
    driver.write_text(DRIVER.format(tests=str(HERE)))

    def env(log: Path, delay: str) -> dict[str, str]:
        return {**os.environ, "CDV_AUTO_N": str(n), "CDV_SCRIPTED_LOG": str(log),
                "CDV_SCRIPTED_DELAY": delay, "HF_HUB_OFFLINE": "1"}  # fmt: skip

    ref_log = tmp_path / "ref.log"
    subprocess.run(cdv_cmd(driver, data, tmp_path / "ref"), env=env(ref_log, "0"), check=True,
                   timeout=300)  # fmt: skip
    ref = state(tmp_path / "ref")
    assert any(st == "skipped" for _, st, _, _ in ref["questions"]), "nothing was skipped"

    log = tmp_path / "killed.log"
    proc = subprocess.Popen(cdv_cmd(driver, data, tmp_path / "run"), env=env(log, "0.02"))
    target = int(len(log_lines(ref_log)) * kill_at)
    deadline = time.time() + 240
    while len(log_lines(log)) < target and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(random.Random(target).uniform(0, 0.02))
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = len(log_lines(log))
    stored = state(tmp_path / "run")["calls"]
    in_flight = sent - stored
    assert 0 <= in_flight <= 16

    subprocess.run(cdv_cmd(driver, data, tmp_path / "run"), env=env(log, "0"), check=True,
                   timeout=300)  # fmt: skip
    assert state(tmp_path / "run") == ref
    keys = [json.loads(x)["key"] for x in log_lines(log)]
    assert len(keys) - len(set(keys)) == in_flight  # only calls lost in flight were paid twice
