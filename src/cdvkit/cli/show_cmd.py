"""`cdv show`: a run's examples (or any of its search nodes) in the terminal, read-only.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
Model and data text is put on screen as rich ``Text`` (never parsed as markup) with its control
characters made visible (``cdvkit.cli.safe_text``), and long text wraps at the terminal's width,
so nothing is cut, nothing in it is read as a style and no escape sequence reaches the terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from cdvkit.cli.common import USER_ERRORS, add_command, console, err
from cdvkit.cli.common import fail as _fail
from cdvkit.cli.safe_text import json_safe, visible
from cdvkit.data.question import LETTERS
from cdvkit.search.goals_multi import target_verdicts

# Node statuses as the run store keeps them (cdvkit.search.node), in the order a tree grows.
STATUSES = ("good", "open", "rejected", "duplicate", "error", "root")
OWN_DISTRACTION = "bold yellow"  # the distraction this node added
OLDER_DISTRACTION = "yellow"  # the ones its ancestors added


def show_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    question: Annotated[
        str | None,
        typer.Option("--question", help="Only this question (its id, or a unique prefix of it)."),
    ] = None,
    status: Annotated[
        str,
        typer.Option(
            help="Node status: good (the examples) | open | rejected | duplicate | error | "
            "root (the original questions) | all."
        ),
    ] = "good",
    depth: Annotated[
        int | None,
        typer.Option(help="Only nodes at this depth (the original question is depth 1)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most N entries (0: all).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
) -> None:
    """List a run's CDV examples (or its other search nodes), the distraction highlighted."""
    if status != "all" and status not in STATUSES:
        raise _fail(f"--status must be one of {', '.join(STATUSES)} or all, not {status!r}")
    if limit < 0:
        raise _fail("--limit must be 0 (all) or more")
    try:
        entries, counts = _entries(run, question, None if status == "all" else status, depth)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    shown = entries[:limit] if limit else entries
    if as_json:
        print(json_safe(json.dumps(shown, indent=2, ensure_ascii=False)))
    elif not entries:
        by_status = ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s]) or "none"
        console.print(
            f"no {'' if status == 'all' else status + ' '}nodes match in {escape(str(run))} "
            f"(nodes by status: {by_status})",
            highlight=False,
        )
    else:
        for i, entry in enumerate(shown):
            if i:
                console.print()
            _print_entry(entry)
    if len(shown) < len(entries):
        err.print(
            f"showing {len(shown)} of {len(entries)} entries; --limit 0 shows them all",
            highlight=False,
        )


