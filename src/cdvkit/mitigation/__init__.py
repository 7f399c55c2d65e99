"""Mitigation: training data from CDV examples (SFT / DPO) and fine-tuning with TRL + PEFT.

Importing this package needs neither trl nor peft; :func:`train` imports them when it runs.
"""

from cdvkit.mitigation.train import (
    METHODS,
    TRAIN_INFO_FILE,
    TrainOptions,
    TrainResult,
    fit_rows_to_tokenizer,
    model_path,
    read_rows,
    train,
)
from cdvkit.mitigation.training_data import (
    FORMATS,
    RESPONSES,
    TEST_EXAMPLES_FILE,
    TEST_FILE,
    TRAIN_FILE,
    TrainingExport,
    TrainingPair,
    collect_pairs,
    export_training,
    pair_row,
    split_questions,
)

__all__ = [
    "FORMATS",
    "METHODS",
    "RESPONSES",
    "TEST_EXAMPLES_FILE",
    "TEST_FILE",
    "TRAIN_FILE",
    "TRAIN_INFO_FILE",
    "TrainOptions",
    "TrainResult",
    "TrainingExport",
    "TrainingPair",
    "collect_pairs",
    "export_training",
    "fit_rows_to_tokenizer",
    "model_path",
    "pair_row",
    "read_rows",
    "split_questions",
    "train",
]
