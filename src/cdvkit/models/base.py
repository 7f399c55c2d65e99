"""The one async interface behind every model role (target, proposer, judge, extractor)."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from cdvkit.models.errors import NO_ANSWER, ModelError, OutageError, TransientModelError

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
        # A, B, C...: the letters every prompt labels choices with.
        return [chr(ord("A") + i) for i in range(len(self.choices))]


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
        # Whether the server answers, as this model's calls in the running event loop saw it.
        self._health: _Health | None = None

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

    def _health_now(self) -> _Health:
        # Like the semaphore, one per event loop: a new run (a new loop) starts with no outage.
        loop = asyncio.get_running_loop()
        if self._health is None or self._health.loop is not loop:
            self._health = _Health(self, loop)
        return self._health

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        health = self._health_now()
        health.check()  # a call queued once the server is known to be down is never sent
        started = time.monotonic()
        async with self._semaphore(), self._global_slot():
            health.check()  # declared while this call waited for its slot
            gate = before_send.get()
            if gate is not None:
                await gate()
            try:
                # Watched from its first attempt to its last: an outage declared meanwhile ends
                # it at once, in flight or sleeping between retries, as an OutageError.
                with health.watch():
                    async for attempt in AsyncRetrying(
                        stop=stop_after_attempt(self.max_retries + 1),
                        wait=_RetryWait(self.retry_base, self.retry_max),
                        retry=retry_if_exception(
                            lambda e: isinstance(e, ModelError) and e.retryable
                        ),
                        before_sleep=self._retrying,
                        reraise=True,
                    ):
                        with attempt:
                            result = await fn()
            except ModelError as exc:
                if exc.retryable:
                    health.failed(exc)
                    # The slow rule, for failures that are answers (429, 5xx): nothing answered
                    # during this call's whole retry window, and calls have been failing for a
                    # while (a burst of failures at start-up is not an outage).
                    if (
                        not health.is_down()
                        and health.last_ok < started
                        and health.failing_for() >= self.outage_after
                    ):
                        health.declare(exc)
                    if health.is_down():
                        raise health.error() from exc
                raise
            health.ok()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(self, retry_state: Any) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, ModelError):
            self._health_now().failed(exc)
        hook = on_retry.get()
        if hook is not None and exc is not None:
            hook(exc)

    def _outage_message(self, exc: ModelError, since: float) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(since))
        detail = str(exc).removeprefix(f"[{self.name}] ")
        return (
            f"server not answering since {when} ({detail}); the run stopped and nothing paid "
            "for is lost: rerun the same command to resume"
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


class _Health:
    """Whether a model's server answers, as its calls in one event loop see it.

    An outage is declared when no call has succeeded for ``outage_after`` seconds while calls
    keep failing, by one of two rules:

    - the fast one: since the last success, at least two attempts got no answer at all
      (connection refused, reset or dropped, timed out: ``errors.NO_ANSWER``), the first of them
      ``outage_after`` seconds ago. A dead server is seen within ``outage_after`` (plus one
      request timeout, when it hangs instead of refusing);
    - the slow one, for failures that are answers (429, 5xx, an unusable body): a call failed
      through its whole retry window with nothing answered since it started, and calls have
      failed for ``outage_after`` seconds.

    Once declared, every call of the model fails at once with OutageError: those in flight or
    sleeping between retries are cancelled, and those still queued are never sent. Retrying them
    one by one would hold the run for a whole retry window per call. The run stops on the first
    of them; a call made ``outage_after`` seconds later (another run in the same event loop) is
    sent again, and its success clears the outage.
    """

    def __init__(self, model: Model, loop: asyncio.AbstractEventLoop) -> None:
        self.model = model
        self.loop = loop
        self.last_ok = -math.inf  # monotonic time of the last success
        self.failing_since: float | None = None  # first failure since then (monotonic)
        self.failing_wall = 0.0  # ... on the wall clock, for the message
        self.silent_since: float | None = None  # first no-answer failure since the last success
        self.silent_wall = 0.0
        self.silent_count = 0
        self.last_error: ModelError | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.down: str | None = None  # the outage's message, once declared
        self.down_until = -math.inf  # calls fail unsent until then (monotonic)
        self.status: int | None = None
        self.watched: set[asyncio.Task[Any]] = set()
        self.cancelled: set[asyncio.Task[Any]] = set()

    def ok(self) -> None:
        self.last_ok = time.monotonic()
        self.failing_since = self.silent_since = None
        self.silent_count = 0
        self.down = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def failing_for(self) -> float:
        return 0.0 if self.failing_since is None else time.monotonic() - self.failing_since

    def failed(self, exc: ModelError) -> None:
        """Note one failed attempt (retryable errors only)."""
        now = time.monotonic()
        self.last_error = exc
        if self.failing_since is None:
            self.failing_since, self.failing_wall = now, time.time()
        if exc.kind not in NO_ANSWER or self.is_down():
            return
        if self.silent_since is None:
            self.silent_since, self.silent_wall = now, time.time()
            if math.isfinite(self.model.outage_after):
                # Declared on time even when every call is asleep between retries.
                self.timer = self.loop.call_later(max(self.model.outage_after, 0.0), self._due)
        self.silent_count += 1
        if self.silent_count >= 2 and now - self.silent_since >= self.model.outage_after:
            self.declare(exc)

    def _due(self) -> None:
        self.timer = None
        if not self.is_down() and self.silent_count >= 2 and self.last_error is not None:
            self.declare(self.last_error)
        # One failure alone is no outage yet: the next one declares it (it is past due).

    def is_down(self) -> bool:
        return self.down is not None and time.monotonic() < self.down_until

    def declare(self, exc: ModelError) -> None:
        if self.is_down():
            return
        since = self.silent_wall if self.silent_since is not None else self.failing_wall
        self.down = self.model._outage_message(exc, since or time.time())
        self.down_until = time.monotonic() + max(self.model.outage_after, 1.0)
        self.status = exc.status
        for task in self.watched:
            if not task.done():
                self.cancelled.add(task)
                task.cancel()

    def error(self, *, sent: bool = True) -> OutageError:
        err = OutageError(self.down or "server not answering", model=self.model.name)
        err.status, err.sent = self.status, sent
        return err

    def check(self) -> None:
        if self.is_down():
            raise self.error(sent=False)

    @contextmanager
    def watch(self) -> Iterator[None]:
        """While the block runs, an outage declared elsewhere ends it with an OutageError."""
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - every call runs in a task
            yield
            return
        self.watched.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task not in self.cancelled:
                raise
            self.cancelled.discard(task)
            if task.uncancel() > 0:
                raise  # cancelled from outside too (Ctrl-C, the run stopping): that wins
            raise self.error() from None
        finally:
            self.watched.discard(task)
            self.cancelled.discard(task)


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
