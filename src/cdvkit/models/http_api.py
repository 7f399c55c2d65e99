"""What the hosted-API backends (OpenAI-compatible, Anthropic) share.

Both wrap a vendor SDK the same way: its retries off (the base ``Model`` retries with one policy
for every backend), one SDK client per event loop, keys from the environment or an option and
never in a message, the server's error text redacted before it is cut, and HTTP statuses mapped
onto cdvkit's error types so the retry policy can tell a rate limit from a bad key.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import re
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from cdvkit.models.base import Model
from cdvkit.models.errors import (
    CLOSED,
    RATE_LIMITED,
    REFUSED,
    REJECTED,
    RESET,
    SERVER_ERROR,
    TIMEOUT,
    UNREACHABLE,
    AuthenticationError,
    BadResponseError,
    ModelError,
    TransientModelError,
    transport_failure,
)

DEFAULT_TIMEOUT = 60.0
# Keyless local servers still need some bearer token for the SDK to send a request.
PLACEHOLDER_KEY = "not-needed"


def price_from_table(
    model_id: str, table: Mapping[str, tuple[float, float]]
) -> tuple[float, float] | None:
    """A model's default price; dated snapshots (gpt-4o-2024-08-06) use their family's."""
    if model_id in table:
        return table[model_id]
    # Longest prefix first, so gpt-4o-mini-2024-07-18 is priced as gpt-4o-mini, not gpt-4o.
    for family in sorted(table, key=len, reverse=True):
        if model_id.startswith(family + "-"):
            return table[family]
    return None


def parse_price(value: Any) -> tuple[float, float]:
    """Read a ``price_per_mtok`` option: a pair of numbers or the string ``"in,out"``."""
    if isinstance(value, str):
        value = value.split(",")
    try:
        pin, pout = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"price_per_mtok must be two numbers (input, output per 1M tokens), got {value!r}"
        ) from None
    return pin, pout


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asks us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-\*\.]{4,})")


def redact(text: str, secrets: Sequence[str]) -> str:
    """Remove credentials from server text (OpenAI echoes a masked key in its 401 message)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("sk-***", text)


def server_message(exc: Exception, secrets: Sequence[str] = ()) -> str:
    """The server's own error text, short enough for a log line, without ``secrets``.

    Redacted before it is cut: a cut through an echoed key would leave a piece no redaction finds.
    """
    body = getattr(exc, "body", None)
    msg = ""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            msg = str(err.get("message") or "")
        elif isinstance(err, str):
            msg = err
    if not msg:
        response = getattr(exc, "response", None)
        try:
            msg = response.text if response is not None else ""
        except Exception:  # an unread streaming body: the status alone will do
            msg = ""
    msg = msg or str(getattr(exc, "message", "") or "")
    msg = redact(" ".join(msg.split()), secrets)
    return msg[:300] + ("..." if len(msg) > 300 else "")


async def read_text(raw: Any) -> str:
    """Body of an SDK raw response as text.

    SDK majors differ (``.text`` a property, a method, or a coroutine), so go to the underlying
    HTTP response, whose ``aread`` is a no-op once the body has been read.
    """
    http = raw.http_response
    await http.aread()
    return str(http.text)


def describe_connection_error(exc: BaseException) -> str:
    """The SDK says only "Connection error."; the cause (refused, DNS, TLS) is what helps."""
    cause = exc.__cause__ or exc.__context__
    text = str(exc)
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({type(cause).__name__}: {cause})"
    return text


# How each way of getting no answer reads after "cannot reach <server>: ".
_NO_ANSWER_WORDS = {
    REFUSED: "connection refused",
    RESET: "connection reset",
    CLOSED: "the server closed the connection before its reply was complete",
    UNREACHABLE: "host unreachable",
}


