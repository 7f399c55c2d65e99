"""Several targets at once: examples that fool two models per request, against searching each
model alone and keeping the examples that transfer.

The loopback server (bench/_fakeserver.py) is started with ``--per-model``: the two target names
``fake-target-a`` and ``fake-target-b`` are two simulated LLMs over the same questions, each with
its own margins and its own response to each sentence (half of a question's margin in common),
so an example found against one fools the other only partly, as the paper found for real
models. Both approaches use cdvkit's defaults (LLM proposer, judge, extractor; exact-guided
search confirmed under one protocol: 5 near-greedy step-by-step answers, fooled when none is
right) and are counted in HTTP requests to the server (every role's, confirmations included):

(a) one run with ``--target A --target B --fool all``: every example is confirmed to fool both,
    on questions both answer right;
(b) a run against A alone and a run against B alone; each example is then asked of the other
    model under the same protocol (with its original, which the other model must answer right),
    and kept when it fools it too. The checks' requests are counted with the runs'.

"examples fooling both per request" is the figure compared; the ratio is (a) over (b).

Usage: python bench/multi_target.py [--per-source N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_questions, measure, server_config
from _fakeserver import FakeServer
from cdvkit.data.question import Question
from cdvkit.models.client import RoleClient
from cdvkit.protocol import Asker
from cdvkit.search.build import load_role_model
from cdvkit.search.config import SearchConfig
from cdvkit.store import RunStore

A, B = "openai-compatible/fake-target-a", "openai-compatible/fake-target-b"


@dataclass
class Row:
    name: str
    found: int  # examples the run(s) found
    both: int  # of them, examples that fool both targets (confirmed under the protocol)
    questions: int  # questions with at least one such example
    requests: int  # HTTP requests, every role and check included

    @property
    def per_request(self) -> float:
        return self.both / self.requests if self.requests else 0.0


async def search(
    fs: FakeServer, name: str, cfg: SearchConfig, questions: list[Question], where: Path
) -> tuple[list[dict[str, Any]], int]:
    """Run ``cfg`` in a fresh store; its examples and the HTTP requests it sent."""
    fs.reset()
    await measure(name, cfg, questions, keep_dir=where)
    with RunStore(where, lock=False, readonly=True) as store:
        examples = list(store.examples())
    return examples, int(fs.stats()["requests"])


async def fools(
    fs: FakeServer, cfg: SearchConfig, model: str, examples: list[dict[str, Any]], by_id: dict
) -> tuple[list[dict[str, Any]], int]:
    """The examples that also fool ``model`` under the run's protocol, on originals it answers
    right, and the requests the check sent (each original asked once)."""
    fs.reset()
    target = load_role_model(cfg, "target", model)
    extractor = load_role_model(cfg, "extractor", str(cfg.extractor))
    asker = Asker(
        RoleClient(target, "check"),
        cfg.protocol_spec(),
        extractor=RoleClient(extractor, "extractor"),
    )
    originals = sorted({str(e["question_id"]) for e in examples})
    right = await asyncio.gather(
        *(asker.ask(by_id[q].question, by_id[q].choices, by_id[q].answer) for q in originals)
    )
    known = {q: o.correct for q, o in zip(originals, right, strict=True)}
    outcomes = await asyncio.gather(
        *(asker.ask(e["question"], tuple(e["choices"]), e["answer"]) for e in examples)
    )
    kept = [
        e
        for e, o in zip(examples, outcomes, strict=True)
        if known[str(e["question_id"])] and o.fooled
    ]
    await target.aclose()
    await extractor.aclose()
    return kept, int(fs.stats()["requests"])


async def bench(per_source: int, seed: int) -> None:
    questions = bench_questions(per_source, seed)
    by_id = {q.id: q for q in questions}
    with (
        FakeServer(questions, seed=seed, per_model=True) as fs,
        tempfile.TemporaryDirectory(prefix="cdv-bench-multi-") as tmp,
    ):
        base = server_config(fs.base_url, seed)
        both_cfg = replace(base, target=[A, B], fool="all")
        both, both_requests = await search(fs, "both", both_cfg, questions, Path(tmp) / "both")
        # Every example of (a) asked again of B, as (b)'s are: the same protocol, so all hold.
        again, _ = await fools(fs, base, B, both, by_id)

        alone: dict[str, tuple[list[dict[str, Any]], int, list[dict[str, Any]], int]] = {}
        for name, model, other in (("A", A, B), ("B", B, A)):
            cfg = replace(base, target=model)
            found, requests = await search(fs, name, cfg, questions, Path(tmp) / name)
            kept, checks = await fools(fs, cfg, other, found, by_id)
            alone[name] = (found, requests, kept, checks)

    rows = [
        Row(
            "A + B at once (--fool all)",
            len(both),
            len(both),
            len({e["question_id"] for e in both}),
            both_requests,
        )
    ]
    for name, other in (("A", "B"), ("B", "A")):
        found, requests, kept, checks = alone[name]
        rows.append(
            Row(
                f"{name} alone, kept if it fools {other}",
                len(found),
                len(kept),
                len({e["question_id"] for e in kept}),
                requests + checks,
            )
        )
    kept_all = alone["A"][2] + alone["B"][2]
    rows.append(
        Row(
            "each alone + transfer check (both)",
            rows[1].found + rows[2].found,
            len(kept_all),
            len({e["question_id"] for e in kept_all}),
            rows[1].requests + rows[2].requests,
        )
    )
    print(
        f"\nSeveral targets: 2 simulated targets (--per-model), {len(questions)} questions "
        f"({per_source} per benchmark), seed {seed}; protocol: {base.protocol_spec().describe()}"
    )
    head = (
        f"{'configuration':<38} {'found':>6} {'fool both':>9} {'questions':>9} "
        f"{'requests':>9} {'both/1k req':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.name:<38} {r.found:>6} {r.both:>9} {r.questions:>9} {r.requests:>9} "
            f"{r.per_request * 1000:>11.2f}"
        )
    print(
        f"  consistency: {len(again)} of {len(both)} examples of the joint run fool B again "
        "when asked as the transfer check asks"
    )
    separate = rows[-1]
    ratio = rows[0].per_request / separate.per_request if separate.per_request else float("inf")
    print(
        f"  examples fooling both per request: {ratio:.2f}x with --target A --target B "
        f"({rows[0].both} in {rows[0].requests} requests) against each alone + transfer "
        f"({separate.both} in {separate.requests} requests)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-source", type=int, default=10, help="questions per benchmark file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    asyncio.run(bench(args.per_source, args.seed))
    print(f"\nmulti_target: {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
