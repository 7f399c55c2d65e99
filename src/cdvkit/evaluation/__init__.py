"""Evaluate models on CDV examples: paired accuracy drop, significance, transfer, defenses."""

from cdvkit.evaluation.config import EvalConfig
from cdvkit.evaluation.defenses import Defense, resolve_defense
from cdvkit.evaluation.evaluate import check_eval_models, evaluate, run_protocol
from cdvkit.evaluation.evaluator import Evaluator
from cdvkit.evaluation.example_rows import from_run_dir, from_store, items_from_examples
from cdvkit.evaluation.examples_file import attach_dataset, load_examples_file
from cdvkit.evaluation.items import EvalItem, ExampleSet, Variant
from cdvkit.evaluation.presets import EVAL_PRESETS, eval_preset
from cdvkit.evaluation.reference import items_from_reference
from cdvkit.evaluation.results_file import EVALUATION_FILE, load_evaluation, save_evaluation
from cdvkit.evaluation.row_checks import ExamplesFileError
from cdvkit.evaluation.settings import EvalSettings
from cdvkit.evaluation.stats import McNemar, PairedSummary, mcnemar, paired_bootstrap

__all__ = [
    "EVALUATION_FILE",
    "EVAL_PRESETS",
    "Defense",
    "EvalConfig",
    "EvalItem",
    "EvalSettings",
    "Evaluator",
    "ExampleSet",
    "ExamplesFileError",
    "McNemar",
    "PairedSummary",
    "Variant",
    "attach_dataset",
    "check_eval_models",
    "eval_preset",
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
