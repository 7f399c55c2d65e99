"""Throughput: does a run keep an OpenAI-compatible backend busy up to its concurrency limit?

A loopback server (bench/_fakeserver.py, its own process) answers every request after a fixed
latency (100 ms). One model string serves every role, so one concurrency limit (64) covers all
calls. With 64 requests always in flight the ideal is 64 / 0.1 s = 640 requests/s; the target is
at least 80% of it. The reference implementation searches one question after another; the same
search run with one question at a time shows what that pattern achieves on the same server.

Requests/s is measured by the server: requests answered over the span from the first request to
the last answer. Nothing is cached between runs (each has a fresh run store). The simulated
target's replies are kept short here (15-30 words, as before the simulator's replies took real
lengths): this bench measures how well the client keeps the server busy, and the figures stay
comparable across versions. Real-length replies (about 270 tokens each, five per request) cost
the client more parsing and storing: 60% of the ideal at the same settings.

Usage: python bench/throughput.py [--questions 200] [--latency 0.1] [--concurrency 64]
       [--sequential-questions 10] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_questions, measure
from _fakeserver import FakeServer
from cdvkit.search.config import SearchConfig

TARGET_SHARE = 0.8


async def run(args: argparse.Namespace) -> None:
    per_source = -(-args.questions // 4)
    questions = bench_questions(per_source, args.seed)[: args.questions]
    ideal = args.concurrency / args.latency
    short = {"reply_words": [15, 30]}
    with FakeServer(
        questions, seed=args.seed, latency=args.latency, logprobs=False, world=short
    ) as fs:
        model = "openai-compatible/fake"
        base = SearchConfig(
            target=model,
            proposer=model,
            judge=model,
            extractor=model,
            base_url=fs.base_url,
            seed=args.seed,
            similarity_floor=0.0,
            model_concurrency=args.concurrency,
            # Enough questions in flight that the backend, not the search, is the bottleneck.
            concurrency=len(questions),
            # The client's own timeout must not fire while 64 requests queue at the server.
            roles={},
        )
        rows = []
        for name, cfg, qs in (
            (f"cdvkit: {len(questions)} questions concurrently", base, questions),
            (
                f"one at a time (the reference's scheduling), first {args.sequential_questions}",
                replace(base, concurrency=1),
                questions[: args.sequential_questions],
            ),
        ):
            fs.reset()
            start = time.perf_counter()
            m = await measure(name, cfg, qs)
            wall = time.perf_counter() - start
            http = fs.stats()
            rate = http["requests"] / http["span_s"] if http["span_s"] else 0.0
            rows.append((name, http, rate, wall, m))

    print(
        f"\nthroughput: loopback OpenAI-compatible server, {args.latency * 1000:.0f} ms per "
        f"request, concurrency limit {args.concurrency}, ideal {ideal:.0f} requests/s"
    )
    head = (
        f"{'pattern':<58} {'requests':>8} {'max in flight':>13} {'req/s':>7} "
        f"{'of ideal':>8} {'wall s':>7} {'examples':>8}"
    )
    print(head)
    print("-" * len(head))
    for name, http, rate, wall, m in rows:
        print(
            f"{name:<58} {http['requests']:>8} {http['max_in_flight']:>13} {rate:>7.0f} "
            f"{rate / ideal * 100:>7.1f}% {wall:>7.1f} {m.examples:>8}"
        )
    cdv_rate, seq_rate = rows[0][2], rows[1][2]
    ok = cdv_rate >= TARGET_SHARE * ideal
    print(
        f"  cdvkit achieves {cdv_rate / ideal * 100:.1f}% of the ideal {ideal:.0f} requests/s "
        f"(target >= {TARGET_SHARE * 100:.0f}%) -> {'MET' if ok else 'NOT MET'}; "
        f"{cdv_rate / seq_rate if seq_rate else float('inf'):.1f}x the one-question-at-a-time rate"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    ap.add_argument("--concurrency", type=int, default=64, help="the backend's limit")
    ap.add_argument(
        "--sequential-questions",
        type=int,
        default=10,
        help="questions in the one-at-a-time run (its rate does not depend on how many)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    asyncio.run(run(args))
    print(f"\nthroughput: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