def _resolve_question(wanted: str, ids: list[str]) -> str:
    if wanted in ids:
        return wanted
    matches = [q for q in ids if q.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(
            f"--question {wanted!r} matches {len(matches)} questions "
            f"({', '.join(matches[:5])}{', ...' if len(matches) > 5 else ''}); give more of it"
        )
    raise ValueError(f"no question {wanted!r} in this run (`--status root` lists them all)")


def _entries(
    run: Path, question: str | None, status: str | None, depth: int | None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The matching nodes as JSON-able entries, in question order then search order."""
    from cdvkit.store import RunStore

    with RunStore(run, lock=False, readonly=True) as store:
        questions = {d["id"]: d for d in store.questions()}
        qid = _resolve_question(question, list(questions)) if question is not None else None
        nodes = store.nodes(qid=qid)
    counts = Counter(n["status"] for n in nodes)
    by_path = {(n["question_id"], n["path"]): n for n in nodes}
    order = {q: i for i, q in enumerate(questions)}
    picked = [
        n
        for n in nodes
        if (status is None or n["status"] == status) and (depth is None or n["depth"] == depth)
    ]
    picked.sort(key=lambda n: (order.get(n["question_id"], len(order)), n.get("seq") or 0))
    return [_entry(n, questions.get(n["question_id"]), by_path) for n in picked], counts


def _entry(
    n: dict[str, Any], qrow: dict[str, Any] | None, by_path: dict[tuple[str, str], Any]
) -> dict[str, Any]:
    choices = [str(c) for c in n["choices"]]
    target = n.get("target_option")
    ancestors = []  # the distractions the node inherited, nearest first
    parent = by_path.get((n["question_id"], n.get("parent_path")))
    while parent is not None:
        if parent.get("distraction"):
            ancestors.append(parent["distraction"])
        parent = by_path.get((n["question_id"], parent.get("parent_path")))
    verdicts = n.get("verdicts") or {}
    original = qrow["question"] if qrow else None
    return {
        "question_id": n["question_id"],
        "path": n["path"],
        "depth": n["depth"],
        "status": n["status"],
        "question": n["question"],
        "choices": choices,
        "answer": n["answer"],
        "answer_text": choices[n["answer"]]
        if 0 <= n["answer"] < len(choices)
        else (original.answer_text if original is not None else None),
        "distraction": n.get("distraction"),
        "placement": n.get("placement"),
        "target_option": target,
        "target_index": choices.index(target) if target in choices else None,
        "earlier_distractions": ancestors,
        "rate": n.get("rate"),
        "verified": n.get("verified"),
        "verdicts": verdicts,
        "failed_checks": {
            name: (v.get("reason") or "failed") if isinstance(v, dict) else str(v)
            for name, v in verdicts.items()
            if not (isinstance(v, dict) and v.get("passed", True))
        },
        "error": (n.get("outputs") or {}).get("error"),
        # A run with several targets: each one's verdict on this node.
        "targets": [
            {k: t[k] for k in ("target", "role", "score", "verdict")}
            for t in target_verdicts(n.get("outputs"), original=n.get("parent_path") is None)
        ],
        "original_question": original.question if original is not None else None,
        "source": original.source if original is not None else None,
    }


def _highlighted(question: str, own: str | None, older: list[str]) -> Text:
    """The question as Text, the node's own distraction and its ancestors' ones styled."""
    text = Text(question)
    for sentence, style in [*((s, OLDER_DISTRACTION) for s in older), (own, OWN_DISTRACTION)]:
        if sentence:
            start = question.find(sentence)
            if start >= 0:
                text.stylize(style, start, start + len(sentence))
    return text


LABEL_WIDTH = 9  # "question " / "rejected " / "  A.     ": the text column starts after it


def _row(label: str, text: Text) -> None:
    """``label`` then ``text`` wrapped (never cut) to the console's width, with a hanging
    indent and no trailing padding, so it reads the same on screen and in a pipe."""
    width = max(console.width - LABEL_WIDTH, 20)
    lines = text.wrap(console, width, overflow="fold")
    for i, line in enumerate(lines or [Text("")]):
        line.rstrip()
        row = Text()
        row.append((label if i == 0 else "").ljust(LABEL_WIDTH), style="dim")
        row.append_text(line)
        console.print(row, highlight=False, crop=False, soft_wrap=True)


def _shown(e: dict[str, Any]) -> dict[str, Any]:
    """The entry's text as the terminal may show it: every string from the data or a model
    with its control characters made visible (the same way everywhere, so the distraction is
    still found inside the question)."""

    def safe(value: Any) -> Any:
        if isinstance(value, str):
            return visible(value)
        if isinstance(value, list):
            return [safe(v) for v in value]
        if isinstance(value, dict):
            return {safe(k): safe(v) for k, v in value.items()}
        return value

    return {k: safe(v) for k, v in e.items()}


def _print_entry(e: dict[str, Any]) -> None:
    e = _shown(e)
    head = Text()
    head.append(e["question_id"], style="bold cyan")
    head.append(f"  {e['path']}  depth {e['depth']}  ")
    head.append(e["status"], style="green" if e["status"] == "good" else "magenta")
    if e["rate"] is not None:
        head.append(f"  target rate {e['rate']:.2f}")
    console.print(head, highlight=False, overflow="fold")
    _row("question", _highlighted(e["question"], e["distraction"], e["earlier_distractions"]))
    if e["distraction"]:
        added = Text(e["distraction"], style=OWN_DISTRACTION)
        if e["placement"]:
            added.append(f" ({e['placement']})", style="dim")
        _row("added", added)
    if not e["choices"] and e["answer_text"]:
        # Free-form: no choices to list; the right answer and the one the sentence pushes.
        _row("answer", Text(e["answer_text"], style="bold green"))
        if e["target_option"]:
            _row("pushed", Text(e["target_option"], style="bold yellow"))
    for i, choice in enumerate(e["choices"]):
        line = Text(choice)
        if i == e["answer"]:
            line.append("  [correct]", style="bold green")
        if i == e["target_index"]:
            line.append("  [pushed by the distraction]", style="bold yellow")
        _row(f"  {LETTERS[i] if i < len(LETTERS) else i}.", line)
    if e["status"] == "rejected":
        why = e["failed_checks"] or {"": "no failed check recorded"}
        for name, reason in why.items():
            _row("rejected", Text(f"{name}: {reason}" if name else reason, style="red"))
    if e["status"] == "duplicate":
        _row("duplicate", Text("same text as another node of this tree"))
    for t in e["targets"]:
        score = f", search score {t['score']:.2f}" if t["score"] is not None else ""
        _row("target", Text(f"{t['target']}: {t['verdict']}{score}"))
    if e["error"]:
        _row("error", Text(str(e["error"]), style="red"))


def register(app: typer.Typer) -> None:
    """Add `show` to ``app``, replacing any command of that name."""
    add_command(app, "show", show_command)
