"""Anthropic Messages API backend (``anthropic/<model>``).

Like the OpenAI backend, the SDK's retries are off so the base ``Model`` policy is the only one,
SDK errors are mapped onto cdvkit's error types, and bodies are read as raw JSON so a broken
proxy answer is reported as such. The Messages API has no ``n`` and no log-probs: ``n`` samples
are ``n`` concurrent requests, and ``choice_probs`` is unsupported.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic

from cdvkit.models.base import Completion, GenerateRequest, Usage
from cdvkit.models.errors import BadResponseError, ModelError
from cdvkit.models.http_api import (
    HostedModel,
    price_from_table,
    read_text,
    server_message,
)

# USD per million tokens (input, output), list prices of mid 2025; ``price_per_mtok`` overrides.
ANTHROPIC_PRICES: dict[str, tuple[float, float]] = {
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-1": (15.00, 75.00),
}

# The Messages API rejects temperatures above 1 (OpenAI-style prompts may ask for up to 2).
MAX_TEMPERATURE = 1.0
JSON_HINT = "Reply with a single JSON object and nothing else."


def price_for(model_id: str) -> tuple[float, float] | None:
    """Default price; dated ids and aliases (claude-3-5-haiku-20241022) use their family's."""
    return price_from_table(model_id, ANTHROPIC_PRICES)


class AnthropicModel(HostedModel):
    provider = "anthropic"
    supports_choice_probs = False
    api_name = "the Anthropic API"

    default_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"

    def __init__(self, spec: str, name: str, **options: Any) -> None:
        super().__init__(spec, name, **options)
        self._send_temperature = True

    def _default_price(self) -> tuple[float, float] | None:
        return price_for(self.model_id)

    def _new_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**kwargs)

    # --- generation ---------------------------------------------------------------------------
    def _request_kwargs(self, request: GenerateRequest) -> dict[str, Any]:
        system, messages = split_system(request.message_dicts)
        if request.json_mode:
            # No JSON mode in the Messages API: ask for it in words instead.
            system = f"{system}\n\n{JSON_HINT}" if system else JSON_HINT
        kwargs: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if self._send_temperature:
            # Recent SDKs dropped the keyword (the API deprecated it for new models), while
            # older models still honour it; extra_body reaches those.
            temperature = min(max(request.temperature, 0.0), MAX_TEMPERATURE)
            kwargs["extra_body"] = {"temperature": temperature}
        if system:
            kwargs["system"] = system
        if request.stop:
            # The API rejects whitespace-only stop sequences ("\n\n" is common in OpenAI prompts).
            stops = [s for s in request.stop if s.strip()]
            if stops:
                kwargs["stop_sequences"] = stops
        return kwargs

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        kwargs = self._request_kwargs(request)
        tasks = [asyncio.ensure_future(self._post(kwargs)) for _ in range(n)]
        try:
            bodies = await asyncio.gather(*tasks)
        except BaseException:
            # One failed sample fails the call (and it is retried whole): stop paying for the rest.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        usage = Usage()
        texts = []
        for body in bodies:
            texts.append(self._text(body))
            usage += _usage(body)
        return Completion(texts, usage)

    def _text(self, body: dict[str, Any]) -> str:
        content = body.get("content")
        if not isinstance(content, list):
            raise BadResponseError("response has no content", model=self.name)
        # An empty list is a legitimate empty turn (e.g. an immediate stop), not a broken body.
        return "".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )

    async def check(self) -> None:
        """The API answers ``GET /v1/models/<id>`` with our key (404: no such model)."""
        try:
            await self._client().get(
                f"/v1/models/{self.model_id}",
                cast_to=str,
                options={"timeout": min(self.timeout, 15.0)},
            )
        except anthropic.APIStatusError as exc:
            msg = server_message(exc, [self._key])
            if exc.status_code == 404 and "model" in msg.lower():
                raise ModelError(
                    f"{self._where()} knows no model named {self.model_id!r} ({msg}); check the "
                    "model name after the provider",
                    model=self.name,
                    status=404,
                ) from None
            if exc.status_code in (404, 405, 501):
                return  # a gateway without the models route: nothing to learn from it
            raise self._map_status(exc, msg) from None
        except anthropic.APIConnectionError as exc:  # timeouts too: classified by cause
            raise self._no_answer(exc) from None

    async def _post(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            raw = await self._client().messages.with_raw_response.create(
                **kwargs, timeout=self.timeout
            )
        except anthropic.APIStatusError as exc:
            msg = server_message(exc, [self._key])
            if (
                exc.status_code == 400
                and "temperature" in msg.lower()
                and "temperature" in kwargs.get("extra_body", {})
            ):
                # A model that refuses sampling parameters: use its default from now on.
                self._send_temperature = False
                kwargs = {k: v for k, v in kwargs.items() if k != "extra_body"}
                return await self._post(kwargs)
            raise self._map_status(exc, msg) from None
        except anthropic.APIConnectionError as exc:  # timeouts too: classified by cause
            raise self._no_answer(exc) from None
        text = await read_text(raw)
        try:
            body = json.loads(text)
        except ValueError:
            raise self._not_json(text, raw.http_response.status_code) from None
        if not isinstance(body, dict):
            raise BadResponseError("response is JSON but not an object", model=self.name)
        if body.get("type") == "error" or "content" not in body:
            detail = self._clean(str(body.get("error") or "no content"))[:200]
            raise BadResponseError(f"response carries no message: {detail}", model=self.name)
        return body


def split_system(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """Move system messages to the ``system`` parameter and merge same-role neighbours.

    The Messages API takes the system prompt separately and wants user/assistant turns to
    alternate, while cdvkit's prompts are OpenAI-style lists.
    """
    system_parts: list[str] = []
    turns: list[dict[str, str]] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            system_parts.append(content)
        elif turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": turns[-1]["content"] + "\n\n" + content}
        else:
            turns.append({"role": role, "content": content})
    return "\n\n".join(system_parts), turns


def _usage(body: dict[str, Any]) -> Usage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return Usage()
    return Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
