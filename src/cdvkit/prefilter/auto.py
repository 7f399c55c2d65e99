"""``--prefilter auto``: a prefilter that learns from the run's own outcomes as they arrive.

The run goes in phases, each a function of the settings and of the outcomes of the phases
before it, never of which question happened to finish first; so a run is the same for a given
seed whatever its concurrency, and a killed run resumed with the same command makes the same
decisions (each phase is recomputed from the stored outcomes and the cached calls):

1. warm-up: the first ``prefilter_warmup`` questions of a seeded random order are searched in
   full, a fair sample to learn from;
2. roots: the target answers every other question undistracted, as each search would first do
   (the calls are cached, so a question searched later does not pay for them again); a question
   the target already fails is recorded as such;
3. batches: a classifier (``OnlineModel``) is trained on every outcome so far, in the seeded
   order; the questions it rates most promising, among those at or above
   ``prefilter_threshold``, are searched (``prefilter_batch`` of them, or a quarter of those
   searched so far once that is more); then it is trained again, and so on. Until its
   out-of-fold ranking of the outcomes so far is better than chance (``SKIP_EVIDENCE``) it only
   orders the questions: P near the base rate for all says which is hopeless no more than a
   coin would, and skipping on it would only cut the run short;
4. when no question left is rated at or above the threshold, those left are skipped: status
   ``skipped``, their P(enhanceable) in the store (``prefilter_p``, also in the error text).

A run with fewer than ``prefilter_warmup + prefilter_batch`` questions is simply searched whole.
A question already begun (a search killed or stopped midway) is never skipped, and nothing
searched is ever undone. After a lost call the rerun learns from the retried outcome, so its
decisions may differ from those of a run that never lost it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from cdvkit.data.question import Question
from cdvkit.jobs import JobEnd, OnEnd, RunOutcome, WorkSpec
from cdvkit.models.base import Model
from cdvkit.prefilter.features import OnlineModel, root_features, text_features
from cdvkit.prefilter.roots import RootWork
from cdvkit.search.config import SearchConfig
from cdvkit.search.work import SearchWork
from cdvkit.store.status import ROOT_ANSWERED, QuestionStatus

MapJobs = Callable[[WorkSpec, Sequence[Question], OnEnd | None], Awaitable[RunOutcome]]

S = QuestionStatus
FINISHED = (S.DONE, S.ORIGINAL_FAILED)
SKIPPABLE = (S.PENDING, S.SKIPPED)  # never begun (or skipped by an earlier start of this run)


def seeded_order(ids: Sequence[str], seed: int) -> list[str]:
    """The question ids in the run's seeded random order (the warm-up is its head)."""
    order = list(ids)
    random.Random(f"cdvkit-prefilter-auto|{seed}").shuffle(order)
    return order


