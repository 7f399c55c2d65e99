"""Shared pieces of the benchmark scripts: questions, one measured run, table printing."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from cdvkit.data import sample_questions
from cdvkit.data.question import Question
from cdvkit.reporting.summary import summarize
from cdvkit.runs import prepare_store, run_search
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore
from cdvkit.tasks import load_file

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / ".." / "shared" / "data" / "benchmarks"
SOURCES = ("MMLU", "CommonsenseQA", "OpenbookQA", "TruthfulQA")


def bench_questions(per_source: int, seed: int = 0) -> list[Question]:
    """A seeded sample of ``per_source`` questions from each shared benchmark file."""
    out: list[Question] = []
    for name in SOURCES:
        path = DATA_DIR / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"missing {path}: the benchmarks read the shared data (never copied)")
        out += sample_questions(load_file(path).questions, per_source, seed)
    return out


def server_config(base_url: str, seed: int, **settings: Any) -> SearchConfig:
    """cdvkit's defaults against the loopback simulated LLM (bench/_fakeserver.py) playing every
    role; ``settings`` override any of them."""
    return SearchConfig(
        target="openai-compatible/fake-target",
        proposer="openai-compatible/fake-proposer",
        judge="openai-compatible/fake-judge",
        extractor="openai-compatible/fake-extractor",
        base_url=base_url,
        seed=seed,
        # The simulated proposer writes placeholder prose: embedding similarity to the question
        # would only measure that, so the local similarity floor is off.
        similarity_floor=0.0,
        **settings,
    )


@dataclass
class Measured:
    name: str
    summary: dict[str, Any]
    seconds: float
    first_examples: list[dict[str, Any]] = field(default_factory=list)
    # Sentences each example adds to its question (its depth - 1): fewer reads more naturally.
    sentences: list[int] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return int(
            sum(
                r["prompt_tokens"] + r["completion_tokens"]
                for r in self.summary["by_role"].values()
            )
        )

    @property
    def examples(self) -> int:
        return int(self.summary["examples"])

    @property
    def sentences_per_example(self) -> float:
        return sum(self.sentences) / len(self.sentences) if self.sentences else float("inf")

    @property
    def calls_per_example(self) -> float:
        return self.summary["calls"] / self.examples if self.examples else float("inf")

    @property
    def tokens_per_example(self) -> float:
        return self.tokens / self.examples if self.examples else float("inf")


async def measure(
    name: str,
    cfg: SearchConfig,
    questions: Sequence[Question],
    *,
    models: dict[str, Any] | None = None,
    p_correct: Callable[[dict[str, Any]], float] | None = None,
    truly_correct: set[str] | None = None,
    keep_dir: Path | None = None,
) -> Measured:
    """Search ``questions`` with ``cfg`` in a fresh run store and read the figures back from it.

    Configurations judge success by different criteria (n of n samples wrong, or P(correct) below
    a threshold), which also changes which originals count as already failed. Two common
    yardsticks make them comparable: ``p_correct`` gives the target's true P(correct answer) on
    an example, and ``truly_correct`` lists the questions whose original the target truly answers
    right (its most likely answer is correct): success over them is the same denominator for all.
    """
    with tempfile.TemporaryDirectory(prefix="cdv-bench-") as tmp:
        run_dir = keep_dir or Path(tmp) / "run"
        with RunStore(run_dir) as store:
            prepare_store(store, cfg, lambda: list(questions))
            start = time.perf_counter()
            outcome = await run_search(cfg, store, models=models)
            seconds = time.perf_counter() - start
            if outcome.fatal or outcome.errors:
                raise SystemExit(f"{name}: {outcome.fatal or outcome.errors[:3]}")
            summary = summarize(store)
            firsts: dict[str, dict[str, Any]] = {}
            sentences = []
            for ex in store.examples():  # in the order found; every one verified
                firsts.setdefault(ex["question_id"], ex)
                sentences.append(ex["depth"] - 1)
    m = Measured(name, summary, seconds, list(firsts.values()), sentences)
    if truly_correct:
        m.quality["success_common"] = len(set(firsts) & truly_correct) / len(truly_correct)
    if p_correct is not None and m.first_examples:
        ps = [p_correct(ex) for ex in m.first_examples]
        m.quality["mean_p_correct"] = sum(ps) / len(ps)
    return m


def fmt(v: float | None, spec: str = ".1f") -> str:
    if v is None or v == float("inf"):
        return "–"
    return format(v, spec)


def pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def print_table(title: str, rows: list[Measured], reference: Measured | None) -> None:
    print(f"\n{title}")
    head = (
        f"{'configuration':<40} {'success':>8} {'found':>7} {'success*':>8} {'examples':>8} "
        f"{'calls':>7} "
        f"{'calls/ex':>9} {'tokens/ex':>10} {'x fewer calls':>13} {'sent/ex':>7} "
        f"{'P(correct)':>10} {'s':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r.summary
        ratio = (
            reference.calls_per_example / r.calls_per_example
            if reference and r.examples and reference.examples
            else None
        )
        print(
            f"{r.name:<40} {s['success_rate'] * 100:>7.1f}% "
            f"{s['with_example']:>3}/{s['originally_correct']:<3} "
            f"{fmt(pct(r.quality.get('success_common')), '.1f'):>7}% {r.examples:>8} "
            f"{s['calls']:>7} {fmt(r.calls_per_example):>9} {fmt(r.tokens_per_example, '.0f'):>10} "
            f"{fmt(ratio, '.2f'):>13} {fmt(r.sentences_per_example, '.2f'):>7} "
            f"{fmt(r.quality.get('mean_p_correct'), '.3f'):>10} "
            f"{r.seconds:>6.1f}"
        )
