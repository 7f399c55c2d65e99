"""Persistent run store: one SQLite database per run directory."""

from cdvkit.store.diskfull import DiskFullError
from cdvkit.store.outputs import OutputError
from cdvkit.store.readonly import ReadOnlyRunError, check_writable_output
from cdvkit.store.schema import SCHEMA_VERSION, IncompatibleRunError
from cdvkit.store.sqlite import NotARunDirError, RunLockedError, RunStore

__all__ = [
    "SCHEMA_VERSION",
    "DiskFullError",
    "IncompatibleRunError",
    "NotARunDirError",
    "OutputError",
    "ReadOnlyRunError",
    "RunLockedError",
    "RunStore",
    "check_writable_output",
]
