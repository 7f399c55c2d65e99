"""``sft`` and ``dpo``: training data as export formats (``cdv export --format sft``).

Registered here, beside the training data they write (:mod:`.training_data`), rather than in
``cdvkit.export``, which this package reads: the export registry imports this module by name
the first time it is listed or asked for a format it does not hold.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from cdvkit.export.base import ExportResult, FormatOption, exporter
from cdvkit.mitigation.training_data import (
    DEFAULT_DIRS,
    FORMATS,
    TEST_EXAMPLES_FILE,
    TEST_FILE,
    TRAIN_FILE,
    write_training,
)
from cdvkit.store import RunStore

# The writer checks test_share and response itself, with the messages the command has always
# given (--test-share, unknown response style).
TRAINING_OPTIONS = {
    "chat": FormatOption(False, "conversational rows (messages) for models with a chat template"),
    "test_share": FormatOption(0.2, "share of ORIGINAL questions held out in the test split"),
    "seed": FormatOption(0, "seed of the train/test split"),
    "response": FormatOption(
        "auto",
        "answers: auto (stored replies, else a constructed rationale) | rationale | short "
        "(just 'Answer: X')",
    ),
    "first_only": FormatOption(False, "only the first example per question"),
}

HELP = {
    "sft": "SFT training data (TRL): train/test split by question, held-out examples",
    "dpo": "DPO training data (TRL): chosen and rejected answers, split by question",
}


def _writer(fmt: str) -> Any:
    def write(store: RunStore, path: str | Path, **options: Any) -> ExportResult:
        res = write_training(store, Path(path), fmt, **options)
        return ExportResult(
            res.path,
            res.train + res.test,
            res.files,
            headline=(
                f"wrote {res.train} {fmt.upper()} rows ({len(res.train_questions)} questions) "
                f"to {res.path / TRAIN_FILE} and {res.test} ({len(res.test_questions)} "
                f"held-out questions) to {res.path / TEST_FILE}"
            ),
            notes=res.summary(),  # where chosen / rejected came from (also in split.json)
            commands=[
                (
                    "train on it",
                    f"cdv train --data {shlex.quote(str(res.path))} --model hf/<base> "
                    f"--method {fmt}",
                ),
                (
                    "then evaluate both on the held-out questions",
                    "cdv evaluate --examples "
                    f"{shlex.quote(str(res.path / TEST_EXAMPLES_FILE))} "
                    "--models hf/<base> hf/<trained>",
                ),
            ],
        )

    write.__name__ = write.__qualname__ = f"export_{fmt}"
    return write


for _fmt in FORMATS:
    exporter(
        _fmt,
        DEFAULT_DIRS[_fmt],
        help=HELP[_fmt],
        folder=True,
        options=TRAINING_OPTIONS,
        counts="rows",
    )(_writer(_fmt))