class HostedModel(Model):
    """A model behind an HTTP API reached through its vendor's async SDK.

    Subclasses name their environment variables and may override ``_default_price`` and
    ``_base_url_required``; the options a user can set (per role in the config file) are the
    keyword arguments here, the same for every hosted provider.
    """

    api_name = "the API"  # how messages name the default endpoint
    default_key_env = ""
    base_url_env = ""

    def __init__(
        self,
        spec: str,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        price_per_mtok: Any = None,
        concurrency: int = 8,
        max_retries: int = 5,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        outage_after: float = 5.0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(f"{spec}: unknown option(s) {', '.join(sorted(unknown))}")
        super().__init__(
            spec,
            concurrency=concurrency,
            max_retries=max_retries,
            retry_base=retry_base,
            retry_max=retry_max,
            outage_after=outage_after,
        )
        api_key_env = api_key_env or self.default_key_env
        self.model_id = name
        self.timeout = float(timeout)
        self.key_env = api_key_env
        self.base_url = base_url or os.environ.get(self.base_url_env) or None
        needs_base_url = self._base_url_required()
        if needs_base_url and not self.base_url:
            raise ValueError(f"{spec}: {needs_base_url}")
        key = api_key or os.environ.get(api_key_env) or None
        if key is None:
            if not self.base_url:
                raise AuthenticationError(
                    f"no API key: set {api_key_env}, or give a base URL for a keyless server",
                    model=spec,
                )
            key = PLACEHOLDER_KEY
        self._key = key
        self.price_per_mtok = (
            parse_price(price_per_mtok) if price_per_mtok is not None else self._default_price()
        )
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def _default_price(self) -> tuple[float, float] | None:
        """USD per million tokens (input, output) when the user gives no ``price_per_mtok``."""
        return None

    def _base_url_required(self) -> str:
        """Why this model cannot run without a base URL, or "" when it can."""
        return ""

    @abstractmethod
    def _new_client(self, **kwargs: Any) -> Any:
        """The vendor SDK's async client, built from ``kwargs`` (key, timeout, base URL)."""

    def _client(self) -> Any:
        # Pooled connections belong to the event loop that opened them, and cdvkit may run
        # several loops in turn (tests, CLI commands): one client per loop.
        loop = asyncio.get_running_loop()
        held = self._clients.get(id(loop))
        if held is not None and held[0] is loop:
            return held[1]
        self._clients = {k: v for k, v in self._clients.items() if not v[0].is_closed()}
        kwargs: dict[str, Any] = {
            # An explicit key also stops an SDK from looking for profiles or other credentials.
            "api_key": self._key,
            "timeout": self.timeout,
            "max_retries": 0,
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        client = self._new_client(**kwargs)
        self._clients[id(loop)] = (loop, client)
        return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        held = self._clients.pop(id(loop), None)
        if held is not None and held[0] is loop:
            await held[1].close()

    def _map_status(self, exc: Any, msg: str, *, quota_exhausted: bool = False) -> ModelError:
        """cdvkit's error for an SDK status error; ``msg`` is the server's text."""
        status = exc.status_code
        msg = self._clean(msg)
        if status in (401, 403):
            what = "rejected the API key" if status == 401 else "denied access"
            hint = f"check {self.key_env}" + (" and the base URL" if self.base_url else "")
            return AuthenticationError(
                f"{self._where()} {what} (HTTP {status}): {msg}; {hint}",
                model=self.name,
                status=status,
                kind=REJECTED,
            )
        if status == 429:
            if quota_exhausted:
                # Out of credit: waiting does not help, so stop instead of retrying for minutes.
                return ModelError(
                    f"quota exhausted (HTTP 429): {msg}",
                    model=self.name,
                    status=429,
                    kind=RATE_LIMITED,
                )
            return TransientModelError(
                f"rate limited (HTTP 429): {msg}",
                model=self.name,
                status=429,
                retry_after=retry_after_seconds(exc.response.headers),
                kind=RATE_LIMITED,
            )
        # 408: a request the server gave up waiting for; 529: Anthropic's "overloaded".
        if status >= 500 or status == 408:
            return TransientModelError(
                f"server error (HTTP {status}): {msg}",
                model=self.name,
                status=status,
                retry_after=retry_after_seconds(exc.response.headers),
                kind=SERVER_ERROR,
            )
        return ModelError(
            f"request rejected (HTTP {status}): {msg}",
            model=self.name,
            status=status,
            kind=REJECTED,
        )

    def _no_answer(self, exc: BaseException) -> TransientModelError:
        """The error for a request the server gave no answer to, from what really happened.

        The SDK's own class and words are not evidence: with its aiohttp transport the OpenAI
        SDK raises "Request timed out." for a refused connection and for one the server dropped,
        milliseconds after the request went out. ``transport_failure`` reads the exception chain
        instead, so a refused connection is recorded as refused and a timeout as a timeout.
        """
        kind, cause = transport_failure(exc)
        if kind == TIMEOUT:
            return TransientModelError(
                f"request timed out after {self.timeout:g}s", model=self.name, kind=TIMEOUT
            )
        said = str(exc)
        if "timed out" in said.lower() or not said:
            # The SDK's words are wrong here: show the exception that says what happened.
            detail = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        else:
            detail = describe_connection_error(exc)
        return TransientModelError(
            f"cannot reach {self._where()}: {_NO_ANSWER_WORDS[kind]} ({self._clean(detail)})",
            model=self.name,
            kind=kind,
        )

    def _not_json(self, text: str, status: int | None = None) -> BadResponseError:
        snippet = self._clean(" ".join(text.split()))[:120]  # redacted, then cut
        return BadResponseError(
            f"response from {self._where()} is not JSON: {snippet!r}",
            model=self.name,
            status=status,
        )

    def _clean(self, text: str) -> str:
        return redact(text, [self._key])

    def _where(self) -> str:
        return self.base_url or self.api_name
