"""The enhanceability classifier saved by `cdv prefilter train`: MiniLM embeddings of a question's
text and a logistic regression, with the metadata needed to trust a saved model later."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdvkit.prefilter.labels import (
    LABEL_MEANING,
    Labelled,
    QuestionLike,
    as_text,
    load_labelled,
)
from cdvkit.store.outputs import atomic_file

FORMAT = "cdvkit-prefilter"
FORMAT_VERSION = 1
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
# Strong regularisation: 384 embedding dimensions against about a thousand noisy labels. C=0.1
# had the best 5-fold AUC on the reference's file among 0.03-10 (0.61 vs 0.56 at C=10).
DEFAULT_C = 0.1
DEFAULT_THRESHOLD = 0.3

Progress = Callable[[int, int], None]  # (folds done, folds in all)

# Model files from before cdvkit recorded its labels: what they say instead of a record. Then the
# reference file's "Yes" was read as *not* enhanceable, so such a model trained on it ranks
# backwards.
UNRECORDED = (
    "unrecorded (a model file from before cdvkit recorded its labels; one trained on the "
    'reference file then read its "Yes" as not enhanceable, the opposite of what it means: '
    "train it again)"
)


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

    @property
    def label_sources(self) -> list[dict[str, Any]] | None:
        """Per source: its rows, positives and how its labels were read; None when the file
        predates the record."""
        sources = self.metadata.get("label_sources")
        return None if sources is None else [dict(s) for s in sources]

    @property
    def label_meaning(self) -> str:
        """What label 1 meant when this model was trained (``UNRECORDED`` for older files)."""
        if self.label_sources is None:
            return UNRECORDED
        return str(self.metadata.get("label", UNRECORDED))

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
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "classifier": self.classifier,
            "metadata": self.metadata,
        }
        # Whole or not at all, and never over a run store (cdvkit.store.outputs).
        with atomic_file(p, binary=True) as f:
            joblib.dump(payload, f)
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
        "label": LABEL_MEANING,
        "label_sources": labelled.record(),
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
