"""OpenAI chat-completions backend: the OpenAI API and any OpenAI-compatible server.

``openai/<model>`` talks to api.openai.com (or ``base_url`` / ``OPENAI_BASE_URL``);
``openai-compatible/<model>`` talks to vLLM, Ollama, llama.cpp server, TGI... and needs a base URL.

The SDK's own retries are switched off: the base ``Model`` retries with one policy for every
backend, and SDK errors are mapped onto cdvkit's error types so that policy can tell a rate limit
from a bad key. Responses are read as raw JSON rather than the SDK's typed objects because
compatible servers differ in the fields they send and we must detect a body that is not JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import openai

from cdvkit.models.base import MCQ, ChoiceScores, Completion, GenerateRequest, Message, Usage
from cdvkit.models.errors import BadResponseError, ModelError, UnsupportedError
from cdvkit.models.http_api import (
    HostedModel,
    price_from_table,
    server_message,
)

# USD per million tokens (input, output), list prices of mid 2025. Only a default for cost
# accounting and budgets: the option ``price_per_mtok`` overrides it.
OPENAI_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}

# A label missing from the top log-probs is less likely than the least likely one shown; how much
# less is unknown, so it gets the smallest shown log-prob minus this margin (in nats).
LOGPROB_FLOOR_MARGIN = 1.0
TOP_LOGPROBS = 20  # the most the OpenAI API allows
_JSON_HEADERS = {"Content-Type": "application/json"}


def _http_client(timeout: float) -> Any:
    """The SDK's aiohttp transport where it is installed, else its default (httpx).

    With 64 requests in flight the httpx connection pool rescans every connection for each
    request and reply, which made the client, not the server, the bottleneck of a run
    (bench/throughput.py); the SDK's aiohttp transport does the same work at a fraction of the
    CPU. Both raise the SDK's own error types, so the error mapping above holds for either.
    """
    try:
        return openai.DefaultAioHttpClient(timeout=timeout)
    except (AttributeError, RuntimeError):
        return None


def price_for(model_id: str) -> tuple[float, float] | None:
    """Default price of an OpenAI model; dated snapshots (gpt-4o-2024-08-06) use their family's."""
    return price_from_table(model_id, OPENAI_PRICES)


