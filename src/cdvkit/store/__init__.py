"""Persistent run store: one SQLite database per run directory."""

from cdvkit.store.sqlite import (
    SCHEMA_VERSION,
    IncompatibleRunError,
    ReadOnlyRunError,
    RunLockedError,
    RunStore,
    check_writable_output,
)

__all__ = [
    "SCHEMA_VERSION",
    "IncompatibleRunError",
    "ReadOnlyRunError",
    "RunLockedError",
    "RunStore",
    "check_writable_output",
]
