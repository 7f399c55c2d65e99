"""Run a whole search: questions in parallel, every step in the run store, resumable.

The one place that ties a run's settings, its store and an executor together; the CLI and the
Python API call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdvkit.data.question import Question
from cdvkit.executors import LocalExecutor
from cdvkit.executors.base import Executor
from cdvkit.jobs import JobEnd, OnEnd, RunOutcome, WorkSpec
from cdvkit.models.base import Model
from cdvkit.models.budget import Budget
from cdvkit.search.config import SearchConfig
from cdvkit.search.work import SearchWork
from cdvkit.store import RunStore
from cdvkit.store.status import UNFINISHED, QuestionStatus

AUTO = "auto"  # --prefilter auto: learn which questions to skip from this run's own outcomes


class ConfigMismatchError(ValueError):
    pass


def prepare_store(
    store: RunStore, cfg: SearchConfig, load: Callable[[], list[Question]]
) -> list[Question]:
    """Record config and questions on a new run; on an existing one, check it is the same run."""
    stored = store.get_config()
    if stored is not None:
        diff = cfg.differences(stored)
        if diff:
            detail = ", ".join(f"{k}: stored {stored[k]!r}, now {getattr(cfg, k)!r}" for k in diff)
            raise ConfigMismatchError(
                f"{store.run_dir} holds a run with other settings ({detail}); "
                "use a new --run-dir, or the same settings to resume"
            )
        questions = [d["question"] for d in store.questions()]
        cfg.as_recorded_before(stored, any(q.free_form for q in questions))
        return questions
    questions = load()
    store.add_questions(questions)
    store.set_config(cfg.to_dict())
    return questions


def settle_skips(cfg: SearchConfig, store: RunStore) -> str | None:
    """Decide, before any call is paid, what this start of the run leaves out: with
    ``--include-skipped`` nothing (what a prefilter skipped is pending again); with a saved
    prefilter (``--prefilter MODEL_FILE``) the pending questions it rejects. Returns the problem
    in one line when the model cannot be used, else None. The prefilter runs locally and stores
    each P, so settling twice (the forecast, then the run) costs nothing more."""
    if cfg.include_skipped:
        store.reopen_skipped()
        return None
    if not cfg.prefilter or cfg.prefilter == AUTO:
        return None
    try:
        from cdvkit.prefilter import skip_in_store

        skip_in_store(store, cfg.prefilter, cfg.prefilter_threshold)
    except (ImportError, OSError, ValueError) as exc:
        return f"prefilter: {exc}"
    return None


@dataclass
class SearchProgress:
    """Where a search stands while its questions are in flight, for a progress display."""

    calls: int = 0  # paid calls of the search, earlier sessions of the run included
    examples: int = 0  # CDV examples in the store
    # Questions being searched: the share of their expansions already made (below 1: a
    # question ends when its search returns, which may be before its last expansion).
    in_flight: dict[str, float] = field(default_factory=dict)

    @property
    def partial(self) -> float:
        """The questions in flight, counted by how far their searches have gone."""
        return sum(self.in_flight.values())


OnProgress = Callable[[SearchProgress], None]
# A question in flight never shows as more than this much done: only its end completes it.
IN_FLIGHT_AT_MOST = 0.9


class ProgressTap:
    """The run store as the search writes to it, telling ``on_progress`` how far the search has
    gone after each node and each paid call is stored.

    Every executor's writes reach the store in this process (a Ray worker's arrive as events), so
    one tap sees them all; every write goes through unchanged and every other attribute is the
    store's own.
    """

    def __init__(self, store: RunStore, on_progress: OnProgress, max_expansions: int) -> None:
        self._store = store
        self._on_progress = on_progress
        self._max_expansions = max(1, max_expansions)
        self._requests: set[str] = set()  # the paid requests stored in this session
        self._expanded: dict[str, set[str]] = {}  # per question in flight: nodes expanded
        self.progress = SearchProgress(
            calls=store.paid_calls("search"), examples=store.count_nodes("good")
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _tell(self) -> None:
        self._on_progress(self.progress)

    # --- paid calls: one per request, however many samples it returned ------------------------
    def _paid(self, records: list[dict[str, Any]]) -> None:
        new = {str(r.get("batch") or r.get("key")) for r in records} - self._requests
        if new:
            self._requests |= new
            self.progress.calls += len(new)
            self._tell()

    def put_call(self, key: str, **fields: Any) -> None:
        self._store.put_call(key, **fields)
        self._paid([{"key": key, "batch": fields.get("batch")}])

    def put_calls(self, records: list[dict[str, Any]]) -> None:
        self._store.put_calls(records)
        self._paid(records)

    # --- the trees: each expansion stores its children ------------------------------------------
    def save_node(self, qid: str, node: dict[str, Any]) -> None:
        self._store.save_node(qid, node)
        expanded = self._expanded.get(qid)
        if expanded is not None and node.get("parent_path") is not None:
            expanded.add(str(node["parent_path"]))
            share = len(expanded) / self._max_expansions
            self.progress.in_flight[qid] = min(share, IN_FLIGHT_AT_MOST)
        if node.get("status") == "good":
            self.progress.examples = self._store.count_nodes("good")
        self._tell()

    def clear_nodes(self, qid: str) -> None:
        # A replayed question rewrites its tree: its earlier examples are counted again as
        # the replay stores them.
        self._store.clear_nodes(qid)
        self.progress.examples = self._store.count_nodes("good")

    def set_question_status(self, qid: str, status: str, **fields: Any) -> None:
        self._store.set_question_status(qid, status, **fields)
        if status == QuestionStatus.RUNNING:
            self._expanded[qid] = set()
            self.progress.in_flight[qid] = 0.0
        else:
            self._expanded.pop(qid, None)
            self.progress.in_flight.pop(qid, None)
        self._tell()


async def run_search(
    cfg: SearchConfig,
    store: RunStore,
    *,
    models: dict[str, Model] | None = None,
    on_question_done: Callable[[str, str], None] | None = None,
    executor: Executor | None = None,
    on_progress: OnProgress | None = None,
) -> RunOutcome:
    """Search every unfinished question of ``store``; ``executor`` decides where (default: here).

    Whatever the executor, this process is the only writer of ``store``. ``on_progress`` hears
    the calls paid, the examples found and how far each question in flight has got, as the
    search stores them (see ``ProgressTap``).
    """
    executor = executor or LocalExecutor()
    # The executor writes through the tap; settling skips and the budget read the store itself.
    recorder: Any = (
        store if on_progress is None else ProgressTap(store, on_progress, cfg.max_expansions)
    )
    try:
        # What a prefilter skipped and --include-skipped reopens is searched now; its paid
        # calls come from the cache.
        problem = settle_skips(cfg, store)
        if problem is not None:
            return RunOutcome(fatal=problem)
        # Calls paid by earlier sessions of this run count against its ceiling.
        budget = Budget(
            cfg.max_calls,
            cfg.max_cost,
            calls=store.paid_calls("search"),
            cost=store.total_cost("search"),
        )

        async def run_map(spec: WorkSpec, jobs: Sequence[Any], on_end: OnEnd | None) -> RunOutcome:
            return await executor.map(
                spec, jobs, recorder, budget, concurrency=cfg.concurrency, on_end=on_end
            )

        if cfg.prefilter == AUTO and not cfg.include_skipped:
            try:
                import sklearn  # noqa: F401 - needed once the warm-up is over: checked first

                from cdvkit.prefilter.auto import AutoPrefilter
            except ImportError as exc:
                return RunOutcome(
                    fatal=f"prefilter: --prefilter auto needs {exc.name or exc}: "
                    "pip install 'cdvkit[prefilter]'"
                )
            auto = AutoPrefilter(
                cfg, store, run_map, models=models, on_question_done=on_question_done
            )
            return await auto.run()

        def ended(end: JobEnd) -> None:
            if on_question_done:
                on_question_done(end.key, end.status)

        todo = [d["question"] for d in store.questions() if d["status"] in UNFINISHED]
        return await run_map(SearchWork(cfg, models), todo, ended)
    finally:
        await executor.aclose()
