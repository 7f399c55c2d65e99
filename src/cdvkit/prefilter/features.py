"""What ``--prefilter auto`` learns from: the target's answers to the undistracted question (paid
anyway: every search starts with them) and, where the embedder is installed, the question's text.

The root features say how sure the target is of the right answer: the share of the protocol's
answers that are right, how spread its answers are, and, when the target gives choice
probabilities, P(correct) and its log-ratio to the likeliest wrong choice. A question the target
answers with a wide margin takes many stacked distractions to flip, if any flip it at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cdvkit.data.question import Question

# Order of the columns ``root_features`` returns.
ROOT_FEATURES = (
    "share_right",  # the protocol's answers to the original that are right
    "share_unread",  # answers the readers could not map to a choice
    "vote_entropy",  # spread of those answers, 0 (all the same) to 1
    "has_probs",  # the target gave choice probabilities
    "logit_p_correct",  # log(P / (1 - P)) of the right choice
    "log_margin",  # log P(right choice) - log P(likeliest wrong one)
    "prob_entropy",  # spread of the choice probabilities, 0 to 1
    "log_words",  # length of the question
    "log_choices",  # number of choices (0 for a free-form question)
)
_CLIP = 1e-4


def _entropy(weights: Sequence[float], size: int) -> float:
    total = float(sum(weights))
    if total <= 0 or size < 2:
        return 0.0
    ps = [w / total for w in weights if w > 0]
    return -sum(p * math.log(p) for p in ps) / math.log(size)


def root_features(info: Mapping[str, Any], question: Question) -> list[float]:
    """The feature vector of one question from its root evaluation (``RootWork``'s value)."""
    outputs = info.get("outputs") or {}
    verify = outputs.get("verify") or {}
    answers = verify.get("answers") or outputs.get("answers") or []
    k = len(question.choices)
    labels = [str(a.get("choice", a.get("answer"))) for a in answers]
    share_right = (
        sum(bool(a.get("correct")) for a in answers) / len(answers)
        if answers
        else float(info.get("accuracy") or 0.0)
    )
    unread = sum(a.get("status") not in ("ok", "extracted", "graded") for a in answers)
    counts = [labels.count(x) for x in dict.fromkeys(labels)]
    vote_entropy = _entropy(counts, max(k, len(answers)))
    probs = outputs.get("probs") or verify.get("probs")
    logit = margin = prob_entropy = 0.0
    if probs and 0 <= question.answer < len(probs):
        p = min(max(float(probs[question.answer]), _CLIP), 1 - _CLIP)
        wrong = max((float(x) for i, x in enumerate(probs) if i != question.answer), default=_CLIP)
        logit = math.log(p / (1 - p))
        margin = math.log(p) - math.log(min(max(wrong, _CLIP), 1 - _CLIP))
        prob_entropy = _entropy([float(x) for x in probs], len(probs))
    return [
        share_right,
        unread / len(answers) if answers else 0.0,
        vote_entropy,
        1.0 if probs else 0.0,
        logit,
        margin,
        prob_entropy,
        math.log1p(len(question.question.split())),
        math.log(k) if k else 0.0,
    ]


def text_features(questions: Sequence[Question]) -> np.ndarray | None:
    """Unit-norm MiniLM embeddings of the questions, or None where the embedder is not installed
    (the root features alone are used then)."""
    from cdvkit.models.errors import ModelError
    from cdvkit.prefilter.labels import as_text
    from cdvkit.prefilter.model import embed_texts

    try:
        return embed_texts([as_text(q) for q in questions])
    except (ImportError, ModelError):
        return None


# A model may skip questions only once it ranks the outcomes so far better than chance: the
# one-sided Mann-Whitney test of its out-of-fold predictions (questions with an example above
# those without) at this level. Below it, P(enhanceable) is about the base rate for every
# question, and skipping on it would cut the run short rather than pick what to leave out.
SKIP_EVIDENCE = 0.01
MIN_PER_CLASS = 3  # outcomes of each kind before the evidence is weighed at all
CV_FOLDS = 5


@dataclass
class OnlineModel:
    """Logistic regression of P(enhanceable) on standardised root features and the text's
    embedding. The embedding is unit-norm, so each of its 384 columns is small next to a
    standardised root feature: under the same L2 penalty the text only counts where the run's
    outcomes show it does.

    Trained on one class only (no question failed yet, or none succeeded) it predicts that
    class's smoothed share, (successes + 1) / (outcomes + 2), for every question.
    ``discriminates`` says whether it may skip (see SKIP_EVIDENCE); ``oof_auc`` and ``p_value``
    are the evidence.
    """

    c: float = 1.0
    seed: int = 0
    trained_on: int = 0
    positives: int = 0
    oof_auc: float | None = None
    p_value: float | None = None
    _scaler: Any = field(default=None, repr=False)
    _clf: Any = field(default=None, repr=False)

    @property
    def discriminates(self) -> bool:
        return self.p_value is not None and self.p_value < SKIP_EVIDENCE

    def _matrix(self, root: np.ndarray, text: np.ndarray | None) -> np.ndarray:
        scaled = self._scaler.transform(root)
        return scaled if text is None else np.hstack([scaled, text])

    def _fit(self, root: np.ndarray, text: np.ndarray | None, y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        self._scaler = StandardScaler().fit(root)
        clf = LogisticRegression(C=self.c, max_iter=5000, random_state=self.seed)
        self._clf = clf.fit(self._matrix(root, text), y)

    def fit(self, root: np.ndarray, text: np.ndarray | None, labels: Sequence[int]) -> OnlineModel:
        y = np.asarray(labels, dtype=int)
        self.trained_on, self.positives = len(y), int(y.sum())
        self._scaler = self._clf = None
        self.oof_auc = self.p_value = None
        minority = min(self.positives, len(y) - self.positives)
        if minority >= MIN_PER_CLASS:
            self._evidence(root, text, y, min(CV_FOLDS, minority))
        if minority > 0:
            self._fit(root, text, y)
        return self

    def _evidence(self, root: np.ndarray, text: np.ndarray | None, y: np.ndarray, k: int) -> None:
        """Out-of-fold AUC of this model on the outcomes, and the test of it against chance."""
        from scipy.stats import mannwhitneyu
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        oof = np.zeros(len(y))
        for train, test in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(root, y):
            fold = OnlineModel(c=self.c, seed=self.seed)
            fold._fit(root[train], None if text is None else text[train], y[train])
            oof[test] = fold.predict(root[test], None if text is None else text[test])
        self.oof_auc = float(roc_auc_score(y, oof))
        self.p_value = float(mannwhitneyu(oof[y == 1], oof[y == 0], alternative="greater").pvalue)

    def predict(self, root: np.ndarray, text: np.ndarray | None) -> np.ndarray:
        if self._clf is None:
            prior = (self.positives + 1) / (self.trained_on + 2)
            return np.full(len(root), prior, dtype=float)
        col = list(self._clf.classes_).index(1)
        return np.asarray(self._clf.predict_proba(self._matrix(root, text))[:, col], dtype=float)
