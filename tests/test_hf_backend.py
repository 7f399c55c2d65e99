"""hf/ backend on a tiny GPT-2 and a byte-level BPE tokenizer built offline inside the test."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from cdvkit.models.base import MCQ, GenerateRequest  # noqa: E402
from cdvkit.models.errors import BackendUnavailableError  # noqa: E402
from cdvkit.models.hf_backend import HFModel  # noqa: E402
from cdvkit.models.hf_text import render_plain  # noqa: E402
from cdvkit.models.registry import load_model  # noqa: E402
from cdvkit.prompts import TARGET_SYSTEM, render_mcq, target_messages  # noqa: E402
from tiny_models import CHAT_TEMPLATE, byte_bpe, tiny_gpt2  # noqa: E402

QUESTION = "Which animal barks?"
CHOICES = ("cat", "dog", "fish")


def _build_tokenizer() -> Any:
    # Byte-level BPE like GPT-2: any text encodes, and " A" (not "A") is the label token after
    # "Answer:" because the corpus only ever shows labels after a space.
    corpus = [
        "Answer: A Answer: B Answer: C Answer: D",
        f"{QUESTION} A. cat B. dog C. fish D. bird",
        "<|system|> <|user|> <|assistant|> " + TARGET_SYSTEM,
    ] * 5
    fast = byte_bpe(corpus, vocab_size=320)
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-gpt2")
    tok = _build_tokenizer()
    # A wide init makes the next-token distribution far from uniform, so a test comparing
    # probabilities would notice the wrong label tokens being read.
    tiny_gpt2(tok, n_layer=1, initializer_range=0.5).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> tuple[Any, Any]:
    """The same checkpoint loaded directly, for computing expected values by hand."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    return model, tok


@pytest.fixture(scope="module")
def hf(model_dir: Path) -> HFModel:
    model = load_model(f"hf/{model_dir}", device="cpu")
    assert isinstance(model, HFModel)
    return model


def _expected_prompt(messages: list[dict[str, str]]) -> str:
    body = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
    return body + "<|assistant|>"


def _direct_label_probs(reference: tuple[Any, Any], context: str, labels: list[str]) -> list[float]:
    """P(" X" | context) per label from full-sequence logits, renormalised over the labels."""
    model, tok = reference
    ctx = tok(context)["input_ids"]
    logps = []
    with torch.no_grad():
        for label in labels:
            whole = tok(context + " " + label)["input_ids"]
            assert whole[: len(ctx)] == ctx
            cont = whole[len(ctx) :]
            logits = model(torch.tensor([whole])).logits[0]
            logp = torch.log_softmax(logits, dim=-1)
            logps.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)))
    probs = torch.softmax(torch.tensor(logps, dtype=torch.float64), dim=0)
    return probs.tolist()


async def test_choice_probs_match_direct_computation(
    hf: HFModel, reference: tuple[Any, Any]
) -> None:
    messages = target_messages(QUESTION, CHOICES)
    scores = await hf.choice_probs(messages, MCQ(QUESTION, CHOICES))

    context = _expected_prompt(messages) + "Answer:"
    expected = _direct_label_probs(reference, context, ["A", "B", "C"])
    assert scores.probs == pytest.approx(expected, abs=1e-5)
    assert sum(scores.probs) == pytest.approx(1.0)
    # Not uniform, else the comparison above could not tell label tokens apart.
    assert max(scores.probs) - min(scores.probs) > 0.05
    _, tok = reference
    assert scores.usage.prompt_tokens == len(tok(context)["input_ids"])

    # The labels really are single " A"-style tokens here, distinct from the bare letters.
    assert len(tok(" A")["input_ids"]) == 1
    assert tok(" A")["input_ids"] != tok("A")["input_ids"]


async def test_multi_token_labels_sum_log_probs(hf: HFModel, reference: tuple[Any, Any]) -> None:
    # " E" and " F" never occur in the tokenizer's corpus, so they take two tokens each and the
    # backend must score whole token sequences instead of one next-token distribution.
    choices = ("cat", "dog", "fish", "bird", "cow", "owl")
    _, tok = reference
    assert len(tok(" F")["input_ids"]) > 1
    messages = target_messages(QUESTION, choices)
    scores = await hf.choice_probs(messages, MCQ(QUESTION, choices))
    context = _expected_prompt(messages) + "Answer:"
    expected = _direct_label_probs(reference, context, list("ABCDEF"))
    assert scores.probs == pytest.approx(expected, abs=1e-5)


