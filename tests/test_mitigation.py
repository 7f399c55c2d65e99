"""Mitigation: defense files, SFT / DPO export split by question, `cdv train` with TRL + LoRA.

The end-to-end test runs offline on a tiny GPT-2 and a byte-level BPE tokenizer built inside the
test: a run from the real search with scripted models, `cdv export --format dpo`, `cdv train`,
then the trained adapter loaded through `hf/` and evaluated with `cdv evaluate`.
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

from cdvkit.answers import read_answer
from cdvkit.data.question import LETTERS, Question
from cdvkit.evaluation import EvalSettings, evaluate, from_store, load_evaluation
from cdvkit.mitigation import (
    TRAIN_INFO_FILE,
    export_training,
    fit_rows_to_tokenizer,
    split_questions,
)
from cdvkit.mitigation.training_data import constructed_chosen, constructed_rejected
from cdvkit.models.base import MCQ
from cdvkit.models.hf_text import render_plain
from cdvkit.models.scripted import REGISTRY
from cdvkit.prompts import TARGET_SYSTEM, target_messages
from cdvkit.store import RunStore
from eval_helpers import QUESTIONS, defended_responder, make_run, register_models
from scripted_helpers import oracle_responder, scripted
from tiny_models import byte_bpe, save_plain_and_chat, tiny_gpt2

QS = [
    *QUESTIONS,
    Question("fire", "What color is a fire truck?", ("red", "teal", "gray", "pink"), 0, "vehicles"),
    Question("coal", "What color is coal?", ("white", "black", "gold"), 1, source="minerals"),
]
runner = CliRunner()


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
    register_models(QS)
    # Shuffled, as the paper's code does: the training tests then see the right answer under
    # several letters, so the tiny model cannot learn one letter for all of them.
    return make_run(tmp_path_factory.mktemp("mit") / "run", questions=QS, choice_order="shuffle")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_examples(run: Path) -> list[dict[str, Any]]:
    with RunStore(run, lock=False, readonly=True) as store:
        return list(store.examples())


# --- split and export (no torch) ----------------------------------------------------------------


def test_split_questions_is_seeded_disjoint_and_never_empty() -> None:
    ids = [f"q{i}" for i in range(10)]
    train, test = split_questions(reversed(ids), 0.3, seed=1)
    assert (len(train), len(test)) == (7, 3)
    assert set(train) | set(test) == set(ids) and not set(train) & set(test)
    # The order questions come in does not matter; the seed does.
    assert split_questions(ids, 0.3, seed=1) == (train, test)
    assert any(split_questions(ids, 0.3, seed=s)[1] != test for s in range(2, 8))
    assert split_questions(["a", "b"], 0.01, seed=0)[1] != []  # a positive share holds one out
    assert split_questions(["a", "b"], 0.99, seed=0)[0] != []  # and training keeps one
    assert split_questions(["a"], 0.5) == (["a"], [])
    with pytest.raises(ValueError, match="test-share"):
        split_questions(ids, 1.0)


def test_export_dpo_splits_by_original_question(cli_app: Any, run_dir: Path, tmp_path: Path):
    examples = run_examples(run_dir)
    # Several examples per question: the split must keep them together.
    assert len(examples) > len({e["question_id"] for e in examples})
    out = tmp_path / "dpo"
    res = cdv(cli_app, "export", run_dir, "--format", "dpo", "-o", out, "--test-share", 0.4)
    assert "train.jsonl" in res.output
    train, test = read_jsonl(out / "train.jsonl"), read_jsonl(out / "test.jsonl")
    train_q, test_q = {r["question_id"] for r in train}, {r["question_id"] for r in test}
    assert train_q and test_q and not train_q & test_q
    assert train_q | test_q == {e["question_id"] for e in examples}
    # Every example is a row, on its question's side.
    assert sorted((r["question_id"], r["example"]) for r in train + test) == sorted(
        (e["question_id"], e["path"]) for e in examples
    )
    held_out = read_jsonl(out / "test_examples.jsonl")
    assert {e["question_id"] for e in held_out} == test_q
    assert len(held_out) == sum(e["question_id"] in test_q for e in examples)
    assert {e["question_id"] for e in read_jsonl(out / "train_examples.jsonl")} == train_q
    manifest = json.loads((out / "split.json").read_text())
    assert sorted(manifest["test_questions"]) == sorted(test_q) and manifest["seed"] == 0

    again = tmp_path / "again"
    cdv(cli_app, "export", run_dir, "--format", "dpo", "-o", again, "--test-share", 0.4)
    assert (again / "test.jsonl").read_text() == (out / "test.jsonl").read_text()

    # The held-out split is something `cdv evaluate --examples` reads, as it is.
    res = cdv(
        cli_app,
        "evaluate",
        "--examples",
        out / "test_examples.jsonl",
        "--models",
        "scripted/oracle,scripted/robust",
        "--out",
        tmp_path / "eval",
        "--bootstrap",
        100,
        "--json",
    )
    entry = json.loads(res.stdout)["evaluations"][0]
    per_model = entry["results"]["scripted/oracle"]
    assert {i[0] for i in per_model["scripted/robust"]["items"]} == test_q
    assert per_model["scripted/oracle"]["overall"]["drop"] == 1.0


def test_dpo_rows_use_the_target_prompt_and_stored_replies(run_dir: Path, tmp_path: Path):
    # A copy: evaluation answers written below must not leak into the other tests' exports.
    run_dir = Path(shutil.copytree(run_dir, tmp_path / "run"))
    exp = export_training(run_dir, "dpo", tmp_path / "a", test_share=0)
    rows = read_jsonl(exp.path / "train.jsonl")
    by_key = {(e["question_id"], e["path"]): e for e in run_examples(run_dir)}
    for row in rows:
        ex = by_key[(row["question_id"], row["example"])]
        choices = ex["choices"]
        # Exactly the prompt the hf/ backend renders for a tokenizer without a chat template.
        assert row["prompt"] == render_plain(target_messages(ex["question"], choices))
        assert row["chosen"].startswith(" ") and row["rejected"].startswith(" ")
        chosen = read_answer(row["chosen"], choices)
        rejected = read_answer(row["rejected"], choices)
        assert chosen.index == ex["answer"]
        assert rejected.index is not None and rejected.index != ex["answer"]
        # The search stored the target's wrong replies; no model answered right yet.
        assert row["rejected_source"] == "target"
        assert row["rejected"] == f" I think so. Answer: {LETTERS[rejected.index]}"
        assert row["chosen_source"] == "constructed" and "correct choice" in row["chosen"]

    # Once a model answered the distracted questions right, its replies become the chosen ones.
    async def evaluate_robust() -> None:
        backends = {"scripted/robust": scripted("robust", oracle_responder(QS, fooled_at=99))}
        with RunStore(run_dir) as store:
            await evaluate(
                [from_store(store)],
                ["scripted/robust"],
                store=store,
                backends=backends,
                settings=EvalSettings(resamples=0, all_examples=True),
            )

    asyncio.run(evaluate_robust())
    rows = read_jsonl(
        export_training(run_dir, "dpo", tmp_path / "b", test_share=0).path / "train.jsonl"
    )
    assert all(r["chosen_source"] == "evaluated:scripted/robust" for r in rows)
    assert all(r["chosen"] == f" Step by step... Answer: {r['answer']}" for r in rows)

    short = export_training(run_dir, "dpo", tmp_path / "c", test_share=0, response="short")
    for r in read_jsonl(short.path / "train.jsonl"):
        assert r["chosen"] == f" Answer: {r['answer']}" and r["rejected"] != r["chosen"]
        assert r["rejected"].startswith(" Answer: ") and r["chosen_source"] == "constructed"


def test_chat_and_sft_shapes(run_dir: Path, tmp_path: Path):
    by_key = {(e["question_id"], e["path"]): e for e in run_examples(run_dir)}
    dpo = read_jsonl(
        export_training(run_dir, "dpo", tmp_path / "d", chat=True).path / "train.jsonl"
    )
    sft = read_jsonl(export_training(run_dir, "sft", tmp_path / "s").path / "train.jsonl")
    sft_chat = read_jsonl(
        export_training(run_dir, "sft", tmp_path / "sc", chat=True, first_only=True).path
        / "train.jsonl"
    )
    for r in dpo:
        ex = by_key[(r["question_id"], r["example"])]
        assert r["prompt"] == target_messages(ex["question"], ex["choices"])
        assert [m["role"] for m in r["chosen"] + r["rejected"]] == ["assistant", "assistant"]
    for r in sft:
        ex = by_key[(r["question_id"], r["example"])]
        assert set(r) >= {"prompt", "completion"} and "chosen" not in r
        assert read_answer(r["completion"], ex["choices"]).index == ex["answer"]
    assert len({r["question_id"] for r in sft_chat}) == len(sft_chat)  # --first-only
    for r in sft_chat:
        ex = by_key[(r["question_id"], r["example"])]
        msgs = r["messages"]
        assert msgs[:2] == target_messages(ex["question"], ex["choices"])
        assert msgs[2]["role"] == "assistant"
        assert read_answer(msgs[2]["content"], ex["choices"]).index == ex["answer"]


def test_constructed_answers_parse_and_name_the_pushed_option() -> None:
    choices = ("blue", "green", "red", "yellow")
    assert read_answer(constructed_chosen(choices, 0), choices).index == 0
    wrong = constructed_rejected(choices, 0, "red")
    assert read_answer(wrong, choices).index == 2 and '"red"' in wrong
    # Unknown pushed option: some wrong choice, never the right one.
    assert read_answer(constructed_rejected(choices, 0, None), choices).index == 1
    assert constructed_rejected(choices, 3, "yellow", "short") == "Answer: A"


def test_export_errors(cli_app: Any, run_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(cli_app, ["export", str(run_dir), "--format", "dpo", "--response", "x"])
    assert res.exit_code == 2 and "unknown response style" in res.output
    res = runner.invoke(cli_app, ["export", str(run_dir), "--format", "sft", "--test-share", "1"])
    assert res.exit_code == 2 and "test-share" in res.output
    with RunStore(tmp_path / "empty") as store:
        store.set_config({"target": "scripted/oracle"})
    with pytest.raises(ValueError, match="no CDV example"):
        export_training(tmp_path / "empty", "sft")


class _PlainTokenizer:
    chat_template = None


class _NoSystemTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages: list[dict[str, str]], **kw: Any) -> str:
        if any(m["role"] == "system" for m in messages):
            raise ValueError("System role not supported")
        return str(messages)


def test_rows_follow_the_tokenizer_like_the_hf_backend(run_dir: Path, tmp_path: Path) -> None:
    plain = read_jsonl(
        export_training(run_dir, "dpo", tmp_path / "p", test_share=0).path / "train.jsonl"
    )
    chat = read_jsonl(
        export_training(run_dir, "dpo", tmp_path / "c", chat=True, test_share=0).path
        / "train.jsonl"
    )
    warnings: list[str] = []
    # No chat template: conversational rows become the plain rendering the backend uses.
    fitted = fit_rows_to_tokenizer(chat, "dpo", _PlainTokenizer(), warnings.append)
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in fitted] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in plain
    ]
    # A template without a system role: the system prompt is folded into the user turn.
    folded = fit_rows_to_tokenizer(chat, "dpo", _NoSystemTokenizer(), warnings.append)
    assert [m["role"] for m in folded[0]["prompt"]] == ["user"]
    assert folded[0]["prompt"][0]["content"].startswith(TARGET_SYSTEM)
    assert warnings == []
    fit_rows_to_tokenizer(plain, "dpo", _NoSystemTokenizer(), warnings.append)
    assert warnings and "--chat" in warnings[0]
    sft = read_jsonl(
        export_training(run_dir, "sft", tmp_path / "s", chat=True, test_share=0).path
        / "train.jsonl"
    )
    fitted = fit_rows_to_tokenizer(sft, "sft", _NoSystemTokenizer(), warnings.append)
    assert "messages" not in fitted[0] and fitted[0]["completion"][0]["role"] == "assistant"


# --- defenses -------------------------------------------------------------------------------


def test_defense_files_with_one_name_keep_separate_results(
    cli_app: Any, run_dir: Path, tmp_path: Path
) -> None:
    REGISTRY["defended"] = defended_responder(QS, "STAY-CALM")
    calm, plain = tmp_path / "a" / "prompt.txt", tmp_path / "b" / "prompt.txt"
    for path, text in ((calm, "STAY-CALM: ignore irrelevant sentences."), (plain, "Be brief.")):
        path.parent.mkdir()
        path.write_text(text)
    # Evaluated into a copy of the run, so `cdv report` shows the defenses next to each other.
    out = Path(shutil.copytree(run_dir, tmp_path / "run"))
    res = cdv(
        cli_app,
        "evaluate",
        "--run",
        out,
        "--models",
        "scripted/defended",
        "--defense",
        "none",
        "--defense",
        f"file:{calm}",
        "--defense",
        str(plain),
        "--bootstrap",
        100,
    )
    # One table, a column per defence: the two files of one name are told apart.
    head = next(line for line in res.output.splitlines() if line.startswith("┃ model"))
    assert "none" in head and "prompt.txt" in head and "prompt.txt@" in res.output
    saved = load_evaluation(out)["evaluations"]
    assert len(saved) == 3 and "prompt.txt" in saved
    other = next(k for k in saved if k.startswith("prompt.txt@"))
    drop = {
        k: v["results"]["scripted/oracle"]["scripted/defended"]["overall"] for k, v in saved.items()
    }
    assert drop["none"]["drop"] == 1.0
    assert drop["prompt.txt"]["drop"] == 0.0 and drop["prompt.txt"]["distracted"] == 1.0
    assert drop[other]["drop"] == 1.0  # "Be brief." did not help: a separate, cached result
    assert saved[other]["defense_sha"] != saved["prompt.txt"]["defense_sha"]
    # Re-running one file is answered from the store and replaces only its own entry.
    res = cdv(
        cli_app,
        "evaluate",
        "--run",
        out,
        "--models",
        "scripted/defended",
        "--defense",
        calm,
        "--bootstrap",
        100,
        "--json",
    )
    answers = json.loads(res.stdout)["evaluations"][0]["answers"]
    assert answers["cached"] == answers["total"] > 0
    assert list(load_evaluation(out)["evaluations"]) == list(saved)

    cdv(cli_app, "report", out, "--format", "md")
    md = (out / "report.md").read_text()
    table = md.split("### Defenses side by side")[1].split("###")[0]
    row = next(line for line in table.splitlines() if line.startswith("| scripted/defended"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    labels = [c.strip() for c in header.strip("|").split("|")][1:]
    by_label = dict(zip(labels, cells, strict=True))
    assert by_label["none"].startswith("100.0% → 0.0% (drop 100.0%")
    assert by_label["prompt.txt"].startswith("100.0% → 100.0% (drop 0.0%")

    missing = f"file:{tmp_path / 'nope.txt'}"
    res = runner.invoke(
        cli_app,
        ["evaluate", "--run", str(run_dir), "--models", "scripted/defended", "--defense", missing],
    )
    assert res.exit_code == 2 and "not found" in res.output


# --- training with TRL on a tiny model -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-layer GPT-2 (hidden 32) saved twice: with a plain tokenizer and with a chat one.

    The BPE vocabulary is trained on the run's own prompts and answers, so rows are a few dozen
    tokens. The wide init makes the model's letter choice depend on the question, so the
    training can move each prompt's probabilities its own way.
    """
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("tiny")
    corpus = ["<|system|> <|user|> <|assistant|> " + TARGET_SYSTEM]
    for fmt, response in (("dpo", "auto"), ("sft", "short")):
        exp = export_training(run_dir, fmt, root / f"corpus-{fmt}", test_share=0, response=response)
        for r in read_jsonl(exp.path / "train.jsonl"):
            corpus.append(r["prompt"] + r.get("chosen", r.get("completion", "")))
            corpus.append(r.get("rejected", ""))
    tok = byte_bpe(corpus * 3, vocab_size=600)
    return save_plain_and_chat(root, tok, tiny_gpt2(tok, initializer_range=0.2))


