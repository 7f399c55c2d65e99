"""Search efficiency: the reference implementation's call pattern against cdvkit's settings.

Same questions, same models, one run each, every figure read back from the run store:

(a) offline: the default target ``embed/all-MiniLM-L6-v2`` with the template proposer; the
    reference pattern needs an extractor, so both sides get the same in-process letter reader;
(b) a loopback OpenAI-compatible server (bench/_fakeserver.py) simulating a noisy LLM target,
    an LLM proposer, an LLM judge and an extractor, with log-probs and then without.

Rows: ``reference`` (preset), cdvkit's ``default`` (SearchConfig()), the ``efficient`` preset,
the defaults with ``--proposals 3`` (up to three rounds of distractions per expansion: a wider
tree, shorter examples), and the reference with ONE cost feature switched on at a time, so each
is measured on its own.
Every configuration shares one protocol (5 near-greedy step-by-step answers; fooled when none is
right): it decides which originals count as originally correct, and every example a cheaper score
proposes is confirmed under it (the confirmations are counted in "calls"). "success" is questions
with an example over the originally correct ones. "success*" is the common yardstick the targets
below are checked on: questions with an example over the questions whose original the target
truly answers right (its likeliest answer, from the true probabilities). "P(correct)": the
target's true probability of the right answer on the first example found per question (lower =
a stronger example). Every example counted is verified: the protocol confirmed the target fails
it, so "calls/ex" is requests per verified example. "sent/ex": the sentences an example adds to
its question (depth - 1), fewer being a more natural example.

Usage: python bench/search_efficiency.py [--embed-per-source N] [--server-per-source N]
       [--seed S] [--skip-embed] [--skip-server]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Measured, bench_questions, measure, print_table, server_config
from _fakeserver import FakeServer
from cdvkit.data.question import Question
from cdvkit.models import scripted
from cdvkit.models.base import MCQ, GenerateRequest
from cdvkit.search.config import SearchConfig
from cdvkit.search.preset import apply_preset

# Target: the defaults need at least 10x fewer requests per verified example than the reference
# pattern, at no lower success and with no more added sentences per example.
CALL_RATIO_TARGET = 10.0
SUCCESS_MARGIN = 0.0
# Not the defaults: three distractions per wrong option where needed, for shorter examples.
WIDER = "default + --proposals 3"


def letter_reader(req: GenerateRequest, sample: int) -> str:
    """An always-right extractor for targets that answer 'Answer: X' (the embed backend does)."""
    shown = req.messages[-1][1].split("<<<", 1)[-1]
    m = re.findall(r"Answer: ([A-Z])", shown)
    return m[-1] if m else "NONE"


def truly_correct(
    questions: list[Question], probs: Callable[[str, list[str]], list[float]]
) -> set[str]:
    """Questions whose original the target truly answers right (its likeliest answer)."""
    out = set()
    for q in questions:
        p = probs(q.question, list(q.choices))
        if max(range(len(p)), key=p.__getitem__) == q.answer:
            out.add(q.id)
    return out


def single_features(base: SearchConfig) -> list[tuple[str, SearchConfig]]:
    ref = apply_preset(base, "reference")
    return [
        ("reference + extract only unparsable", replace(ref, always_extract=False)),
        ("reference + n samples in one request", replace(ref, batch_samples=True)),
        ("reference + sequential sampling", replace(ref, sequential=True)),
        ("reference + exact scoring (auto)", replace(ref, scoring="auto")),
        ("reference + judge_last", replace(ref, judge_last=True)),
        ("reference + one proposer call per node", replace(ref, proposer_batch=True)),
    ]


def verdict(name: str, ref: Measured, row: Measured) -> str:
    ratio = ref.calls_per_example / row.calls_per_example if row.examples else 0.0
    drop = ref.quality["success_common"] - row.quality["success_common"]
    more = row.sentences_per_example - ref.sentences_per_example
    ok = ratio >= CALL_RATIO_TARGET and drop <= SUCCESS_MARGIN and more <= 0
    return (
        f"  {name:<28} {ratio:5.2f}x fewer requests/verified example (target >= "
        f"{CALL_RATIO_TARGET:g}x), "
        f"{ref.tokens_per_example / row.tokens_per_example if row.examples else 0:5.2f}x fewer "
        f"tokens/example, success* {drop * -100:+.1f} points (target >= "
        f"{-SUCCESS_MARGIN * 100:+.0f}), sentences/example {row.sentences_per_example:.2f} vs "
        f"{ref.sentences_per_example:.2f} (target: no more)"
        f" -> {'MET' if ok else 'NOT MET'}"
    )


async def bench_embed(per_source: int, seed: int) -> None:
    from cdvkit.models.registry import load_model

    questions = bench_questions(per_source, seed)
    scripted.REGISTRY["bench-letter-reader"] = letter_reader
    embed = load_model("embed/all-MiniLM-L6-v2")

    def probs(question: str, choices: list[str] | tuple[str, ...]) -> list[float]:
        return embed.score(MCQ(question, tuple(choices)))[0]  # type: ignore[attr-defined]

    def p_correct(ex: dict) -> float:
        return probs(ex["question"], ex["choices"])[ex["answer"]]

    truly = truly_correct(questions, probs)

    base = SearchConfig(
        target="embed/all-MiniLM-L6-v2",
        proposer="template",
        extractor="scripted/bench-letter-reader",
        seed=seed,
    )
    configs = [
        ("reference", apply_preset(base, "reference")),
        ("default", base),
        ("efficient", apply_preset(base, "efficient")),
        (WIDER, replace(base, proposals=3)),
        *single_features(base),
    ]
    rows = [
        await measure(n, c, questions, p_correct=p_correct, truly_correct=truly) for n, c in configs
    ]
    print_table(
        f"(a) offline: target embed/all-MiniLM-L6-v2, template proposer, {len(questions)} "
        f"questions ({per_source} per benchmark), seed {seed}",
        rows,
        rows[0],
    )
    print(verdict("default vs reference", rows[0], rows[1]))
    print(verdict("efficient vs reference", rows[0], rows[2]))
    print(verdict("--proposals 3 vs reference", rows[0], rows[3]))


async def bench_server(per_source: int, seed: int) -> None:
    questions = bench_questions(per_source, seed)
    results: dict[bool, list[Measured]] = {}
    for logprobs in (True, False):
        with FakeServer(questions, seed=seed, logprobs=logprobs) as fs:
            base = server_config(fs.base_url, seed)

            def p_correct(ex: dict, fs: FakeServer = fs) -> float:
                return fs.probs(ex["question"], ex["choices"])[ex["answer"]]

            truly = truly_correct(questions, fs.probs)
            efficient = apply_preset(base, "efficient")
            configs = [
                ("default", base),
                ("efficient", efficient),
                (WIDER, replace(base, proposals=3)),
            ]
            if not logprobs:
                configs.append(
                    ("efficient + sequential sampling", replace(efficient, sequential=True))
                )
            if logprobs:
                configs = [
                    ("reference", apply_preset(base, "reference")),
                    *configs,
                    *single_features(base),
                ]
            rows = []
            for name, cfg in configs:
                fs.reset()
                row = await measure(name, cfg, questions, p_correct=p_correct, truly_correct=truly)
                row.extra["http"] = fs.stats()
                rows.append(row)
            results[logprobs] = rows
    ref = results[True][0]
    for logprobs, rows in results.items():
        shown = rows if logprobs else [ref, *rows]
        what = "with log-probs (exact scoring available)" if logprobs else "WITHOUT log-probs"
        print_table(
            f"(b) loopback OpenAI-compatible server {what}: LLM proposer, judge and extractor, "
            f"{len(questions)} questions ({per_source} per benchmark), seed {seed}",
            shown,
            ref,
        )
        for r in rows:
            http = r.extra["http"]
            print(f"  {r.name:<40} HTTP requests {http['requests']:>6} by role {http['by_role']}")
        tag = "" if logprobs else " (no log-probs)"
        by_name = {r.name: r for r in rows}
        print(verdict(f"default vs reference{tag}", ref, by_name["default"]))
        print(verdict(f"efficient vs reference{tag}", ref, by_name["efficient"]))
        print(verdict(f"--proposals 3 vs reference{tag}", ref, by_name[WIDER]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--embed-per-source", type=int, default=25, help="(a): questions per benchmark file"
    )
    ap.add_argument(
        "--server-per-source", type=int, default=15, help="(b): questions per benchmark file"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-embed", action="store_true", help="only the loopback-server part")
    ap.add_argument("--skip-server", action="store_true", help="only the offline embed part")
    args = ap.parse_args()
    start = time.perf_counter()
    if not args.skip_embed:
        asyncio.run(bench_embed(args.embed_per_source, args.seed))
    if not args.skip_server:
        asyncio.run(bench_server(args.server_per_source, args.seed))
    print(f"\nsearch_efficiency: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
