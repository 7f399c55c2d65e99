"""The example gallery's data: each CDV example beside its original, the text it added as a
diff, and how the evaluated models did on its question. Renderers (HTML, Markdown) format this.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from cdvkit.data.question import LETTERS
from cdvkit.reporting.headline import headline_entries, is_paper
from cdvkit.reporting.tables import entry_title

# Words and the whitespace between them: a diff by word keeps a stacked sentence whole.
_TOKENS = re.compile(r"\s+|\S+")

SAME, ADD, DEL = "same", "add", "del"


def diff_segments(original: str, example: str) -> list[tuple[str, str]]:
    """``example`` against ``original`` as (kind, text) runs: ``same``, ``add`` (text the example
    inserted) and ``del`` (original text it dropped). The ``same`` and ``add`` runs joined give
    the example; ``same`` and ``del`` the original. A stacked example has several ``add`` runs."""
    a, b = _TOKENS.findall(original), _TOKENS.findall(example)
    out: list[tuple[str, str]] = []

    def put(kind: str, tokens: list[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            put(SAME, b[j1:j2])
            continue
        if op in ("delete", "replace"):
            put(DEL, a[i1:i2])
        if op in ("insert", "replace"):
            put(ADD, b[j1:j2])
    return out


def edges(text: str) -> tuple[str, str, str]:
    """``text`` as (leading whitespace, the rest, trailing whitespace): marks go round the rest."""
    core = text.strip()
    if not core:
        return text, "", ""
    start = text.index(core)
    return text[:start], core, text[start + len(core) :]


def marking_entry(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The evaluation whose per-question outcomes mark the gallery: the first-screen entry of
    cdvkit's own (the undefended one where there is one), else the paper's."""
    shown = headline_entries(entries)
    plain = [e for e in shown if not is_paper(e)]
    return (plain or shown or [None])[0]


def _run_set(entry: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The example set of ``entry`` that is this run's: by its directory, else by its target."""
    here = Path(data["run_dir"]).resolve()
    for src in entry.get("sources") or []:
        if src.get("path") and Path(src["path"]).resolve() == here:
            return src.get("label")
    target = (data.get("config") or {}).get("target")
    if isinstance(target, str) and target in entry["results"]:
        return str(target)
    return next(iter(entry["results"]), None)


def evaluated_outcomes(
    data: dict[str, Any],
) -> tuple[dict[str, Any] | None, list[str], dict[str, dict[str, tuple[Any, Any]]]]:
    """(entry, its models, question id -> model -> (original, distracted) accuracy) from the
    evaluation that marks the gallery; (None, [], {}) for a run not evaluated."""
    entry = marking_entry(data["evaluations"])
    if entry is None:
        return None, [], {}
    source = _run_set(entry, data)
    per_model = entry["results"].get(source or "", {})
    outcomes: dict[str, dict[str, tuple[Any, Any]]] = {}
    for model, r in per_model.items():
        for qid, _dataset, original, distracted in r.get("items") or []:
            outcomes.setdefault(str(qid), {})[model] = (original, distracted)
    return entry, list(per_model), outcomes


def fooled(original: float | None, distracted: float | None) -> bool:
    """A model is fooled on a question when it does worse on the example than on the original."""
    return original is not None and distracted is not None and distracted < original


def gallery(data: dict[str, Any]) -> dict[str, Any]:
    """Every CDV example with its original, sorted by drop (then by the search's own fall)."""
    entry, models, outcomes = evaluated_outcomes(data)
    every = bool(entry and (entry.get("settings") or {}).get("all_examples"))
    items = []
    for q in data["questions"]:
        root = next((n for n in q["nodes"] if n["depth"] == 1), None)
        good = [n for n in q["nodes"] if n["status"] == "good"]
        for k, n in enumerate(good):
            # Without --all-examples an evaluation asks each question's first example only.
            asked = outcomes.get(q["id"], {}) if (every or k == 0) else {}
            results = [(m, *asked[m]) for m in models if m in asked]
            drops = [o - d for _, o, d in results if o is not None and d is not None]
            search_drop = None
            if root and root.get("rate") is not None and n.get("rate") is not None:
                search_drop = root["rate"] - n["rate"]
            items.append(
                {
                    "question": q,
                    "node": n,
                    "order": len(items),
                    "added": max(0, n["depth"] - 1),
                    "segments": diff_segments(q["question"], n["question"]),
                    "results": results,
                    "fooled": [i for i, m in enumerate(models) if m in asked and fooled(*asked[m])],
                    "drop": sum(drops) / len(drops) if drops else None,
                    "search_drop": search_drop,
                }
            )
    items.sort(key=sort_key)
    return {
        "items": items,
        "models": models,
        "defense": entry_title(entry) if entry else None,
        "all_examples": every,
    }


def sort_key(item: dict[str, Any]) -> tuple[float, float, int]:
    """Largest evaluated drop first, examples without one after; then the search's own fall."""
    drop = item["drop"]
    search = item["search_drop"]
    return (-(drop if drop is not None else -2.0), -(search if search is not None else -2.0),
            item["order"])  # fmt: skip


def choice_marks(q: dict[str, Any], n: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    """The example's choices in its order as (text, is the right one, is the one pushed)."""
    return [(c, i == n["answer"], c == n.get("target_option")) for i, c in enumerate(n["choices"])]


def answer_label(a: dict[str, Any]) -> str:
    """How one reply was read: the choice's letter, a free-form answer, or why none was."""
    choice = a.get("choice")
    if isinstance(choice, int) and 0 <= choice < len(LETTERS):
        said = LETTERS[choice]
    else:
        said = a.get("answer")
    said = said if said not in (None, "") else (a.get("status") or "unread")
    return f"{said} {'✓' if a.get('correct') else '✗'}"


def tally(answers: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Readings counted in the order first seen: five identical answers read as one ``×5``."""
    counts: dict[str, int] = {}
    for a in answers:
        label = answer_label(a)
        counts[label] = counts.get(label, 0) + 1
    return list(counts.items())


def readings(n: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The answers that decided a node, each with what they were: the search's sampled answers,
    and the confirmation under the protocol where one was asked."""
    out: list[tuple[str, dict[str, Any]]] = []
    if n.get("answers"):
        out.append(("sampled by the search", {"answers": n["answers"]}))
    v = n.get("verify")
    if v and v.get("answers"):
        out.append(("confirmation under the protocol", v))
    for t in n.get("targets") or []:  # a node scored on several targets: each one's replies
        if t["answers"]:
            out.append((f"{t['target']} ({t['verdict']})", {"answers": t["answers"]}))
    return out


def targets_line(n: dict[str, Any]) -> str:
    """A node scored on several targets: each target's verdict, in one line ("" otherwise)."""
    return "; ".join(f"{t['target']}: {t['verdict']}" for t in n.get("targets") or [])
