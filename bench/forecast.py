"""The forecast against what runs actually cost.

For each configuration, the forecast cdvkit prints before a run (`cdv generate --estimate`:
settings, question lengths, prices and the priors of cdvkit.search.forecast) is compared with the
cost the run then records. The runs use the loopback simulated server (bench/_fakeserver.py) for
every role, priced at USD 0.15 / 0.60 per million input / output tokens, on multiple-choice
questions from the shared benchmarks (with and without log-probs) and on numeric problems.

Target: the forecast made before the run is within +-30% of the actual cost. Before its first
call cdvkit cannot know whether an OpenAI-compatible server gives log-probs: its forecast line
gives the cost both ways ("if the target gives no log-probs: ..."), and the bench checks the one
that applies to the server (column "case").

Usage: python bench/forecast.py [--per-source N] [--problems N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_questions, measure, server_config
from _fakeserver import FakeServer
from _freeworld import problem_rows
from cdvkit.data.question import NO_CHOICE, NUMERIC, Question
from cdvkit.search.config import SearchConfig
from cdvkit.search.forecast import forecast_run, role_prices
from cdvkit.search.preset import apply_preset

TOLERANCE = 0.30
PRICE = "0.15,0.6"
ROLES = ("target", "proposer", "judge", "extractor")


def problems(n: int, seed: int) -> list[Question]:
    """``n`` numeric problems of the simulated server's free-form world."""
    return [
        Question(
            f"p{i}", r["question"], (), NO_CHOICE, task=NUMERIC, references=(str(r["answer"]),)
        )
        for i, r in enumerate(problem_rows(n, seed))
    ]


def base_config(url: str, seed: int) -> SearchConfig:
    """The server's defaults, every role priced."""
    return server_config(url, seed, roles={role: {"price_per_mtok": PRICE} for role in ROLES})


async def compare(
    name: str, cfg: SearchConfig, questions: list[Question], logprobs: bool = True
) -> bool:
    prices, guided = role_prices(cfg)
    fc = forecast_run(cfg, questions, prices, exact_guided=guided)
    run = await measure(name, cfg, questions)
    actual = float(run.summary["cost"])
    calls = int(run.summary["calls"])
    lo, mid, hi = fc.cost
    f_calls, case = fc.calls[1], "as is"
    if not logprobs and fc.without_logprobs is not None:
        (f_calls, mid), case = fc.without_logprobs, "no lp"
    ratio = mid / actual if actual else float("inf")
    ok = abs(ratio - 1) <= TOLERANCE
    inside = "yes" if lo <= actual <= hi else "no"
    print(
        f"{name:<34} {case:>5} {len(questions):>4} {f_calls:>7.0f} {calls:>7} {mid:>8.4f} "
        f"{lo:>7.4f}-{hi:<7.4f} {actual:>8.4f} {ratio:>6.2f} {inside:>6}"
        f" {'MET' if ok else 'NOT MET':>8}"
    )
    return ok


async def main_async(per_source: int, n_problems: int, seed: int) -> None:
    head = (
        f"{'configuration':<34} {'case':>5} {'qs':>4} {'f.calls':>7} {'calls':>7} {'forecast':>8} "
        f"{'range (USD)':>15} {'actual':>8} {'ratio':>6} {'in rng':>6} {'+-30%':>8}"
    )
    print(f"\nForecast before the run vs the run's recorded cost (seed {seed})\n{head}")
    print("-" * len(head))
    results = []
    mc = bench_questions(per_source, seed)
    for logprobs in (True, False):
        with FakeServer(mc, seed=seed, logprobs=logprobs) as fs:
            base = base_config(fs.base_url, seed)
            tag = "" if logprobs else ", no log-probs"
            configs = [
                (f"default{tag}", base),
                (f"efficient{tag}", apply_preset(base, "efficient")),
            ]
            if not logprobs:
                configs.append(("default, --scoring sample", replace(base, scoring="sample")))
            if logprobs:
                configs.append(("reference preset", apply_preset(base, "reference")))
                configs.append(("default, no judge", replace(base, judge=None)))
                configs.append(("default, --proposals 3", replace(base, proposals=3)))
            for name, cfg in configs:
                fs.reset()
                results.append(await compare(name, cfg, mc, logprobs))
    free = problems(n_problems, seed)
    with FakeServer(free, seed=seed) as fs:
        results.append(await compare("default, numeric", base_config(fs.base_url, seed), free))
    met = all(results)
    print(
        f"  forecast within +-{TOLERANCE:.0%} of the actual cost on {sum(results)} of "
        f"{len(results)} runs -> {'MET' if met else 'NOT MET'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-source", type=int, default=10, help="questions per benchmark file")
    ap.add_argument("--problems", type=int, default=40, help="numeric problems")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    asyncio.run(main_async(args.per_source, args.problems, args.seed))
    print(f"\nforecast: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