def batch_size(smallest: int, searched: int) -> int:
    """Questions searched before the next retraining: ``smallest``, or a quarter of those
    searched so far once that is more, so a run of N questions retrains about log(N) times
    (each retraining fits on everything so far) while the first batches stay small."""
    return max(smallest, searched // 4)


def merge(total: RunOutcome, part: RunOutcome) -> bool:
    """Add ``part`` to ``total``; False when the run must stop (budget or fatal error)."""
    total.errors += part.errors
    total.stopped = total.stopped or part.stopped
    if part.fatal and not total.fatal:
        total.fatal, total.fatal_error = part.fatal, part.fatal_error
    return not (part.stopped or part.fatal)


class AutoPrefilter:
    """One start of a ``--prefilter auto`` run over ``store``; ``run_map`` runs jobs (an
    executor's ``map`` with the run's budget and concurrency)."""

    def __init__(
        self,
        cfg: SearchConfig,
        store: Any,
        run_map: MapJobs,
        *,
        models: dict[str, Model] | None = None,
        on_question_done: Callable[[str, str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.run_map = run_map
        self.models = models
        self.on_question_done = on_question_done
        self.outcome = RunOutcome()
        self.questions: dict[str, Question] = {}
        self.roots: dict[str, dict[str, Any]] = {}  # question id -> its root evaluation
        self.decisions: list[dict[str, Any]] = []  # one per training, for tests and the bench

    # --- the store ----------------------------------------------------------------------------
    def _status(self) -> dict[str, str]:
        return {d["id"]: d["status"] for d in self.store.questions()}

    def _labels(self, ids: Sequence[str]) -> list[tuple[str, int]]:
        """(id, 1 if it has an example else 0) for the questions of ``ids`` searched to the end.

        Unlike a saved model's run labels (``labels.load_run_outcomes``), a question the target
        failed undistracted is left out, not counted as 1: auto decides only after the root
        answers, among questions the target got right, so those are the only ones its model
        needs to rank; failed ones (all answers wrong) would only teach it what it already
        knows and make its ranking look better than it is. An incomplete one says nothing."""
        status = self._status()
        good = {n["question_id"] for n in self.store.nodes(status="good")}
        return [(q, int(q in good)) for q in ids if status[q] == S.DONE and q in self.roots]

    # --- phases -------------------------------------------------------------------------------
    def _ended(self, end: JobEnd) -> None:
        if self.on_question_done is not None:
            self.on_question_done(end.key, end.status)

    async def _search(self, ids: Sequence[str]) -> bool:
        status = self._status()
        todo = [self.questions[q] for q in ids if status[q] not in FINISHED]
        if not todo:
            return True
        part = await self.run_map(SearchWork(self.cfg, self.models), todo, self._ended)
        return merge(self.outcome, part)

    async def _evaluate_roots(self, ids: Sequence[str]) -> bool:
        def got(end: JobEnd) -> None:
            if end.value is not None:
                self.roots[end.key] = end.value
            if self.on_question_done is not None:
                self.on_question_done(end.key, ROOT_ANSWERED)

        todo = [self.questions[q] for q in ids]
        return merge(self.outcome, await self.run_map(RootWork(self.cfg, self.models), todo, got))

    async def run(self) -> RunOutcome:
        cfg = self.cfg
        self.questions = {d["id"]: d["question"] for d in self.store.questions()}
        ids = list(self.questions)
        if len(ids) < cfg.prefilter_warmup + cfg.prefilter_batch:
            await self._search(ids)  # too few to learn from and still save anything
            return self.outcome
        order = seeded_order(ids, cfg.seed)
        warm, rest = order[: cfg.prefilter_warmup], order[cfg.prefilter_warmup :]
        if not await self._search(warm) or not await self._evaluate_roots(order):
            return self.outcome
        # Already failed undistracted: searching them costs nothing more (their answers are
        # cached) and records them as such.
        failed = [q for q in rest if self.roots.get(q, {}).get("status") == S.ORIGINAL_FAILED]
        if not await self._search(failed):
            return self.outcome
        pool = [q for q in rest if self.roots.get(q, {}).get("status") == S.DONE]
        left = await self._batches(order, warm, pool)
        if left is None:
            return self.outcome
        # The root evaluation failed (a rerun retries it): searched, so the run says incomplete.
        await self._search([q for q in rest if q not in self.roots] + left)
        return self.outcome

    async def _batches(
        self, order: list[str], warm: list[str], pool: list[str]
    ) -> list[str] | None:
        """Search ``pool`` in batches by predicted promise, retraining after each; skip what is
        left below the threshold. Returns the begun questions it would have skipped (to search),
        or None when the run must stop."""
        cfg = self.cfg
        position = {q: i for i, q in enumerate(order)}
        root = {q: root_features(info, self.questions[q]) for q, info in self.roots.items()}
        texts = text_features([self.questions[q] for q in order])
        row = {q: i for i, q in enumerate(order)}

        def matrices(qs: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
            r = np.asarray([root[q] for q in qs], dtype=float).reshape(len(qs), -1)
            return r, (None if texts is None else texts[[row[q] for q in qs]])

        searched = list(warm)  # in the order they were decided on: the training order
        scheduled: set[str] = set()
        while True:
            undecided = [q for q in pool if q not in scheduled]
            if not undecided:
                return []
            train = self._labels(searched)
            model = OnlineModel(seed=cfg.seed)
            model.fit(*matrices([q for q, _ in train]), [y for _, y in train])
            probs = dict(zip(undecided, model.predict(*matrices(undecided)).tolist(), strict=True))
            ranked = sorted(undecided, key=lambda q: (-probs[q], position[q]))
            if model.discriminates:
                ranked = [q for q in ranked if probs[q] >= cfg.prefilter_threshold]
            batch = ranked[: batch_size(cfg.prefilter_batch, len(searched))]
            self.decisions.append(
                {
                    "trained_on": model.trained_on,
                    "positives": model.positives,
                    "auc": model.oof_auc,
                    "skips": model.discriminates,
                    "batch": batch,
                }
            )
            if not batch:
                return self._skip(undecided, probs, model)
            for q in batch:
                self.store.record_prefilter(q, probs[q])
            if not await self._search(batch):
                return None
            scheduled.update(batch)
            searched += batch

    def _skip(self, ids: list[str], probs: dict[str, float], model: OnlineModel) -> list[str]:
        status = self._status()
        begun = []
        for q in ids:
            if status[q] not in SKIPPABLE:
                if status[q] not in FINISHED:
                    begun.append(q)
                continue
            self.store.record_prefilter(q, probs[q])
            self.store.set_question_status(
                q,
                S.SKIPPED,
                error=f"prefilter auto: P(enhanceable) {probs[q]:.2f} < "
                f"{self.cfg.prefilter_threshold:g} (learnt from {model.trained_on} outcomes, "
                f"out-of-fold AUC {model.oof_auc:.2f})",
            )
            if status[q] == S.PENDING and self.on_question_done is not None:
                self.on_question_done(q, S.SKIPPED)
        return begun
