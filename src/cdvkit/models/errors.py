"""Errors raised by model backends.

Each carries the model it belongs to, so a message in a long run names the failing call. None of
them ever include credentials: backends pass only the model name and server text.
"""

from __future__ import annotations

import socket
import ssl

# What happened to a failed request, as a backend classifies it from the exception it met (never
# from the SDK's wording, which calls a refused connection a timeout): the server gave no answer
# at all ...
REFUSED = "refused"  # nothing listens there (the server is down)
RESET = "reset"  # the connection was reset or broken
CLOSED = "closed"  # the server closed the connection before its reply was complete
TIMEOUT = "timeout"  # no reply within the request timeout
UNREACHABLE = "unreachable"  # the host cannot be reached (no route, name unknown, TLS failure)
# ... or it answered with an HTTP status or a body we cannot use.
RATE_LIMITED = "rate_limited"  # 429
SERVER_ERROR = "server_error"  # 5xx, 408
REJECTED = "rejected"  # any other 4xx
BAD_RESPONSE = "bad_response"  # 2xx whose body is not a usable reply

# Kinds where the server gave no answer at all: only these can declare an outage quickly (a 429
# or a 500 is an answer: the server is there, and waiting is the right response).
NO_ANSWER = frozenset({REFUSED, RESET, CLOSED, TIMEOUT, UNREACHABLE})


class ModelError(Exception):
    """A model call failed for good (after any retries).

    ``kind`` says what happened (one of the kinds above, or None where no backend said).
    """

    retryable = False
    kind: str | None = None

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = None,
        kind: str | None = None,
    ) -> None:
        self.model = model
        self.status = status
        if kind is not None:
            self.kind = kind
        prefix = f"[{model}] " if model else ""
        super().__init__(prefix + message)


class TransientModelError(ModelError):
    """Rate limit, server error, timeout or broken connection: worth retrying."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status, kind=kind)
        self.retry_after = retry_after


class AuthenticationError(ModelError):
    """Bad or missing credentials: retrying cannot help and the whole run must stop."""


class BadResponseError(ModelError):
    """The server answered, but not with something we can use (non-JSON body, no choices)."""

    retryable = True
    kind = BAD_RESPONSE


class UnsupportedError(ModelError):
    """The backend cannot do what was asked (e.g. free-text generation from an embedding model)."""


class BackendUnavailableError(ModelError):
    """The backend's optional dependency is not installed or the model cannot be found."""


class BudgetExceeded(Exception):
    """The run-level ceiling on calls or cost was reached; the run stops and can be resumed."""


class OutageError(ModelError):
    """A call failed for good and no call to the same model succeeded since it started: the
    server is down (or refusing everything), so the run stops instead of failing question after
    question. Nothing paid for is lost; a rerun resumes.

    ``sent`` is False for a call that failed at once because the outage was already declared:
    no request went out, so none is counted as failed."""

    sent = True


# The one policy for a model error, decided here and only asked elsewhere:
# - retried: a ModelError whose ``retryable`` is true (429, 5xx, timeouts, broken connections),
#   with back-off, by the model itself (Model._call), counted once;
# - stops the run (or evaluation) where it is: the errors below, which no other question would
#   escape (a refused key, a server that is down, the budget spent, a backend that cannot be
#   built, a model without what the protocol needs); nothing paid is lost, a rerun resumes;
# - lost: any other ModelError, after its retries: that call's question is incomplete (no
#   result), the run goes on, and a rerun pays for that call again.
STOPS_RUN: tuple[type[BaseException], ...] = (
    AuthenticationError,
    OutageError,
    BudgetExceeded,
    BackendUnavailableError,
    UnsupportedError,
)


def error_named(name: str | None, message: str) -> Exception:
    """The error ``name`` (a class above) carrying ``message``, as raised where the work ran (a
    Ray worker, whose exceptions do not cross as themselves); an unknown name is a RuntimeError."""
    known: dict[str, type[Exception]] = {
        cls.__name__: cls
        for cls in (
            ModelError,
            AuthenticationError,
            BadResponseError,
            UnsupportedError,
            BackendUnavailableError,
            OutageError,
            BudgetExceeded,
        )
    }
    return known.get(name or "", RuntimeError)(message)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first (cycles cut)."""
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        out.append(cur)
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return out


# Transport exceptions without an OS error under them, by what their class names say (aiohttp's
# ServerDisconnectedError and ClientPayloadError, h11's RemoteProtocolError, httpx's ReadError).
_CLOSED_NAMES = ("Disconnect", "RemoteProtocol", "Payload", "ContentLength", "ReadError")


def transport_failure(exc: BaseException) -> tuple[str, BaseException]:
    """What went wrong under an SDK's connection or timeout error: (kind, the exception that
    shows it).

    The SDKs wrap every transport failure in a "connection error" or a "timeout" of their own,
    and the OpenAI SDK's aiohttp transport reports a refused connection, and a connection the
    server dropped, as a timeout. The exception at the bottom of the chain is what happened, so
    the chain is read from the bottom up: an OS error names it (refused, reset, timed out,
    unresolvable); failing that, the names of the transport's own exceptions do.
    """
    chain = _chain(exc)
    for cause in reversed(chain):
        if isinstance(cause, ConnectionRefusedError):
            return REFUSED, cause
        if isinstance(cause, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
            return RESET, cause
        if isinstance(cause, TimeoutError):  # asyncio's and socket's timeouts too
            return TIMEOUT, cause
        if isinstance(cause, socket.gaierror | ssl.SSLError):
            return UNREACHABLE, cause
    for cause in reversed(chain):
        if isinstance(cause, OSError) and type(cause) is not OSError:
            return UNREACHABLE, cause  # no route to host, network down, ...
    for cause in reversed(chain):
        name = type(cause).__name__
        if any(part in name for part in _CLOSED_NAMES):
            return CLOSED, cause
        if "Timeout" in name and cause is chain[-1]:
            return TIMEOUT, cause
    # An OS error with no finer type ("All connection attempts failed"), or nothing to go by.
    if any(isinstance(c, OSError) for c in chain):
        return UNREACHABLE, chain[-1]
    return (TIMEOUT if "Timeout" in type(exc).__name__ else CLOSED), chain[-1]