def _trl_args(cls: Any, out: Path, **kw: Any) -> Any:
    return cls(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        gradient_checkpointing=False,
        **kw,
    )


@pytest.mark.parametrize("fmt", ["sft", "dpo"])
def test_exported_files_load_with_datasets_and_train_with_trl(
    fmt: str, run_dir: Path, tiny: dict[str, Path], tmp_path: Path
) -> None:
    """The files as written, through `datasets.load_dataset("json")`, straight into TRL."""
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    for chat in (False, True):
        exp = export_training(run_dir, fmt, tmp_path / f"{fmt}-{chat}", chat=chat)
        ds = datasets.load_dataset(
            "json",
            data_files={
                "train": str(exp.path / "train.jsonl"),
                "test": str(exp.path / "test.jsonl"),
            },
            cache_dir=str(tmp_path / "cache"),
        )
        assert ds["train"].num_rows == exp.train and ds["test"].num_rows == exp.test
        expected = {"sft": {"prompt", "completion"}, "dpo": {"prompt", "chosen", "rejected"}}[fmt]
        if fmt == "sft" and chat:
            expected = {"messages"}
        assert expected <= set(ds["train"].column_names)
        model_dir = tiny["chat" if chat else "plain"]
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
        lora = peft.LoraConfig(
            r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"
        )
        if fmt == "dpo":
            trainer: Any = trl.DPOTrainer(
                model=model,
                args=_trl_args(trl.DPOConfig, tmp_path / "o"),
                train_dataset=ds["train"],
                processing_class=tokenizer,
                peft_config=lora,
            )
        else:
            trainer = trl.SFTTrainer(
                model=model,
                args=_trl_args(trl.SFTConfig, tmp_path / "o"),
                train_dataset=ds["train"],
                processing_class=tokenizer,
                peft_config=lora,
            )
        out = trainer.train()
        assert trainer.state.global_step == 1 and math.isfinite(out.training_loss)


