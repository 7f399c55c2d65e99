"""Persistent run store: one SQLite database per run directory."""

from cdvkit.store.sqlite import (
    SCHEMA_VERSION,
    IncompatibleRunError,
    RunLockedError,
    RunStore,
)

__all__ = ["SCHEMA_VERSION", "IncompatibleRunError", "RunLockedError", "RunStore"]
