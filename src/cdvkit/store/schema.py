"""The run store's tables, and how a store written by another cdvkit version is met.

A run directory outlives the cdvkit that wrote it: columns added since schema 1 shipped are added
on the next writable open, and a store of another schema (or another program's database) is
refused before anything is written, so it is left byte for byte as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cdvkit.version import __version__

SCHEMA_VERSION = 1
DB_NAME = "run.db"
LOCK_NAME = "run.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    original_rate REAL,
    error TEXT,
    updated REAL
);
CREATE TABLE IF NOT EXISTS nodes (
    question_id TEXT NOT NULL,
    path TEXT NOT NULL,
    parent_path TEXT,
    depth INTEGER NOT NULL,
    question TEXT NOT NULL,
    choices TEXT NOT NULL,
    answer INTEGER NOT NULL,
    distraction TEXT,
    placement TEXT,
    target_option TEXT,
    status TEXT NOT NULL,
    rate REAL,
    verdicts TEXT,
    outputs TEXT,
    seq INTEGER NOT NULL,
    verified INTEGER,
    PRIMARY KEY (question_id, path)
);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    role TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    batch TEXT,
    created REAL NOT NULL,
    phase TEXT NOT NULL DEFAULT 'search'
);
-- Which question's search paid for a call: a distributed executor ships a question's own calls
-- to the worker that replays it. Added without a schema bump: older stores simply lack rows.
CREATE TABLE IF NOT EXISTS call_owners (
    question_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (question_id, key)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    error TEXT NOT NULL,
    created REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'lost',
    phase TEXT NOT NULL DEFAULT 'search'
);
-- Requests sent and not answered yet, one row per sample key, by the store opening ("process")
-- that sent them; a row stays behind when its process is killed with the request in flight.
-- ``resent``: an earlier process had sent it too. Added without a schema bump, like call_owners.
CREATE TABLE IF NOT EXISTS calls_in_flight (
    key TEXT PRIMARY KEY,
    process TEXT NOT NULL,
    role TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT 'search',
    sent REAL NOT NULL,
    resent INTEGER NOT NULL DEFAULT 0
);
-- Requests answered and stored after an earlier process had sent them and died (or stopped)
-- before storing the reply: each was paid for twice. One row per request (its first key).
CREATE TABLE IF NOT EXISTS calls_paid_twice (
    key TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT 'search',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_status ON nodes(status);
CREATE INDEX IF NOT EXISTS calls_by_role ON calls(role);
"""


# Columns added after schema 1 first shipped: a store written before them gains them on its next
# writable open (``migrate``), and readers never assume they exist.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # Which command paid a call: the search ("search") or `cdv evaluate` ("evaluate").
    ("calls", "phase", "TEXT NOT NULL DEFAULT 'search'"),
    # A failed request: "lost" (failed for good; its question is incomplete), "retried" (an
    # attempt that was retried) or "refused" (a capability probe the server refused).
    ("failures", "kind", "TEXT NOT NULL DEFAULT 'lost'"),
    ("failures", "phase", "TEXT NOT NULL DEFAULT 'search'"),
    # Whether the protocol confirmed a candidate node (NULL: never a candidate).
    ("nodes", "verified", "INTEGER"),
    # P(enhanceable) the prefilter gave the question when it decided to search or skip it
    # (NULL: no prefilter, or searched before it had learnt anything).
    ("questions", "prefilter_p", "REAL"),
)


class IncompatibleRunError(RuntimeError):
    """The run directory was written by an incompatible version of cdvkit."""


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})").fetchall()}


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns of ADDED_COLUMNS a store written before them lacks."""
    for table, column, decl in ADDED_COLUMNS:
        if column not in table_columns(db, table):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            if (table, column) == ("calls", "phase"):
                # Before phases existed, evaluation answers were the calls of role "eval".
                db.execute("UPDATE calls SET phase='evaluate' WHERE role='eval'")


def check_version(db: sqlite3.Connection, run_dir: Path) -> None:
    """Raise IncompatibleRunError for a store this cdvkit must not write; run it before any write.

    An empty database (a new run) passes.
    """
    has_meta = db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if not has_meta:
        if db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            # Another program's database: adding the run tables to it would corrupt it.
            raise IncompatibleRunError(
                f"{run_dir / DB_NAME} is an SQLite database but not a cdvkit run "
                "store; cdv will not write to it. Use a new --run-dir."
            )
        return
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is not None and str(row[0]).strip() != str(SCHEMA_VERSION):
        by = db.execute("SELECT value FROM meta WHERE key='created_by'").fetchone()
        created = (by[0] if by is not None else None) or "an unknown version"
        raise IncompatibleRunError(
            f"run directory {run_dir} was written by {created} (store schema {row[0]}); "
            f"this cdvkit {__version__} uses schema {SCHEMA_VERSION} and will not write to it. "
            "Use a new --run-dir, or the cdvkit version that made it."
        )