async def _label_probs(spec: str, rows: list[dict[str, Any]]) -> list[list[float]]:
    from cdvkit.models.registry import load_model

    model = load_model(spec, device="cpu")
    try:
        return [
            (
                await model.choice_probs(
                    target_messages(r["question"], r["choices"]),
                    MCQ(r["question"], tuple(r["choices"])),
                )
            ).probs
            for r in rows
        ]
    finally:
        await model.aclose()


def test_sft_train_merge_and_hf_loading(
    cli_app: Any, run_dir: Path, tiny: dict[str, Path], tmp_path: Path
):
    pytest.importorskip("trl")
    data = tmp_path / "sft"
    cdv(cli_app, "export", run_dir, "--format", "sft", "-o", data, "--chat")
    out = tmp_path / "merged"
    res = cdv(
        cli_app,
        "train",
        "--data",
        data,
        "--model",
        f"hf/{tiny['chat']}",
        "--method",
        "sft",
        "--max-steps",
        3,
        "--lr",
        "1e-2",
        "--merge",
        "--output",
        out,
        "-q",
        "--json",
    )
    info = json.loads(res.stdout)
    assert info["steps"] == 3 and info["adapter"] is False and info["device"] == "cpu"
    assert (out / "config.json").is_file() and (out / "adapter" / "adapter_config.json").is_file()
    meta = json.loads((out / TRAIN_INFO_FILE).read_text())
    assert meta["base_model"] == str(tiny["chat"].resolve()) and meta["merged"] is True
    rows = run_examples(run_dir)[:3]
    base, merged, adapter = (
        asyncio.run(_label_probs(f"hf/{p}", rows)) for p in (tiny["chat"], out, out / "adapter")
    )
    # The adapter (base + LoRA, merged at load) and the saved merged model are the same model,
    # and training changed it.
    for pm, pa in zip(merged, adapter, strict=True):
        assert pm == pytest.approx(pa, abs=1e-4)
    assert (
        max(
            abs(a - b)
            for pa, pb in zip(merged, base, strict=True)
            for a, b in zip(pa, pb, strict=True)
        )
        > 1e-3
    )

    res = runner.invoke(
        cli_app, ["train", "--data", str(data), "--model", f"hf/{tiny['chat']}", "--method", "dpo"]
    )
    assert res.exit_code == 2 and "not DPO data" in res.output
    res = runner.invoke(
        cli_app,
        ["train", "--data", str(data), "--model", f"hf/{tiny['chat']}", "--no-lora", "--merge"],
    )
    assert res.exit_code == 2 and "--merge" in res.output