def _error_code(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            return str(err.get("code") or err.get("type") or "")
    return ""


class OpenAIModel(HostedModel):
    provider = "openai"
    supports_choice_probs = True
    api_name = "the OpenAI API"

    default_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"

    def __init__(self, spec: str, name: str, *, compatible: bool = False, **options: Any) -> None:
        self.compatible = compatible  # read by the price and base-URL hooks during __init__
        super().__init__(spec, name, **options)
        self.provider = "openai-compatible" if compatible else "openai"
        # Newer OpenAI models refuse `max_tokens`; we switch once the server says so.
        self._tokens_param = "max_tokens"
        self._logprobs_confirmed = False  # a request has been answered with log-probs
        self._probe_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _default_price(self) -> tuple[float, float] | None:
        # Priced by name even behind a gateway URL: over-counting a budget beats under-counting.
        # A self-hosted (compatible) model has no list price.
        return None if self.compatible else price_for(self.model_id)

    def _base_url_required(self) -> str:
        if not self.compatible:
            return ""
        return (
            "an OpenAI-compatible server needs a base URL (pass --base-url, the base_url option, "
            "or set OPENAI_BASE_URL), e.g. http://localhost:8000/v1"
        )

    def _new_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**kwargs, http_client=_http_client(self.timeout))

    # --- one HTTP call ------------------------------------------------------------------------
    async def _post(self, kwargs: dict[str, Any], *, probing_logprobs: bool = False) -> Any:
        """Send one chat-completions request and return its JSON body as plain data."""
        try:
            # The SDK's low-level post (its documented route for any endpoint) with the body as
            # plain JSON: ``chat.completions.create`` walks every message through its type
            # transformer first, which costs more CPU than the HTTP exchange and capped a run's
            # throughput well below a 64-wide backend. The reply comes back as text, parsed here.
            # The body goes as bytes, serialised once here: given as a dict, the SDK deep-copies
            # and re-serialises it per request, which cost the client more than the exchange.
            text = await self._client().post(
                "/chat/completions",
                cast_to=str,
                content=json.dumps(kwargs).encode(),
                options={"timeout": self.timeout, "headers": _JSON_HEADERS},
            )
        except openai.APIStatusError as exc:
            msg = server_message(exc, [self._key])
            if (
                exc.status_code == 400
                and self._tokens_param == "max_tokens"
                and "max_completion_tokens" in msg
                and "max_tokens" in kwargs
            ):
                self._tokens_param = "max_completion_tokens"
                kwargs = dict(kwargs)
                kwargs["max_completion_tokens"] = kwargs.pop("max_tokens")
                return await self._post(kwargs, probing_logprobs=probing_logprobs)
            if probing_logprobs and exc.status_code in (400, 422) and "logprob" in msg.lower():
                self.supports_choice_probs = False
                raise UnsupportedError(
                    f"server refuses log-probs ({exc.status_code}: {self._clean(msg)})",
                    model=self.name,
                    status=exc.status_code,
                ) from None
            quota = _error_code(exc) == "insufficient_quota"
            raise self._map_status(exc, msg, quota_exhausted=quota) from None
        except openai.APIConnectionError as exc:  # timeouts too: classified by cause
            raise self._no_answer(exc) from None
        try:
            body = json.loads(text)
        except ValueError:
            raise self._not_json(text) from None
        if not isinstance(body, dict):
            raise BadResponseError("response is JSON but not an object", model=self.name)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            detail = "empty choices" if isinstance(choices, list) else "no choices"
            err = body.get("error")
            if err:
                detail += f" (error: {self._clean(str(err))[:200]})"
            raise BadResponseError(f"response has {detail}", model=self.name)
        return body

    async def check(self) -> None:
        """The server answers ``GET /models`` with our key and lists the model.

        A server without that route (some proxies) passes: a 404 says nothing about the key or
        the model. One request, not retried: a preflight must answer fast.
        """
        try:
            text = await self._client().get(
                "/models", cast_to=str, options={"timeout": min(self.timeout, 15.0)}
            )
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405, 501):
                return
            raise self._map_status(exc, server_message(exc, [self._key])) from None
        except openai.APIConnectionError as exc:  # timeouts too: classified by cause
            raise self._no_answer(exc) from None
        try:
            data = json.loads(text).get("data")
        except (ValueError, AttributeError):
            return  # not a model list: nothing to check the name against
        if not isinstance(data, list) or not data:
            return
        served = [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
        if served and self.model_id not in served:
            shown = ", ".join(served[:8]) + (", ..." if len(served) > 8 else "")
            raise ModelError(
                f"{self._where()} does not serve a model named {self.model_id!r} "
                f"(it lists: {shown}); check the model name after the provider",
                model=self.name,
                status=404,
            )

    # --- generation ---------------------------------------------------------------------------
    def _request_kwargs(self, request: GenerateRequest, n: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model_id,
            "messages": request.message_dicts,
            "temperature": request.temperature,
            self._tokens_param: request.max_tokens,
        }
        # Only sent when needed: some compatible servers reject `n` or `stop` outright.
        if n > 1:
            kwargs["n"] = n
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        texts: list[str] = []
        usage = Usage()
        # Servers that ignore `n` (llama.cpp, some proxies) return one choice: ask again for the
        # rest. Bounded by n rounds, since each round yields at least one choice or raises.
        for _ in range(n):
            if len(texts) >= n:
                break
            want = n - len(texts)
            req = request
            if texts and request.seed is not None:
                # Same seed again would repeat the samples we already have.
                req = replace(request, seed=request.seed + len(texts))
            body = await self._post(self._request_kwargs(req, want))
            texts += [self._choice_text(c) for c in body["choices"][:want]]
            usage += _usage(body)
        return Completion(texts, usage)

    def _choice_text(self, choice: Any) -> str:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise BadResponseError("a choice has no message", model=self.name)
        content = message.get("content")
        if isinstance(content, list):  # some servers send content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content is None:
            # A refusal is still an answer (counted as wrong), not a broken response.
            content = message.get("refusal") or ""
        return str(content)

    # --- exact choice probabilities -------------------------------------------------------------
    async def _choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        if not self.supports_choice_probs:
            raise UnsupportedError("server gives no log-probs", model=self.name)
        if self._logprobs_confirmed:
            return await self._ask_logprobs(messages, mcq)
        # Until one request has shown whether the server gives log-probs, requests go one at a
        # time: a run starting 64 questions at once would otherwise send 64 refused probes.
        loop = asyncio.get_running_loop()
        if self._probe_lock is None or self._probe_lock[0] is not loop:
            self._probe_lock = (loop, asyncio.Lock())
        async with self._probe_lock[1]:
            if not self.supports_choice_probs:
                raise UnsupportedError("server gives no log-probs", model=self.name)
            scores = await self._ask_logprobs(messages, mcq)
            self._logprobs_confirmed = True
            return scores

    async def _ask_logprobs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        labels = mcq.labels
        kwargs: dict[str, Any] = {
            "model": self.model_id,
            "messages": letter_only_messages(messages, labels),
            "temperature": 0,
            self._tokens_param: 1,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        body = await self._post(kwargs, probing_logprobs=True)
        candidates = _first_token_logprobs(body["choices"][0])
        if not candidates:
            # Remember, so callers switch to sampling instead of asking again for every question.
            self.supports_choice_probs = False
            raise UnsupportedError(
                f"{self._where()} returned no log-probs; use sampled answers instead",
                model=self.name,
                status=200,  # answered, but unusable: counted with the refused requests
            )
        return ChoiceScores(label_probs(candidates, labels), _usage(body))


def letter_only_messages(messages: list[Message], labels: list[str]) -> list[dict[str, str]]:
    """The question, ending with a request for the bare letter so the first token is the answer."""
    ask = (
        f"\n\nRespond with only the letter of your answer ({', '.join(labels)}), "
        "with no explanation."
    )
    out = [dict(m) for m in messages]
    if out and out[-1].get("role") == "user":
        out[-1]["content"] = out[-1]["content"] + ask
    else:
        out.append({"role": "user", "content": ask.strip()})
    return out


def _first_token_logprobs(choice: Any) -> list[tuple[str, float]]:
    """(token, logprob) pairs offered for the first generated token, the chosen one included."""
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return []
    first = content[0]
    pairs: list[tuple[str, float]] = []
    entries = [first] + [t for t in first.get("top_logprobs") or [] if isinstance(t, dict)]
    for entry in entries:
        token, lp = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(lp, int | float) and math.isfinite(lp):
            pairs.append((token, float(lp)))
    return pairs


def label_probs(candidates: list[tuple[str, float]], labels: list[str]) -> list[float]:
    """Softmax over the choice labels of the first token's log-probs.

    Tokens count for a label when they are exactly the label once spaces and parentheses are
    stripped (" B", "(B", "B)"); several spellings of one label add up. A label absent from the
    list gets a floor below the least likely token shown. If no label appears at all, every label
    gets the floor, i.e. a uniform distribution: the model did not commit to any choice.
    """
    seen: dict[str, float] = {}
    unique = dict(candidates)  # the chosen token also appears in top_logprobs: count it once
    for token, lp in unique.items():
        key = token.strip().strip("()").strip()
        if key in labels:
            seen[key] = _logaddexp(seen[key], lp) if key in seen else lp
    floor = min(unique.values()) - LOGPROB_FLOOR_MARGIN
    logs = [seen.get(label, floor) for label in labels]
    top = max(logs)
    weights = [math.exp(lp - top) for lp in logs]
    total = sum(weights)
    return [w / total for w in weights]


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def _usage(body: dict[str, Any]) -> Usage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return Usage()
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
