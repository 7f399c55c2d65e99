"""Persistent run store: one SQLite database per run directory."""

from cdvkit.store.readonly import ReadOnlyRunError, check_writable_output
from cdvkit.store.schema import SCHEMA_VERSION, IncompatibleRunError
from cdvkit.store.sqlite import RunLockedError, RunStore

__all__ = [
    "SCHEMA_VERSION",
    "IncompatibleRunError",
    "ReadOnlyRunError",
    "RunLockedError",
    "RunStore",
    "check_writable_output",
]
