"""Runs `cdv` in a subprocess with the oracle scripted models registered.

Used by tests that kill a real `cdv generate` process. The data file comes from CDV_ORACLE_DATA.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdvkit.data.question import Question
from cdvkit.models.scripted import REGISTRY
from scripted_helpers import marking_proposer, oracle_responder


def main() -> None:
    if os.environ.get("CDV_FREE_DATA"):
        from freeform_helpers import free_oracle, free_proposer, numeric

        lines = Path(os.environ["CDV_FREE_DATA"]).read_text().splitlines()
        free = [
            numeric(str(i), r["question"], str(r["answer"]))
            for i, r in enumerate(map(json.loads, lines))
        ]
        REGISTRY["free-oracle"] = free_oracle(free)
        REGISTRY["free-prop"] = free_proposer
        from cdvkit.cli.app import main as cdv_main

        cdv_main()
        return
    rows = [
        json.loads(line) for line in Path(os.environ["CDV_ORACLE_DATA"]).read_text().splitlines()
    ]
    qs = [
        Question(str(i), r["question"], tuple(r["choices"]), r["choices"].index(r["answer"]))
        for i, r in enumerate(rows)
    ]
    REGISTRY["oracle"] = oracle_responder(qs, fooled_at=int(os.environ.get("CDV_FOOLED_AT", "2")))
    REGISTRY["prop"] = marking_proposer
    from cdvkit.cli.app import main as cdv_main

    cdv_main()


if __name__ == "__main__":
    main()
