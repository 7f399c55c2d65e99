"""Writes to a run store until it is killed, for the torn-write tests.

Usage: torn_writer.py RUN_DIR BATCHES

Commits BATCHES groups of calls the way RoleClient stores a batch of samples (one transaction
each), printing "committed <i>" after each commit, then opens one large transaction that it never
commits, prints "in-txn" once that transaction has spilled pages into the WAL, and waits to be
killed inside it. It also prints "wal-committed <bytes>": the WAL's size after the last commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cdvkit.store import RunStore

ROWS_PER_BATCH = 3


def main() -> None:
    run_dir, batches = Path(sys.argv[1]), int(sys.argv[2])
    store = RunStore(run_dir)
    # A small page cache makes SQLite write the open transaction's pages into the WAL early,
    # so the kill leaves uncommitted frames there for recovery to discard.
    store.db.execute("PRAGMA cache_size=-64")
    for b in range(batches):
        with store.transaction():
            for j in range(ROWS_PER_BATCH):
                store.put_call(
                    f"committed-{b}-{j}",
                    model="m",
                    role="target",
                    request={"b": b, "j": j},
                    response={"value": f"answer {b}.{j} " + "x" * 200},
                    cost=0.001 if j == 0 else 0.0,
                    batch=f"batch-{b}",
                )
        print(f"committed {b}", flush=True)
    wal = run_dir / "run.db-wal"
    start = wal.stat().st_size
    print(f"wal-committed {start}", flush=True)  # frames past this offset are never committed
    store.db.execute("BEGIN")
    i = 0
    while True:
        store.put_call(
            f"torn-{i}", model="m", role="target", request={"i": i},
            response={"value": "y" * 20_000}, batch="torn",
        )  # fmt: skip
        i += 1
        if i == 50:
            assert wal.stat().st_size > start + 500_000, "the open transaction did not spill"
            print("in-txn", flush=True)
            time.sleep(60)  # killed here, mid-transaction


if __name__ == "__main__":
    main()
