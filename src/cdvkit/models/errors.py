"""Errors raised by model backends.

Each carries the model it belongs to, so a message in a long run names the failing call. None of
them ever include credentials: backends pass only the model name and server text.
"""

from __future__ import annotations


class ModelError(Exception):
    """A model call failed for good (after any retries)."""

    retryable = False

    def __init__(self, message: str, *, model: str = "", status: int | None = None) -> None:
        self.model = model
        self.status = status
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
    ) -> None:
        super().__init__(message, model=model, status=status)
        self.retry_after = retry_after


class AuthenticationError(ModelError):
    """Bad or missing credentials: retrying cannot help and the whole run must stop."""


class BadResponseError(ModelError):
    """The server answered, but not with something we can use (non-JSON body, no choices)."""

    retryable = True


class UnsupportedError(ModelError):
    """The backend cannot do what was asked (e.g. free-text generation from an embedding model)."""


class BackendUnavailableError(ModelError):
    """The backend's optional dependency is not installed or the model cannot be found."""


class BudgetExceeded(Exception):
    """The run-level ceiling on calls or cost was reached; the run stops and can be resumed."""


class OutageError(ModelError):
    """A call failed for good and no call to the same model succeeded since it started: the
    server is down (or refusing everything), so the run stops instead of failing question after
    question. Nothing paid for is lost; a rerun resumes."""


# Errors that stop a whole run (or evaluation) where it is: no other question would escape them.
STOPS_RUN: tuple[type[BaseException], ...] = (AuthenticationError, OutageError, BudgetExceeded)


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
