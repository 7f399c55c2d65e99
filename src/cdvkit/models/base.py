"""The one async interface behind every model role (target, proposer, judge, extractor)."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from cdvkit.models.errors import ModelError, OutageError, TransientModelError

Message = dict[str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class MCQ:
    """Structured view of the multiple-choice question inside a prompt.

    Backends that score choices directly (embedding, local log-likelihood, scripted) need the
    question and options themselves, not only the rendered chat text.
    """

    question: str
    choices: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        from cdvkit.data.question import LETTERS

        return list(LETTERS[: len(self.choices)])


@dataclass(frozen=True)
class GenerateRequest:
    messages: tuple[tuple[str, str], ...]
    temperature: float = 0.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_mode: bool = False
    mcq: MCQ | None = None
    # Index of the first sample this request produces; deterministic backends use it so that
    # sample i is the same whether it was asked alone or within a batch.
    first_sample: int = 0

    @staticmethod
    def make(messages: list[Message], **kw: Any) -> GenerateRequest:
        return GenerateRequest(messages=tuple((m["role"], m["content"]) for m in messages), **kw)

    @property
    def message_dicts(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_key(self, model: str, sample: int) -> str:
        """Key of one sample: model, messages and parameters, never the batch size."""
        return self.cache_keys(model, [sample])[0]

    def cache_keys(self, model: str, samples: Sequence[int]) -> list[str]:
        """``cache_key`` of each of ``samples``, the shared part of the payload built once.

        The key is the SHA-256 of the payload as sorted JSON, so the text before and after the
        sample index is the same for every sample of a request: only that index is formatted
        per sample. Keys must never change (a stored run resumes from them).
        """
        payload = {
            "model": model,
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "seed": self.seed,
            "json_mode": self.json_mode,
            "mcq": {"question": self.mcq.question, "choices": self.mcq.choices}
            if self.mcq
            else None,
        }
        # json.dumps(..., sort_keys=True) of the whole payload, written out pair by pair so the
        # sample index can be put in its sorted place for each sample without redoing the rest.
        pairs = [
            f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(payload.items())
        ]
        at = sum(k < "sample" for k in payload)
        head = "{" + "".join(p + ", " for p in pairs[:at]) + '"sample": '
        tail = "".join(", " + p for p in pairs[at:]) + "}"
        return [
            "gen:" + hashlib.sha256(f"{head}{int(s)}{tail}".encode()).hexdigest() for s in samples
        ]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self


@dataclass
class Completion:
    texts: list[str]
    usage: Usage = field(default_factory=Usage)


@dataclass
class ChoiceScores:
    """Probability of each choice label, normalised over the choices."""

    probs: list[float]
    usage: Usage = field(default_factory=Usage)


def choice_cache_key(model: str, messages: tuple[tuple[str, str], ...], mcq: MCQ) -> str:
    payload = {"model": model, "messages": messages, "mcq": asdict(mcq), "kind": "choice_probs"}
    return "cp:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# Set by RoleClient around one paid call and awaited once the call holds its concurrency slot,
# just before it is sent: a budget is then checked against the calls really in flight, not
# against every call still queued for a slot, which keeps a cost ceiling's overshoot within the
# backend's concurrency limit.
before_send: contextvars.ContextVar[Callable[[], Awaitable[None]] | None] = contextvars.ContextVar(
    "cdv_before_send", default=None
)
# Set by RoleClient around one call: told of every failed attempt that is about to be retried, so
# the run can count (and show) requests the server refused even when a retry then succeeds.
on_retry: contextvars.ContextVar[Callable[[BaseException], None] | None] = contextvars.ContextVar(
    "cdv_on_retry", default=None
)


class Limiter(Protocol):
    """A concurrency limit shared beyond one process (e.g. a Ray actor all workers go through)."""

    async def acquire(self, name: str, limit: int) -> Any: ...

    def release(self, name: str, token: Any) -> None: ...


class Model(ABC):
    """A model reachable by a ``provider/model`` string.

    Subclasses implement ``_generate`` (and ``_choice_probs`` where they can); this base adds the
    concurrency limit and retries with exponential back-off so every backend behaves the same.
    """

    provider: str = ""
    supports_choice_probs: bool = False
    # Writes free text (a step-by-step answer to a question without choices, a sentence).
    writes_text: bool = True
    # Price per million tokens (input, output); None when unknown or free.
    price_per_mtok: tuple[float, float] | None = None

    def __init__(
        self,
        name: str,
        *,
        concurrency: int = 8,
        max_retries: int = 5,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        outage_after: float = 5.0,
    ) -> None:
        self.name = name
        self.outage_after = outage_after
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        # Set by a distributed executor: the per-process limit above stays, and this one caps the
        # requests all processes together send to the same server.
        self.limiter: Limiter | None = None
        # When a call last succeeded (monotonic) and since when (wall clock) calls have failed:
        # a call that exhausts its retries with nothing answered meanwhile is an outage.
        self._last_ok = -math.inf
        self._failing_since: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; tests and the CLI may run several loops in turn.
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._sem_loop = loop
        return self._sem

    @asynccontextmanager
    async def _global_slot(self) -> AsyncIterator[None]:
        if self.limiter is None:
            yield
            return
        token = await self.limiter.acquire(self.name, self.concurrency)
        try:
            yield
        finally:
            self.limiter.release(self.name, token)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        async with self._semaphore(), self._global_slot():
            gate = before_send.get()
            if gate is not None:
                await gate()
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.max_retries + 1),
                    wait=_RetryWait(self.retry_base, self.retry_max),
                    retry=retry_if_exception(lambda e: isinstance(e, ModelError) and e.retryable),
                    before_sleep=self._retrying,
                    reraise=True,
                ):
                    with attempt:
                        result = await fn()
            except ModelError as exc:
                if exc.retryable:
                    self._note_failure()
                    down = time.time() - (self._failing_since or time.time())
                    # Nothing answered during this call's whole retry window, and calls have been
                    # failing for a while (a burst of failures at start-up is not an outage).
                    if self._last_ok < started and down >= self.outage_after:
                        raise self._outage(exc) from exc
                raise
            self._last_ok = time.monotonic()
            self._failing_since = None
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_failure(self) -> None:
        if self._failing_since is None:
            self._failing_since = time.time()

    def _retrying(self, retry_state: Any) -> None:
        self._note_failure()
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hook = on_retry.get()
        if hook is not None and exc is not None:
            hook(exc)

    def _outage(self, exc: ModelError) -> OutageError:
        since = time.strftime("%H:%M:%S", time.localtime(self._failing_since or time.time()))
        detail = str(exc).removeprefix(f"[{self.name}] ")
        return OutageError(
            f"server not answering since {since} ({detail}); the run stopped and nothing paid "
            "for is lost: rerun the same command to resume",
            model=self.name,
            status=exc.status,
        )

    async def check(self) -> None:  # noqa: B027 - optional hook
        """Before a run pays for anything: can this model be used at all (key, server, name)?

        Raises a ModelError saying what is wrong. Local backends validate their path when they
        are built, so the default has nothing left to check.
        """

    async def generate(self, request: GenerateRequest, n: int = 1) -> Completion:
        """Return ``n`` samples for ``request`` (samples first_sample .. first_sample+n-1)."""
        return await self._call(lambda: self._generate(request, n))

    async def choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        """Exact probability of each choice, for backends with ``supports_choice_probs``."""
        return await self._call(lambda: self._choice_probs(messages, mcq))

    @abstractmethod
    async def _generate(self, request: GenerateRequest, n: int) -> Completion: ...

    async def _choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        from cdvkit.models.errors import UnsupportedError

        raise UnsupportedError("this backend gives no choice probabilities", model=self.name)

    def cost(self, usage: Usage) -> float:
        if not self.price_per_mtok:
            return 0.0
        pin, pout = self.price_per_mtok
        return (usage.prompt_tokens * pin + usage.completion_tokens * pout) / 1e6

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients or sockets; backends that hold none keep this no-op."""


class _RetryWait:
    """Exponential back-off with jitter that honours a server's Retry-After when it sends one."""

    def __init__(self, base: float, maximum: float) -> None:
        self._exp = wait_exponential_jitter(multiplier=base, max=maximum, jitter=base)
        self._max = maximum

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TransientModelError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self._max)
        return self._exp(retry_state)