def test_dpo_end_to_end_moves_choice_probabilities(
    cli_app: Any, run_dir: Path, tiny: dict[str, Path], tmp_path: Path
):
    """Export DPO data from a run, train a LoRA adapter on CPU, load it through hf/, and check
    that on the training prompts P(chosen letter) went up from the base model's."""
    pytest.importorskip("trl")
    data = tmp_path / "dpo"
    base = f"hf/{tiny['plain']}"
    cdv(
        cli_app,
        "export",
        run_dir,
        "--format",
        "dpo",
        "-o",
        data,
        "--first-only",
        "--test-share",
        0.2,
    )
    train_rows = read_jsonl(data / "train.jsonl")
    test_q = {r["question_id"] for r in read_jsonl(data / "test.jsonl")}
    assert len(train_rows) == 4 and len(test_q) == 1
    out = tmp_path / "adapter"
    cdv(
        cli_app,
        "train",
        "--data",
        data,
        "--model",
        base,
        "--method",
        "dpo",
        "--lora",
        "--max-steps",
        20,
        "--lr",
        "1e-2",
        "--lora-r",
        16,
        "--lora-alpha",
        32,
        "--batch-size",
        4,
        "--output",
        out,
        "-q",
    )
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny["plain"].resolve()
    )
    by_key = {(e["question_id"], e["path"]): e for e in run_examples(run_dir)}
    examples = [by_key[(r["question_id"], r["example"])] for r in train_rows]
    before = asyncio.run(_label_probs(base, examples))
    after = asyncio.run(_label_probs(f"hf/{out}", examples))
    gains = []
    for ex, row, pb, pa in zip(examples, train_rows, before, after, strict=True):
        right = ex["answer"]
        wrong = read_answer(row["rejected"], ex["choices"]).index
        assert pa[right] > pb[right], (ex["question_id"], pb, pa)
        # The preference the DPO loss optimises: chosen over rejected, relative to the base.
        assert math.log(pa[right] / pa[wrong]) > math.log(pb[right] / pb[wrong])
        gains.append(pa[right] - pb[right])
    assert sum(gains) / len(gains) > 0.1

    # Before / after in one `cdv evaluate` call: held-out questions and the training ones.
    res = cdv(
        cli_app,
        "evaluate",
        "--examples",
        f"heldout={data / 'test_examples.jsonl'}",
        "--examples",
        f"train={data / 'train_examples.jsonl'}",
        "--models",
        base,
        f"hf/{out}",
        "--scoring",
        "exact",
        "--bootstrap",
        200,
        "--out",
        tmp_path / "eval",
        "--json",
    )
    entry = json.loads(res.stdout)["evaluations"][0]
    held = entry["results"]["heldout"]
    assert {i[0] for i in held[f"hf/{out}"]["items"]} == test_q
    trained = entry["results"]["train"][f"hf/{out}"]["overall"]
    untrained = entry["results"]["train"][base]["overall"]
    assert len(trained["drop_ci"]) == 2 and trained["n"] == 4
    argmax_right = [
        max(range(len(p)), key=p.__getitem__) == e["answer"]
        for p, e in zip(after, examples, strict=True)
    ]
    assert trained["distracted"] == pytest.approx(sum(argmax_right) / 4)
    assert trained["distracted"] > untrained["distracted"]
