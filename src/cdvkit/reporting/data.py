"""Everything a report shows, read from a run directory into plain JSON-able data.

Renderers (HTML, Markdown, PNG) only format this; none of them opens the store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cdvkit.evaluation.results_file import load_evaluation
from cdvkit.reporting.summary import summarize
from cdvkit.search.goals_multi import target_verdicts
from cdvkit.store import RunStore
from cdvkit.version import __version__

# Long replies are cut so a big run's report stays a file a browser opens quickly.
REPLY_CHARS = 300


def _answer(a: dict[str, Any], reply_chars: int) -> dict[str, Any]:
    return {
        "choice": a.get("choice"),
        "answer": a.get("answer"),  # a free-form reply's answer as written
        "status": a.get("status"),
        "correct": bool(a.get("correct")),
        "reply": (a.get("reply") or "")[-reply_chars:] if reply_chars else "",
    }


def _verify(v: Any, reply_chars: int) -> dict[str, Any] | None:
    """The confirmation under the protocol (a candidate's, or the root's when the search scored
    apart from the protocol): the replies that decided a node scored from probabilities."""
    if not isinstance(v, dict):
        return None
    return {
        "correct": v.get("correct"),
        "accuracy": v.get("accuracy"),
        "mode": v.get("mode"),
        "answers": [_answer(a, reply_chars) for a in v.get("answers") or []],
        "probs": v.get("probs"),
    }


def _node(n: dict[str, Any], reply_chars: int) -> dict[str, Any]:
    outputs = n.get("outputs") or {}
    answers = [_answer(a, reply_chars) for a in outputs.get("answers") or []]
    # Scored on several targets: each target's verdict and replies stand under its own name.
    targets = target_verdicts(outputs, original=n.get("parent_path") is None)
    for t in targets:
        t["answers"] = [_answer(a, reply_chars) for a in t["answers"]]
    if targets:
        answers, outputs = [], {**outputs, "verify": None}
    return {
        "path": n["path"],
        "parent": n.get("parent_path"),
        "depth": n["depth"],
        "status": n["status"],
        "rate": n.get("rate"),
        "verified": n.get("verified"),
        "question": n["question"],
        "choices": list(n["choices"]),
        "answer": n["answer"],
        "distraction": n.get("distraction"),
        "placement": n.get("placement"),
        "target_option": n.get("target_option"),
        "verdicts": n.get("verdicts") or {},
        "mode": outputs.get("mode"),
        "probs": outputs.get("probs"),
        "answers": answers,
        "verify": _verify(outputs.get("verify"), reply_chars),
        "error": outputs.get("error"),
        "targets": targets,
    }


def collect(run_dir: str | Path, *, reply_chars: int = REPLY_CHARS) -> dict[str, Any]:
    """Read a run (search and, when present, evaluation) into the report's data."""
    run_dir = Path(run_dir)
    with RunStore(run_dir, lock=False, readonly=True) as store:
        config = store.get_config() or {}
        summary = summarize(store)
        eval_usage = store.usage_by_role("evaluate")
        nodes_by_q: dict[str, list[dict[str, Any]]] = {}
        for n in store.nodes():
            nodes_by_q.setdefault(n["question_id"], []).append(_node(n, reply_chars))
        questions = []
        for d in store.questions():
            q = d["question"]
            nodes = nodes_by_q.get(q.id, [])
            questions.append(
                {
                    "id": q.id,
                    "source": q.source,
                    "subject": q.subject,
                    "status": d["status"],
                    "original_rate": d["original_rate"],
                    "error": d["error"],
                    # what a prefilter predicted when it decided to search or skip it
                    "prefilter_p": d.get("prefilter_p"),
                    "question": q.question,
                    "choices": list(q.choices),
                    "answer": q.answer,
                    "task": q.task,
                    "references": list(q.references),
                    "examples": sum(1 for n in nodes if n["status"] == "good"),
                    "nodes": nodes,
                }
            )
        created = store.get_meta("created")
    evaluation = load_evaluation(run_dir)
    return {
        "run_dir": str(run_dir),
        "run_name": run_dir.resolve().name,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "created": float(created) if created else None,
        "cdvkit_version": __version__,
        "config": config,
        "summary": summary,
        "usage": summary.get("by_role", {}),
        "eval_usage": eval_usage,  # `cdv evaluate`'s own calls, never the search's
        "questions": questions,
        "evaluations": list((evaluation or {}).get("evaluations", {}).values()),
    }


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
