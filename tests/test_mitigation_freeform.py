"""Mitigation on free-form (numeric) runs: SFT / DPO export and `cdv train`.

The run comes from the real search with scripted models (tests/freeform_helpers.py): the target
answers "Answer: <reference>" unless distracted, then the number the distraction pushed. Training
runs offline on a tiny GPT-2 whose byte-level BPE tokenizer is built inside the test.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdvkit.data.question import NUMERIC, SHORT_ANSWER
from cdvkit.mitigation import TRAIN_INFO_FILE, export_training, fit_rows_to_tokenizer
from cdvkit.mitigation.freeform import (
    STORED_REPLY_LIMIT,
    constructed_free_chosen,
    constructed_free_rejected,
    free_target_messages,
    stored_free_reply,
)
from cdvkit.models.base import GenerateRequest
from cdvkit.models.hf_text import render_plain
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import prompt_set
from cdvkit.store import RunStore
from cdvkit.tasks import AnswerKey
from cdvkit.tasks.prompts import free_target_request, free_target_system
from freeform_helpers import FREE_QUESTIONS, free_oracle, make_free_run, register_free_models
from scripted_helpers import scripted
from tiny_models import byte_bpe, save_plain_and_chat, tiny_gpt2

runner = CliRunner()
REFERENCES = {q.id: q.references[0] for q in FREE_QUESTIONS}


@pytest.fixture(scope="module")
def cli_app() -> Any:
    from cdvkit.cli.app import app

    return app


def cdv(app: Any, *args: Any) -> Any:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_free_models()
    return make_free_run(tmp_path_factory.mktemp("freemit") / "run")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_examples(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    with RunStore(run, lock=False, readonly=True) as store:
        return {(e["question_id"], e["path"]): e for e in store.examples()}


def key_of(ex: dict[str, Any]) -> AnswerKey:
    return AnswerKey(ex["task"], tuple(ex["references"]))


def reads_right(key: AnswerKey, reply: str) -> bool:
    return key.is_right(key.read(reply).answer)


def reads_wrong(key: AnswerKey, reply: str) -> bool:
    answer = key.read(reply).answer
    return answer is not None and not key.is_right(answer)


# --- export (no torch) ------------------------------------------------------------------------


def test_free_run_has_examples_to_train_on(run_dir: Path) -> None:
    examples = run_examples(run_dir)
    assert {qid for qid, _ in examples} == set(REFERENCES)
    # Several examples per question, so the split has something to keep together.
    assert len(examples) > len(REFERENCES)
    for ex in examples.values():
        assert ex["task"] == NUMERIC and ex["choices"] == [] and ex["answer"] == -1
        assert ex["answer_text"] == REFERENCES[ex["question_id"]]


def test_dpo_rows_use_the_free_target_prompt_and_stored_replies(
    run_dir: Path, tmp_path: Path
) -> None:
    # A copy: evaluation answers written below must not leak into the other tests' exports.
    run_dir = Path(shutil.copytree(run_dir, tmp_path / "run"))
    examples = run_examples(run_dir)
    rows = read_jsonl(export_training(run_dir, "dpo", tmp_path / "a", test_share=0).path / TRAIN)
    assert sorted((r["question_id"], r["example"]) for r in rows) == sorted(examples)
    for row in rows:
        ex = examples[(row["question_id"], row["example"])]
        key = key_of(ex)
        # Exactly what the protocol sends the target, rendered as the hf/ backend renders it for
        # a tokenizer without a chat template.
        sent = free_target_request(ex["question"], NUMERIC, temperature=0.7).message_dicts
        assert sent == [
            {"role": "system", "content": free_target_system(NUMERIC)},
            {"role": "user", "content": ex["question"].strip()},
        ]
        assert row["prompt"] == render_plain(sent)
        assert row["chosen"].startswith(" ") and row["rejected"].startswith(" ")
        assert reads_right(key, row["chosen"]) and reads_wrong(key, row["rejected"])
        assert row["chosen"].rstrip().endswith(f"Answer: {REFERENCES[row['question_id']]}")
        assert row["answer"] == REFERENCES[row["question_id"]] and row["task"] == NUMERIC
        assert row["references"] == ex["references"]
        # The search stored the target's wrong replies; no model answered right yet.
        assert row["rejected_source"] == "target"
        assert row["rejected"].startswith(" Let me see, with that in mind it is ")
        assert row["chosen_source"] == "constructed" and "set them aside" in row["chosen"]

    # Once a model answered the distracted questions right, its replies become the chosen ones.
    async def evaluate_robust() -> None:
        from cdvkit.evaluation import EvalSettings, evaluate, from_store

        robust = scripted("free-robust", free_oracle(fooled_at=99))
        with RunStore(run_dir) as store:
            await evaluate(
                [from_store(store)],
                ["scripted/free-robust"],
                store=store,
                backends={"scripted/free-robust": robust},
                settings=EvalSettings(resamples=0, all_examples=True),
            )

    asyncio.run(evaluate_robust())
    rows = read_jsonl(export_training(run_dir, "dpo", tmp_path / "b", test_share=0).path / TRAIN)
    assert rows and all(r["chosen_source"] == "evaluated:scripted/free-robust" for r in rows)
    for r in rows:
        assert r["chosen"] == f" Step by step: the numbers give it.\nAnswer: {r['answer']}"
        assert reads_right(key_of(examples[(r["question_id"], r["example"])]), r["chosen"])

    # Constructed answers only: the rejected one names the answer the distraction pushed.
    for style, prefix in (("rationale", "Taking the context"), ("short", "Answer: ")):
        exp = export_training(run_dir, "dpo", tmp_path / style, test_share=0, response=style)
        for r in read_jsonl(exp.path / TRAIN):
            ex = examples[(r["question_id"], r["example"])]
            key = key_of(ex)
            assert r["chosen_source"] == r["rejected_source"] == "constructed"
            assert reads_right(key, r["chosen"]) and reads_wrong(key, r["rejected"])
            assert r["rejected"].startswith(f" {prefix}")
            assert r["rejected"].endswith(f"Answer: {ex['target_option']}")
            if style == "short":
                assert r["chosen"] == f" Answer: {r['answer']}"


def test_sft_and_chat_shapes(run_dir: Path, tmp_path: Path) -> None:
    examples = run_examples(run_dir)
    sft = read_jsonl(export_training(run_dir, "sft", tmp_path / "s").path / TRAIN)
    for r in sft:
        ex = examples[(r["question_id"], r["example"])]
        assert set(r) >= {"prompt", "completion"} and "chosen" not in r and "rejected" not in r
        assert r["prompt"] == render_plain(free_target_messages(ex["question"], NUMERIC))
        assert reads_right(key_of(ex), r["completion"])
    sft_chat = read_jsonl(
        export_training(
            run_dir, "sft", tmp_path / "sc", chat=True, first_only=True, test_share=0
        ).path
        / TRAIN
    )
    assert len(sft_chat) == len({r["question_id"] for r in sft_chat}) == len(REFERENCES)
    for r in sft_chat:
        ex = examples[(r["question_id"], r["example"])]
        msgs = r["messages"]
        assert msgs[:2] == free_target_messages(ex["question"], NUMERIC)
        assert msgs[2]["role"] == "assistant" and reads_right(key_of(ex), msgs[2]["content"])
    dpo_chat = read_jsonl(
        export_training(run_dir, "dpo", tmp_path / "dc", chat=True, test_share=0).path / TRAIN
    )
    for r in dpo_chat:
        ex = examples[(r["question_id"], r["example"])]
        assert r["prompt"] == free_target_messages(ex["question"], NUMERIC)
        assert [m["role"] for m in r["chosen"] + r["rejected"]] == ["assistant", "assistant"]
        assert reads_right(key_of(ex), r["chosen"][0]["content"])
        assert reads_wrong(key_of(ex), r["rejected"][0]["content"])
    # Conversational rows rendered for a tokenizer without a chat template are the plain ones.
    plain = read_jsonl(export_training(run_dir, "dpo", tmp_path / "dp", test_share=0).path / TRAIN)
    fitted = fit_rows_to_tokenizer(dpo_chat, "dpo", _PlainTokenizer(), _no_warning)
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in fitted] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in plain
    ]


class _PlainTokenizer:
    chat_template = None


def _no_warning(message: str) -> None:
    raise AssertionError(message)


def test_export_splits_free_runs_by_original_question(
    cli_app: Any, run_dir: Path, tmp_path: Path
) -> None:
    examples = run_examples(run_dir)
    out = tmp_path / "dpo"
    cdv(cli_app, "export", run_dir, "--format", "dpo", "-o", out, "--test-share", 0.4)
    train, test = read_jsonl(out / TRAIN), read_jsonl(out / "test.jsonl")
    train_q, test_q = {r["question_id"] for r in train}, {r["question_id"] for r in test}
    assert train_q and test_q and not train_q & test_q
    assert train_q | test_q == set(REFERENCES)
    # Every example is a row, on its question's side.
    assert sorted((r["question_id"], r["example"]) for r in train + test) == sorted(examples)
    held_out = read_jsonl(out / "test_examples.jsonl")
    assert {e["question_id"] for e in held_out} == test_q
    assert all(e["task"] == NUMERIC and e["choices"] == [] for e in held_out)
    assert {e["question_id"] for e in read_jsonl(out / "train_examples.jsonl")} == train_q
    manifest = json.loads((out / "split.json").read_text())
    assert sorted(manifest["test_questions"]) == sorted(test_q)
    assert sorted(manifest["train_questions"]) == sorted(train_q)

    # The held-out split is something `cdv evaluate --examples` reads, as it is.
    REGISTRY["free-robust"] = free_oracle(fooled_at=99)
    res = cdv(
        cli_app,
        "evaluate",
        "--examples",
        out / "test_examples.jsonl",
        "--models",
        "scripted/free-oracle,scripted/free-robust",
        "--out",
        tmp_path / "eval",
        "--bootstrap",
        100,
        "--json",
    )
    per_model = json.loads(res.stdout)["evaluations"][0]["results"]["scripted/free-oracle"]
    assert {i[0] for i in per_model["scripted/free-robust"]["items"]} == test_q
    assert per_model["scripted/free-oracle"]["overall"]["drop"] == 1.0
    assert per_model["scripted/free-robust"]["overall"]["drop"] == 0.0


def test_constructed_free_answers() -> None:
    money = AnswerKey(NUMERIC, ("$1,080",))
    # The number alone, as the free-form target prompt asks for it.
    assert constructed_free_chosen(money, "short") == "Answer: 1080"
    assert reads_right(money, constructed_free_chosen(money))
    gsm = AnswerKey(NUMERIC, ("She pays 3 * 6 = 18 dollars.\n#### 18",))
    assert constructed_free_chosen(gsm, "short") == "Answer: 18"
    half = AnswerKey(NUMERIC, ("1/2",))
    assert reads_right(half, constructed_free_chosen(half, "short"))
    wrong = constructed_free_rejected(money, "1,200")
    assert reads_wrong(money, wrong) and wrong.endswith("Answer: 1,200")
    # A pushed "wrong" answer that is in fact right is never the rejected one; a near miss is.
    assert constructed_free_rejected(money, "1080", "short") == "Answer: 1081"
    assert constructed_free_rejected(money, None, "short", ["990"]) == "Answer: 990"

    city = AnswerKey(SHORT_ANSWER, ("Paris", "Paris, France"))
    assert constructed_free_chosen(city, "short") == "Answer: Paris"
    assert reads_right(city, constructed_free_chosen(city))
    lyon = constructed_free_rejected(city, "Lyon")
    assert reads_wrong(city, lyon) and lyon.endswith("Answer: Lyon")
    # No wrong answer known: a reply that gives none, which is no right answer either.
    none = constructed_free_rejected(city, "paris")
    assert not reads_right(city, none) and "Answer" not in none


def test_stored_free_replies_must_be_whole_and_read_as_recorded() -> None:
    key = AnswerKey(NUMERIC, ("13",))
    assert stored_free_reply("So 16 - 3 = 13.\nAnswer: 13", key, right=True)
    assert stored_free_reply("So 16 - 3 = 13.\nAnswer: 13", key, right=False) is None
    assert stored_free_reply("x" * STORED_REPLY_LIMIT + "\nAnswer: 13", key, right=True) is None
    # Read back whole from the call cache, a long reply is one to train on.
    long = "x" * STORED_REPLY_LIMIT + "\nAnswer: 13"
    assert stored_free_reply(long, key, right=True, whole=True) == long
    assert stored_free_reply("I am not sure.", key, right=True) is None
    assert stored_free_reply("Answer: 14", key, right=False, answer="14")
    # Recorded as another answer (the extractor's reading): not a reply to train on.
    assert stored_free_reply("Answer: 14", key, right=False, answer="15") is None
    assert stored_free_reply(None, key, right=False) is None


# --- training with TRL on a tiny model ----------------------------------------------------------

TRAIN = "train.jsonl"


@pytest.fixture(scope="module")
def tiny(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-layer GPT-2 (hidden 32) saved with a plain tokenizer and with a chat one; the BPE
    vocabulary is trained on the free run's prompts and answers."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("trl")
    pytest.importorskip("peft")

    root = tmp_path_factory.mktemp("tinyfree")
    corpus = ["<|system|> <|user|> <|assistant|> " + free_target_system(NUMERIC)]
    for style in ("auto", "short"):
        exp = export_training(
            run_dir, "dpo", root / f"corpus-{style}", test_share=0, response=style
        )
        for r in read_jsonl(exp.path / TRAIN):
            corpus += [r["prompt"] + r["chosen"], r["rejected"]]
    tok = byte_bpe(corpus * 3, vocab_size=500)
    return save_plain_and_chat(root, tok, tiny_gpt2(tok))


def _completion_logprob(model_dir: Path, prompt: str, completion: str) -> float:
    """log P(completion | prompt) under the model saved in ``model_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(prompt + completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return float(sum(logp[i - 1, ids[i]] for i in range(len(p_ids), len(ids))))


def test_cdv_train_sft_and_dpo_on_a_free_run(
    cli_app: Any, run_dir: Path, tiny: dict[str, Path], tmp_path: Path
) -> None:
    """`cdv export` + `cdv train` on a numeric run: SFT raises the right answer's likelihood;
    DPO trains a LoRA adapter that hf/ loads and prompts with the free-form target prompt."""
    sft = tmp_path / "sft"
    cdv(cli_app, "export", run_dir, "--format", "sft", "-o", sft, "--test-share", 0)
    merged = tmp_path / "merged"
    res = cdv(
        cli_app,
        "train",
        "--data",
        sft,
        "--model",
        f"hf/{tiny['plain']}",
        "--method",
        "sft",
        "--max-steps",
        8,
        "--lr",
        "1e-2",
        "--merge",
        "--output",
        merged,
        "-q",
        "--json",
    )
    info = json.loads(res.stdout)
    assert info["steps"] == 8 and info["device"] == "cpu" and math.isfinite(info["train_loss"])
    assert json.loads((merged / TRAIN_INFO_FILE).read_text())["merged"] is True
    rows = read_jsonl(sft / TRAIN)
    gains = [
        _completion_logprob(merged, r["prompt"], r["completion"])
        - _completion_logprob(tiny["plain"], r["prompt"], r["completion"])
        for r in rows[:4]
    ]
    assert all(g > 0 for g in gains), gains

    dpo = tmp_path / "dpo"
    cdv(cli_app, "export", run_dir, "--format", "dpo", "-o", dpo, "--chat", "--first-only")
    adapter = tmp_path / "adapter"
    res = cdv(
        cli_app,
        "train",
        "--data",
        dpo,
        "--model",
        f"hf/{tiny['chat']}",
        "--method",
        "dpo",
        "--max-steps",
        2,
        "--batch-size",
        2,
        "--output",
        adapter,
        "-q",
        "--json",
    )
    info = json.loads(res.stdout)
    assert info["steps"] == 2 and info["adapter"] is True
    assert math.isfinite(info["train_loss"])
    assert (adapter / "adapter_config.json").is_file()

    async def reply() -> str:
        from cdvkit.models.registry import load_model

        model = load_model(f"hf/{adapter}", device="cpu")
        try:
            q = FREE_QUESTIONS[0]
            limits = prompt_set(max_tokens={"target": 8})
            req = free_target_request(q.question, NUMERIC, temperature=0.0, prompts=limits)
            assert isinstance(req, GenerateRequest)
            return (await model.generate(req)).texts[0]
        finally:
            await model.aclose()

    assert isinstance(asyncio.run(reply()), str)
