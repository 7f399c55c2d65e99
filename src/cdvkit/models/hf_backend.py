"""Local transformers causal LM (``hf/<path-or-cached-id>``) with exact choice probabilities.

Generation uses a small decoding loop of our own rather than ``model.generate``: it lets every
sample draw from its own ``torch.Generator`` (so sample ``i`` is the same whether it was asked
alone or in a batch, and the process-wide RNG is never touched) and cut the text at the first stop
string as soon as it appears.

Choice probabilities score the continuation ``" A"``, ``" B"``... after the rendered prompt
followed by ``"Answer:"``. The leading space is part of the label because that is how the text
reads when the model writes ``Answer: A`` itself, and in byte-level BPE and SentencePiece
vocabularies ``" A"`` is usually one token distinct from ``"A"``. The continuation's tokens are
taken from the tokenization of the whole string (prompt + prefix + label) minus the prompt's
tokens, as lm-evaluation-harness does, so tokenizers that treat a leading space specially still
see the text they would see in a real reply.

A directory holding a PEFT adapter (``adapter_config.json``, as ``cdv train`` writes by default)
loads the base model the adapter names, then the adapter, merged into the weights in memory
(``hf_loading``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cdvkit.models.base import MCQ, ChoiceScores, Completion, GenerateRequest, Message, Model, Usage
from cdvkit.models.errors import BackendUnavailableError, ModelError
from cdvkit.models.hf_loading import LOAD_LOCK, load_weights
from cdvkit.models.hf_text import find_stop, merge_system, render_plain

T = TypeVar("T")

DEFAULT_ANSWER_PREFIX = "Answer:"


def _truthy_env(*names: str) -> bool:
    return any(os.environ.get(n, "").strip().lower() in ("1", "true", "yes", "on") for n in names)


def sample_seed(seed: int | None, prompt: str, index: int) -> int:
    """Seed of sample ``index``: stable across processes (unlike ``hash``) and batch sizes.

    The prompt is part of it so that sample 0 of two different questions does not share one
    random stream, which would correlate answers across questions.
    """
    payload = json.dumps([seed, prompt, index])
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "big") >> 1


class HFModel(Model):
    """A causal LM from a local directory or the local Hugging Face cache.

    Options: ``device`` ("auto", "cpu", "cuda", "cuda:1"...), ``dtype`` ("auto", "float32",
    "bfloat16", "float16"; default float32 on CPU, the checkpoint's dtype on GPU),
    ``answer_prefix`` (text after the prompt before the scored label), ``local_files_only``
    (default: true when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set), ``trust_remote_code``.
    ``base_url``/``api_key``/``temperature`` are accepted and ignored so that options shared by
    all roles can be passed blindly: a request carries its own temperature.
    """

    provider = "hf"
    supports_choice_probs = True

    def __init__(
        self,
        spec: str,
        name: str | None = None,
        *,
        device: str = "auto",
        dtype: str | None = None,
        answer_prefix: str = DEFAULT_ANSWER_PREFIX,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        concurrency: int = 4,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(spec, concurrency=concurrency, **kw)
        self.model_id = name if name is not None else spec.split("/", 1)[-1]
        self.device_option = device
        self.dtype_option = dtype
        self.answer_prefix = answer_prefix
        self.local_files_only = (
            _truthy_env("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
            if local_files_only is None
            else local_files_only
        )
        self.trust_remote_code = trust_remote_code
        self._source = self._resolve_source(self.model_id)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._eos: set[int] = set()
        self._max_positions: int | None = None
        self._cache_kw = "past_key_values"
        self._last_only: dict[str, int] = {}
        # One forward at a time: the thread lock guards the weights across event loops and
        # threads, the asyncio lock keeps waiting callers off the thread pool.
        self._tlock = threading.RLock()
        self._alock: asyncio.Lock | None = None
        self._alock_loop: asyncio.AbstractEventLoop | None = None

    # --- loading ------------------------------------------------------------------------------
    def _resolve_source(self, model_id: str) -> str:
        path = Path(model_id).expanduser()
        if path.exists():
            if not path.is_dir():
                raise BackendUnavailableError(
                    f"{path} is a file; hf/ needs a model directory or a hub id", model=self.name
                )
            return str(path)
        # Something that can only be a path fails now, not at the first call deep in a run.
        if model_id.startswith(("/", "./", "../", "~")):
            raise BackendUnavailableError(f"no model directory at {path}", model=self.name)
        return model_id  # a hub id, looked up in the local cache at load time

    def _load(self) -> None:
        if self._model is not None:
            return
        with LOAD_LOCK:
            self._load_now()

    def _load_now(self) -> None:
        model, tokenizer, device = load_weights(
            self._source,
            name=self.name,
            device=self.device_option,
            dtype=self.dtype_option,
            local_files_only=self.local_files_only,
            trust_remote_code=self.trust_remote_code,
        )
        eos: set[int] = set()
        for source in (getattr(model, "generation_config", None), model.config, tokenizer):
            ids = getattr(source, "eos_token_id", None)
            if isinstance(ids, int):
                eos.add(ids)
            elif isinstance(ids, (list, tuple)):
                eos.update(int(i) for i in ids)
        cfg = model.config
        self._max_positions = getattr(cfg, "max_position_embeddings", None) or getattr(
            cfg, "n_positions", None
        )
        # transformers 5 renamed past_key_values to cache; older releases only know the former.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        # Only the last position's logits are needed; skipping the rest saves a
        # prompt-length x vocabulary tensor on big-vocabulary models.
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self._eos = eos
        self._device = device
        self._tokenizer = tokenizer
        self._model = model

    # --- running ------------------------------------------------------------------------------
    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock_loop is not loop:
            self._alock = asyncio.Lock()
            self._alock_loop = loop
        return self._alock

    async def _run(self, fn: Callable[[], T]) -> T:
        async with self._async_lock():
            return await asyncio.to_thread(self._locked, fn)

    def _locked(self, fn: Callable[[], T]) -> T:
        import torch

        with self._tlock:
            self._load()
            try:
                with torch.inference_mode():
                    return fn()
            except ModelError:
                raise
            except (RuntimeError, ValueError, IndexError) as exc:
                # Name the model in the message; the base does not retry it (not transient).
                raise ModelError(f"inference failed: {exc}", model=self.name) from exc

    def render(self, messages: Sequence[Message]) -> tuple[str, bool]:
        """Prompt text for ``messages`` and whether it came from the chat template.

        Text from a chat template already holds the special tokens it needs, so it is tokenized
        without adding any; plain text gets the tokenizer's usual ones (e.g. BOS).
        """
        self._load_sync_if_needed()
        tok = self._tokenizer
        msgs = [dict(m) for m in messages]
        if getattr(tok, "chat_template", None):
            try:
                return tok.apply_chat_template(
                    msgs, tokenize=False, add_generation_prompt=True
                ), True
            except Exception:
                # Some templates refuse a system role: fold it into the first user turn.
                merged = merge_system(msgs)
                try:
                    return tok.apply_chat_template(
                        merged, tokenize=False, add_generation_prompt=True
                    ), True
                except Exception as exc:
                    raise ModelError(
                        f"the tokenizer's chat template failed: {type(exc).__name__}: {exc}",
                        model=self.name,
                    ) from exc
        return render_plain(msgs), False

    def _load_sync_if_needed(self) -> None:
        if self._model is None:
            with self._tlock:
                self._load()

    def _encode(self, text: str, templated: bool) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=not templated)["input_ids"])

    def _check_length(self, n_prompt: int) -> int | None:
        """Tokens left for the reply, or None when the model has no known limit."""
        if self._max_positions is None:
            return None
        room = int(self._max_positions) - n_prompt
        if room <= 0:
            raise ModelError(
                f"prompt of {n_prompt} tokens does not fit the model's context of "
                f"{self._max_positions}",
                model=self.name,
            )
        return room

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        return await self._run(lambda: self._generate_sync(request, n))

    def _generate_sync(self, request: GenerateRequest, n: int) -> Completion:
        prompt, templated = self.render(request.message_dicts)
        ids = self._encode(prompt, templated)
        room = self._check_length(len(ids))
        max_new = request.max_tokens if room is None else min(request.max_tokens, room)
        if request.temperature <= 0:
            # Greedy decoding has one answer; decoding it n times would only repeat it.
            text, used = self._decode_one(ids, 0.0, max_new, request.stop, 0)
            return Completion([text] * n, Usage(len(ids), used * n))
        texts: list[str] = []
        completion_tokens = 0
        for i in range(n):
            seed = sample_seed(request.seed, prompt, request.first_sample + i)
            text, used = self._decode_one(ids, request.temperature, max_new, request.stop, seed)
            texts.append(text)
            completion_tokens += used
        return Completion(texts, Usage(len(ids), completion_tokens))

    def _decode_one(
        self,
        prompt_ids: list[int],
        temperature: float,
        max_new: int,
        stops: Sequence[str],
        seed: int,
    ) -> tuple[str, int]:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        model, tok = self._model, self._tokenizer
        step_input = torch.tensor([prompt_ids], device=self._device)
        past = None
        out: list[int] = []
        text = ""
        longest_stop = max((len(s) for s in stops), default=0)
        for _ in range(max_new):
            result = model(
                input_ids=step_input, use_cache=True, **{self._cache_kw: past}, **self._last_only
            )
            past = result.get(self._cache_kw)
            logits = result.logits[0, -1].float()
            if temperature <= 0:
                token = int(torch.argmax(logits))
            else:
                # Sample on CPU so the stream depends on the seed only, not on the device's RNG.
                probs = torch.softmax(logits / temperature, dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
            if token in self._eos:
                break
            out.append(token)
            if stops:
                previous = len(text)
                text = tok.decode(out, skip_special_tokens=True)
                # Only the new tail (plus room for a stop straddling it) can hold a new match.
                start = max(0, previous - longest_stop)
                cut = find_stop(text[start:], stops)
                if cut is not None:
                    return text[: start + cut], len(out)
            step_input = torch.tensor([[token]], device=self._device)
        return tok.decode(out, skip_special_tokens=True), len(out)

    async def _choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        return await self._run(lambda: self._choice_probs_sync(messages, mcq))

    def label_continuations(
        self, messages: Sequence[Message], labels: Sequence[str]
    ) -> tuple[list[int], list[list[int]]]:
        """Context token ids and each label's continuation ids (see the module docstring)."""
        prompt, templated = self.render(messages)
        # Plain renderings end in "assistant:", which reads as "assistant: Answer: A" with a
        # space; chat templates end their generation prompt exactly where the reply starts.
        sep = "" if templated or not prompt or prompt[-1].isspace() else " "
        context = prompt + sep + self.answer_prefix
        ctx_ids = self._encode(context, templated)
        conts: list[list[int]] = []
        for label in labels:
            whole = self._encode(f"{context} {label}", templated)
            if whole[: len(ctx_ids)] == ctx_ids and len(whole) > len(ctx_ids):
                conts.append(whole[len(ctx_ids) :])
            else:
                # The label merged with the prefix's last token: score it as its own piece so
                # every label is conditioned on the same context.
                extra = list(self._tokenizer(f" {label}", add_special_tokens=False)["input_ids"])
                conts.append(extra)
        return ctx_ids, conts

    def _choice_probs_sync(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        import torch

        ctx_ids, conts = self.label_continuations(messages, mcq.labels)
        self._check_length(len(ctx_ids) + max(len(c) for c in conts))
        model = self._model
        if all(len(c) == 1 for c in conts):
            # The usual case: one forward pass gives every single-token label.
            ids = torch.tensor([ctx_ids], device=self._device)
            logits = model(input_ids=ids, **self._last_only).logits
            logp = torch.log_softmax(logits[0, -1].float(), dim=-1)
            scores = [float(logp[c[0]]) for c in conts]
        else:
            scores = []
            for cont in conts:
                ids = torch.tensor([ctx_ids + cont], device=self._device)
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
                # Token t is predicted by position t-1.
                positions = range(len(ctx_ids) - 1, len(ctx_ids) + len(cont) - 1)
                scores.append(sum(float(logp[p, t]) for p, t in zip(positions, cont, strict=True)))
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        return ChoiceScores([w / total for w in weights], Usage(len(ctx_ids), 0))