async def test_plain_rendering_without_chat_template(
    model_dir: Path, reference: tuple[Any, Any]
) -> None:
    model = HFModel(f"hf/{model_dir}", str(model_dir), device="cpu")
    messages = target_messages(QUESTION, CHOICES)
    model.render(messages)  # loads the tokenizer
    model._tokenizer.chat_template = None
    prompt, templated = model.render(messages)
    assert not templated
    assert prompt == f"system: {TARGET_SYSTEM}\nuser: {render_mcq(QUESTION, CHOICES)}\nassistant:"
    assert prompt == render_plain(messages)
    scores = await model.choice_probs(messages, MCQ(QUESTION, CHOICES))
    expected = _direct_label_probs(reference, prompt + " Answer:", ["A", "B", "C"])
    assert scores.probs == pytest.approx(expected, abs=1e-5)


def _request(**kw: Any) -> GenerateRequest:
    kw.setdefault("max_tokens", 12)
    return GenerateRequest.make(target_messages(QUESTION, CHOICES), **kw)


async def test_sampling_is_deterministic_per_sample_index(hf: HFModel, model_dir: Path) -> None:
    req = _request(temperature=1.0, seed=7)
    batch = await hf.generate(req, 4)
    assert len(batch.texts) == 4
    assert len(set(batch.texts)) > 1, "samples of a random model should differ"

    tail = await hf.generate(replace(req, first_sample=2), 2)
    assert tail.texts == batch.texts[2:]

    fresh = HFModel(f"hf/{model_dir}", str(model_dir), device="cpu")
    again = await fresh.generate(replace(req, first_sample=1), 1)
    assert again.texts == [batch.texts[1]]

    other_seed = await hf.generate(replace(req, seed=8), 4)
    assert other_seed.texts != batch.texts

    assert batch.usage.completion_tokens > 0
    assert batch.usage.prompt_tokens > 0


async def test_greedy_matches_transformers_generate(
    hf: HFModel, reference: tuple[Any, Any]
) -> None:
    req = _request(temperature=0.0, max_tokens=10)
    result = await hf.generate(req, 2)
    assert result.texts[0] == result.texts[1]

    model, tok = reference
    ids = torch.tensor([tok(_expected_prompt(req.message_dicts))["input_ids"]])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.eos_token_id)
    expected = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert result.texts[0] == expected


async def test_stop_strings_truncate_at_first_stop(hf: HFModel) -> None:
    # Find a sample whose text holds two distinct ASCII letters, so stops can be taken from it.
    for sample in range(20):
        req = _request(temperature=1.0, max_tokens=24, first_sample=sample)
        full = (await hf.generate(req, 1)).texts[0]
        letters = list(dict.fromkeys(c for c in full[1:] if c.isascii() and c.isalpha()))
        if len(letters) >= 2:
            break
    else:
        pytest.fail("no sample with two ASCII letters")
    first, second = sorted(letters[:2], key=full.index)

    cut = await hf.generate(replace(req, stop=(second, first)), 1)
    assert cut.texts[0] == full[: full.index(first)]
    assert len(cut.texts[0]) < len(full)

    two_chars = full[full.index(second) : full.index(second) + 2]
    cut2 = await hf.generate(replace(req, stop=(two_chars,)), 1)
    assert cut2.texts[0] == full[: full.index(two_chars)]

    untouched = await hf.generate(replace(req, stop=("\x00never",)), 1)
    assert untouched.texts[0] == full


async def test_missing_path_raises_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="no model directory"):
        load_model(f"hf/{tmp_path / 'missing'}")


async def test_unloadable_directory_raises_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    model = load_model(f"hf/{tmp_path / 'empty'}", max_retries=0)
    with pytest.raises(BackendUnavailableError, match="cannot load"):
        await model.generate(_request(), 1)


async def test_uncached_hub_id_fails_offline() -> None:
    model = load_model("hf/nobody-has-this/model-xyz", local_files_only=True, max_retries=0)
    with pytest.raises(BackendUnavailableError, match="local Hugging Face cache"):
        await model.choice_probs(target_messages(QUESTION, CHOICES), MCQ(QUESTION, CHOICES))


async def test_template_without_system_role_folds_system_into_user(model_dir: Path) -> None:
    model = HFModel(f"hf/{model_dir}", str(model_dir), device="cpu")
    model.render([{"role": "user", "content": "x"}])  # loads the tokenizer
    model._tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}<|assistant|>"
    )
    prompt, templated = model.render(target_messages(QUESTION, CHOICES))
    assert templated
    assert prompt == f"<|user|>{TARGET_SYSTEM}\n\n{render_mcq(QUESTION, CHOICES)}\n<|assistant|>"
