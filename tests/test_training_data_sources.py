"""SFT / DPO rows take the rejected answer from the run's TARGET only (issue 19, item 9).

A rejected reply is one of the target's own wrong replies under the protocol, read back whole
from the run's call cache, or a constructed answer marked as such and counted in the export's
summary. After `cdv evaluate` of other models, none of their replies becomes a rejected one;
a right reply of an evaluated model may be the chosen one, and the row says whose it is.

The runs come from the real search with scripted models. The target's replies to distracted
questions are longer than the 300 characters a node keeps and begin with a marker the kept tail
lacks, so a row holding the marker holds the whole reply.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.answers import read_answer
from cdvkit.data.question import LETTERS, Question
from cdvkit.mitigation import export_training
from cdvkit.mitigation.freeform import STORED_REPLY_LIMIT
from cdvkit.mitigation.training_data import constructed_rejected
from cdvkit.models.base import GenerateRequest
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import target_request
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from cdvkit.tasks.prompts import free_target_request
from eval_helpers import QUESTIONS, oracle_probs
from freeform_helpers import FREE_QUESTIONS, free_oracle, free_proposer
from scripted_helpers import MARK, marking_proposer, oracle_responder, scripted

QS = [*QUESTIONS, Question("coal", "What color is coal?", ("white", "black", "gold"), 1)]
MUTE = "coal"  # distracted, the target gives no answer the reader can read: nothing to train on
OWN = "OWN-REASONING"  # opens every long reply of the target; the stored 300-char tail lacks it
LEAK = "LEAKY-MARK"  # in every reply of the other evaluated model, which is wrong when distracted
STRONG = "STRONG-MARK"  # in every reply of an evaluated model that is never fooled
runner = CliRunner()


def original_of(text: str, questions: list[Question]) -> Question:
    return next(q for q in questions if q.question in text)


def own_target(req: GenerateRequest, sample: int) -> str:
    """Right and brief on undistracted questions; distracted, a long wrong reply (or, for
    ``MUTE``, one naming no choice)."""
    mcq = req.mcq
    assert mcq is not None
    q = original_of(mcq.question, QS)
    if MARK not in mcq.question:
        return f"Step by step... Answer: {LETTERS[mcq.choices.index(q.answer_text)]}"
    if q.id == MUTE:
        return "I would rather not say."
    wrong = next(i for i, c in enumerate(mcq.choices) if c != q.answer_text)
    return (
        f"{OWN} {q.id} #{sample}: " + "the context matters, " * 20 + f"\nAnswer: {LETTERS[wrong]}"
    )


def marked(responder: Any, mark: str) -> Any:
    return lambda req, sample: f"{mark} says so. {responder(req, sample)}"


def own_free_target(req: GenerateRequest, sample: int) -> str:
    """The free-form oracle, with a long opening on its (wrong) distracted replies."""
    reply = free_oracle()(req, sample)
    if MARK in req.messages[-1][1]:
        return f"{OWN} #{sample}: " + "the context matters, " * 20 + "\n" + reply
    return reply


async def _search(run_dir: Path, cfg: SearchConfig, target: Any, proposer: Any, qs: list) -> Path:
    models = {"target": target, "proposer": scripted(cfg.proposer.split("/")[1], proposer)}
    with RunStore(run_dir) as store:
        prepare_store(store, cfg, lambda: qs)
        outcome = await run_search(cfg, store, models=models)
        assert outcome.fatal is None and outcome.errors == [], outcome
    return run_dir


def mc_run(run_dir: Path, protocol: str = "sample") -> Path:
    """The search scores by choice probabilities; the protocol (``sample``: 2 step-by-step
    answers, read back from the verification's calls; ``exact``: no reply at all) confirms."""
    cfg = SearchConfig(
        target="scripted/own-target",
        proposer="scripted/prop",
        similarity_floor=0,
        samples=2,
        max_good=2,
        concurrency=4,
        protocol=protocol,
    )
    target = scripted("own-target", own_target, probs_fn=oracle_probs(QS))
    return asyncio.run(_search(run_dir, cfg, target, marking_proposer, QS))


def cdv(*args: Any) -> Any:
    from cdvkit.cli.app import app

    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def rows_of(out: Path) -> list[dict[str, Any]]:
    return read_jsonl(out / "train.jsonl") + read_jsonl(out / "test.jsonl")


def examples_of(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    with RunStore(run, lock=False, readonly=True) as store:
        return {(e["question_id"], e["path"]): e for e in store.examples()}


def texts(row: dict[str, Any]) -> list[str]:
    """Every answer a row holds, plain or conversational."""
    out = []
    for name in ("chosen", "rejected", "completion", "messages"):
        value = row.get(name)
        if isinstance(value, list):
            out += [m["content"] for m in value if m["role"] == "assistant"]
        elif isinstance(value, str):
            out.append(value)
    return out


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    REGISTRY["leaky"] = marked(oracle_responder(QS), LEAK)
    REGISTRY["strong"] = marked(oracle_responder(QS, fooled_at=99), STRONG)
    run = mc_run(tmp_path_factory.mktemp("sources") / "run")
    cdv(
        "evaluate",
        "--run",
        run,
        "--models",
        "scripted/leaky,scripted/strong",
        "--all-examples",
        "--bootstrap",
        50,
        "-q",
    )
    return run


def test_after_evaluating_another_model_no_rejected_reply_is_its(
    evaluated_run: Path, tmp_path: Path
) -> None:
    examples = examples_of(evaluated_run)
    with RunStore(evaluated_run, lock=False, readonly=True) as store:
        evaluated = {
            json.loads(d)["model"] for (d,) in store.db.execute("SELECT data FROM evaluations")
        }
    assert evaluated == {"scripted/leaky", "scripted/strong"}  # their answers are in the run
    out = tmp_path / "dpo"
    res = cdv("export", evaluated_run, "--format", "dpo", "-o", out, "--test-share", 0.3)
    rows = rows_of(out)
    assert sorted((r["question_id"], r["example"]) for r in rows) == sorted(examples)
    assert not any(LEAK in t for r in rows for t in texts(r))
    own = [r for r in rows if r["rejected_source"] == "target"]
    made = [r for r in rows if r["rejected_source"] == "constructed"]
    assert {r["question_id"] for r in made} == {MUTE}
    assert own and {r["question_id"] for r in own} == {q.id for q in QS} - {MUTE}
    for r in own:
        ex = examples[(r["question_id"], r["example"])]
        # The target's whole reply as it gave it, not the 300-character tail the node keeps.
        req = target_request(ex["question"], ex["choices"], temperature=0.01)
        assert r["rejected"] == f" {own_target(req, 0)}"
        assert r["rejected"].startswith(f" {OWN} ") and len(r["rejected"]) > STORED_REPLY_LIMIT
        wrong = read_answer(r["rejected"], tuple(ex["choices"])).index
        assert wrong is not None and wrong != ex["answer"]
    for r in made:
        ex = examples[(r["question_id"], r["example"])]
        choices = tuple(ex["choices"])
        pushed = constructed_rejected(choices, ex["answer"], ex["target_option"])
        assert r["rejected"] == f" {pushed}"
    # A right reply of an evaluated model may be chosen, and says whose it is.
    for r in rows:
        assert r["chosen_source"] == "evaluated:scripted/strong" and STRONG in r["chosen"]
        ex = examples[(r["question_id"], r["example"])]
        assert read_answer(r["chosen"], tuple(ex["choices"])).index == ex["answer"]
    # The summary counts rows with the target's reply and constructed ones, in split.json and
    # in what `cdv export` prints.
    sources = json.loads((out / "split.json").read_text())["sources"]
    assert sources["rejected"] == {"target": len(own), "constructed": len(made)}
    assert sources["chosen"] == {"evaluated:scripted/strong": len(rows)}
    out_text = " ".join(res.output.split())
    assert (
        f"rejected: {len(own)} row(s) with the target's own wrong reply, {len(made)} constructed "
        "(the target left no wrong reply that reads as its answer)" in out_text
    )
    assert f"{len(rows)} with an evaluated model's right reply (scripted/strong {len(rows)})" in (
        out_text
    )

    # SFT rows hold no reply of the fooled model either, and count their chosen sources.
    sft = tmp_path / "sft"
    res = cdv("export", evaluated_run, "--format", "sft", "-o", sft, "--chat")
    sft_rows = rows_of(sft)
    assert len(sft_rows) == len(rows) and not any(LEAK in t for r in sft_rows for t in texts(r))
    assert all("rejected_source" not in r for r in sft_rows)
    assert json.loads((sft / "split.json").read_text())["sources"] == {
        "chosen": {"evaluated:scripted/strong": len(rows)}
    }
    assert "rejected:" not in res.output


def test_constructed_answers_are_marked_and_counted(evaluated_run: Path, tmp_path: Path) -> None:
    # Asked for constructed answers, every row says so, whatever the run stored.
    exp = export_training(evaluated_run, "dpo", tmp_path / "short", test_share=0, response="short")
    rows = rows_of(exp.path)
    assert all(r["chosen_source"] == r["rejected_source"] == "constructed" for r in rows)
    assert exp.sources == {
        "chosen": {"constructed": len(rows)},
        "rejected": {"target": 0, "constructed": len(rows)},
    }
    assert exp.summary()[0].startswith(
        f"rejected: 0 row(s) with the target's own wrong reply, {len(rows)} constructed"
    )


def test_exact_protocol_leaves_no_reply_so_rejected_is_constructed(tmp_path: Path) -> None:
    """Exact scoring reads log-probs: the target left no text, so every rejected answer is the
    constructed one naming the pushed option, even with another model's replies in the run."""
    run = mc_run(tmp_path / "run", protocol="exact")
    REGISTRY["leaky"] = marked(oracle_responder(QS), LEAK)
    cdv(
        "evaluate",
        "--run",
        run,
        "--models",
        "scripted/leaky",
        "--protocol",
        "sample",
        "--all-examples",
        "--bootstrap",
        50,
        "-q",
    )
    examples = examples_of(run)
    out = tmp_path / "dpo"
    res = cdv("export", run, "--format", "dpo", "-o", out, "--chat")
    rows = rows_of(out)
    assert rows and len(rows) == len(examples)
    assert not any(LEAK in t for r in rows for t in texts(r))
    for r in rows:
        ex = examples[(r["question_id"], r["example"])]
        pushed = constructed_rejected(tuple(ex["choices"]), ex["answer"], ex["target_option"])
        assert r["rejected_source"] == "constructed" and r["rejected"][0]["content"] == pushed
        assert r["chosen_source"] == "constructed"
    sources = json.loads((out / "split.json").read_text())["sources"]
    assert sources["rejected"] == {"target": 0, "constructed": len(rows)}
    assert f"rejected: 0 row(s) with the target's own wrong reply, {len(rows)} constructed" in (
        " ".join(res.output.split())
    )


def test_free_form_rejected_is_the_targets_whole_reply(tmp_path: Path) -> None:
    cfg = SearchConfig(
        target="scripted/free-own",
        proposer="scripted/free-prop",
        similarity_floor=0,
        samples=2,
        max_good=2,
        concurrency=4,
    )
    target = scripted("free-own", own_free_target)
    run = asyncio.run(_search(tmp_path / "run", cfg, target, free_proposer, FREE_QUESTIONS))
    REGISTRY["free-leaky"] = marked(free_oracle(), LEAK)
    REGISTRY["free-strong"] = marked(free_oracle(fooled_at=99), STRONG)
    cdv(
        "evaluate",
        "--run",
        run,
        "--models",
        "scripted/free-leaky,scripted/free-strong",
        "--all-examples",
        "--bootstrap",
        50,
        "-q",
    )
    examples = examples_of(run)
    exp = export_training(run, "dpo", tmp_path / "dpo", test_share=0)
    rows = rows_of(exp.path)
    assert len(rows) == len(examples)
    assert not any(LEAK in t for r in rows for t in texts(r))
    for r in rows:
        ex = examples[(r["question_id"], r["example"])]
        req = free_target_request(ex["question"], ex["task"], temperature=0.01)
        assert r["rejected_source"] == "target"
        assert r["rejected"] == f" {own_free_target(req, 0)}"
        assert len(r["rejected"]) > STORED_REPLY_LIMIT
        assert r["chosen_source"] == "evaluated:scripted/free-strong" and STRONG in r["chosen"]
    assert exp.sources["rejected"] == {"target": len(rows), "constructed": 0}


def test_a_store_without_call_owners_still_gives_whole_target_replies(
    evaluated_run: Path, tmp_path: Path
) -> None:
    """Runs written before calls had owners: the replies are found by their question's text."""
    before = rows_of(export_training(evaluated_run, "dpo", tmp_path / "a", test_share=0).path)
    run = Path(shutil.copytree(evaluated_run, tmp_path / "run"))
    with sqlite3.connect(run / "run.db") as db:
        db.execute("DELETE FROM call_owners")
    after = rows_of(export_training(run, "dpo", tmp_path / "b", test_share=0).path)
    assert any(r["rejected"].startswith(f" {OWN} ") for r in after)
    assert [(r["rejected"], r["rejected_source"], r["chosen"]) for r in after] == [
        (r["rejected"], r["rejected_source"], r["chosen"]) for r in before
    ]
