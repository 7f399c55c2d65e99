"""Evaluate models on CDV examples: paired accuracy drop, significance, transfer, defenses."""

from cdvkit.evaluation.evaluate import (
    EVALUATION_FILE,
    Defense,
    EvalSettings,
    Evaluator,
    check_eval_models,
    evaluate,
    load_evaluation,
    resolve_defense,
    run_protocol,
    save_evaluation,
)
from cdvkit.evaluation.items import (
    EvalItem,
    ExampleSet,
    ExamplesFileError,
    Variant,
    from_run_dir,
    from_store,
    items_from_examples,
    items_from_reference,
    load_examples_file,
)
from cdvkit.evaluation.stats import McNemar, PairedSummary, mcnemar, paired_bootstrap

__all__ = [
    "EVALUATION_FILE",
    "Defense",
    "EvalItem",
    "EvalSettings",
    "Evaluator",
    "ExampleSet",
    "ExamplesFileError",
    "McNemar",
    "PairedSummary",
    "Variant",
    "check_eval_models",
    "evaluate",
    "from_run_dir",
    "from_store",
    "items_from_examples",
    "items_from_reference",
    "load_evaluation",
    "load_examples_file",
    "mcnemar",
    "paired_bootstrap",
    "resolve_defense",
    "run_protocol",
    "save_evaluation",
]
