"""The typed shape of what a run log holds, as every reader receives it.

They are TypedDicts: the store, the reports and the exports pass them around as plain JSON-able
dicts (so a row on disk, in an export and in memory is the same thing), while a type checker and
a reader see every field, its type and its meaning in one place.
"""

from __future__ import annotations

from typing import Any, Generic, NotRequired, TypedDict, TypeVar


class Example(TypedDict):
    """One CDV example: a distracted question the target answers wrong under the protocol."""

    question_id: str
    source: str
    subject: str | None
    original_question: str
    original_choices: list[str]
    original_answer: int  # index into original_choices (-1: a free-form question has none)
    original_rate: float | None  # share of the protocol's answers to the original that are right
    question: str  # the distracted question
    choices: list[str]  # shuffled
    answer: int  # index into choices (-1 for free-form)
    answer_text: str  # the right choice's text, or a free-form question's reference answer
    rate: float | None  # the search's score of this node (P(correct), or share right)
    depth: int  # distraction sentences stacked, plus one
    path: str  # the node's place in the question's search tree
    distraction: str | None  # the sentence this node added
    placement: str | None  # prefix | suffix
    target_option: str | None  # the wrong option (or free-form answer) the sentence pushes
    # Free-form questions only (multiple-choice rows are as they always were):
    task: NotRequired[str]  # numeric | short_answer
    references: NotRequired[list[str]]  # the accepted answers, the reference first


class FailureGroup(TypedDict):
    kind: str  # lost | retried | refused
    role: str
    reason: str
    count: int  # requests
    questions: int  # distinct questions they served


class RunStats(TypedDict):
    """The summary of a run (``cdvkit.reporting.summary.summarize``); what every view shows."""

    questions: int
    searched: int
    originally_correct: int
    originally_failed: int
    with_example: int  # finished (done) questions with at least one example
    with_example_unfinished: int  # unfinished questions that already hold an example
    examples: int
    success_rate: float  # with_example / originally_correct: finished questions only
    candidates: int  # nodes the search's score called fooled
    verified: int  # of those, confirmed under the protocol
    rejected_by_verification: int
    incomplete: int  # questions whose search lost a call (or stopped): no result yet
    pending: int  # never started
    skipped: int  # left out by the prefilter
    unfinished: int  # incomplete + pending
    calls: int  # the search's paid calls
    paid_twice: int  # of the search's calls, those paid again after a crash cut them off
    requests_failed: int  # requests that brought no usable answer
    cost: float  # USD, the search's
    calls_per_example: float | None
    failures: list[FailureGroup]
    by_role: dict[str, dict[str, Any]]  # calls, samples, tokens and cost per role
    protocol: str | None  # how the target was asked and judged, in words


class RunSpec(TypedDict):
    """What a run is: its settings, and which schema and cdvkit version wrote it."""

    schema_version: int | None  # None: a run directory from before versions were recorded
    created_by: str | None  # "cdvkit X.Y.Z"
    config: dict[str, Any] | None  # SearchConfig.to_dict(); None before the first search


# --- evaluation.json ------------------------------------------------------------------------------
class McNemarResult(TypedDict):
    b: int  # right on the original, wrong distracted
    c: int  # wrong on the original, right distracted
    statistic: float | None
    p_value: float
    method: str  # exact | chi2 | none


class PairedResult(TypedDict):
    """Accuracy on the original and distracted questions, paired per question, with CIs."""

    n: int  # questions paired
    original: float | None
    distracted: float | None
    drop: float | None  # original - distracted, in accuracy points
    relative_drop: float | None  # drop / original
    original_ci: list[float] | None
    distracted_ci: list[float] | None
    drop_ci: list[float] | None
    relative_drop_ci: list[float] | None
    mcnemar: McNemarResult
    confidence: float
    resamples: int


class WholeResult(TypedDict):
    """Accuracy on every question of the dataset (the originals), under the protocol."""

    n: int  # questions: with an example or not, originally failed and skipped ones included
    original: float | None
    original_ci: list[float] | None
    with_example: int  # of n, the questions with a CDV example (the paired numbers' n)
    originally_failed: int  # of n, the questions the search's target failed undistracted


class OrderResult(TypedDict):
    """The order-only control, on the questions with an example: the original question asked
    with the example's choice order splits the drop into the order's part and the
    distraction's (order_drop + distraction_drop = drop)."""

    n: int
    original: float | None
    reordered: float | None  # the original's text, the example's choices in its order
    distracted: float | None
    drop: float | None  # original - distracted
    order_drop: float | None  # original - reordered
    distraction_drop: float | None  # reordered - distracted
    reordered_ci: list[float] | None
    drop_ci: list[float] | None
    order_drop_ci: list[float] | None
    distraction_drop_ci: list[float] | None


class PaperResult(TypedDict):
    """The paper's numbers (`--preset paper`): original accuracy over every question, enhanced
    accuracy over the first example of each question with one, where a question the target
    originally failed counts as its own (it is no CDV example); drop = original - enhanced."""

    n_original: int
    n_enhanced: int
    originally_failed: int  # of n_enhanced, originally failed questions counted as themselves
    original: float | None
    enhanced: float | None
    drop: float | None
    original_ci: list[float] | None
    enhanced_ci: list[float] | None
    drop_ci: list[float] | None


R = TypeVar("R")


class Split(TypedDict, Generic[R]):
    """One result over all questions and per dataset (and per subject with `--by subject`)."""

    overall: R
    by_dataset: dict[str, R]
    by_subject: dict[str, R] | None


class ModelResult(TypedDict):
    mode: str | None  # how the answers were read (letters, probabilities...)
    overall: PairedResult
    by_dataset: dict[str, PairedResult]
    dropped: int  # questions left out because one of their answers failed
    items: list[list[Any]]  # [question id, dataset, original accuracy, distracted accuracy]
    # Added later (absent from older evaluation files; read them with .get):
    by_subject: NotRequired[dict[str, PairedResult] | None]  # with --by subject
    whole: NotRequired[Split[WholeResult] | None]  # None: the set's dataset is not known whole
    order: NotRequired[Split[OrderResult] | None]  # None: no order control (off, or free-form)
    paper: NotRequired[Split[PaperResult] | None]  # with --preset paper
    # The run's own target under the run's own protocol: its examples are exactly the questions
    # it failed, so its distracted accuracy is 0% by construction, not a measurement.
    by_construction: NotRequired[bool]


class Transfer(TypedDict):
    """Rows: example sets; columns: models; each metric a rows x cols matrix."""

    rows: list[str]
    cols: list[str]
    original: list[list[float | None]]
    distracted: list[list[float | None]]
    drop: list[list[float | None]]
    relative_drop: list[list[float | None]]


class EvaluationResult(TypedDict, total=False):
    """One defense's evaluation (an entry of evaluation.json); what every view of it shows."""

    defense: str
    defense_text: str | None
    defense_path: str | None
    defense_sha: str | None
    settings: dict[str, Any]  # EvalSettings, with the protocol in words
    models: list[str]
    sources: list[dict[str, Any]]  # the example sets, described
    results: dict[str, dict[str, ModelResult]]  # example set -> model -> result
    transfer: Transfer
    answers: dict[str, int]  # total, cached
    errors: list[str]  # answers that failed (their questions dropped for that model)
    created: float
    paid_calls: int  # this evaluation's own paid calls
    cost: float
