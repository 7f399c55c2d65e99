"""cdvkit's own example rows (``RunStore.examples()`` and its JSONL export) as evaluation items.

Rows come in the order the search found them, so grouping keeps it: a question's first example
stays its first, the one an evaluation without ``--all-examples`` uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cdvkit.data.question import NO_CHOICE, Question, stable_id
from cdvkit.evaluation.items import ORIGINAL, EvalItem, ExampleSet, Variant
from cdvkit.evaluation.row_checks import (
    IDENTICAL,
    BadRow,
    ExamplesFileError,
    ReadRows,
    Row,
    answer_index,
    checked_choices,
    checked_text,
    no_example_left,
    optional_text,
    same_text,
)
from cdvkit.search.goals_multi import required_targets
from cdvkit.store import RunStore
from cdvkit.store.status import QuestionStatus
from cdvkit.tasks import AnswerKey, row_task, shape_names, shape_of

# A baseline's rewrite is valid (it passed the constraints) whether it fooled the target (good)
# or not (open): either is the question's distracted version.
REWRITE_STATUSES = ("good", "open")


def read_example_rows(rows: Iterable[Row]) -> ReadRows:
    """Validate and group rows of cdvkit's example schema (``RunStore.examples()`` / its JSONL)
    by question, keeping their order: rows come in the order the search found them, so a
    question's first example stays first."""
    grouped: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for row in rows:
        where = f"row {row.number}"
        try:
            d = row.object()
            oq = checked_text(d.get("original_question"), "original_question")
            question = checked_text(d.get("question"), "question")
            task, refs = free_form_of(d)
            if refs:
                oc, oa, choices, answer = [], NO_CHOICE, [], NO_CHOICE
            else:
                oc = checked_choices(d.get("original_choices"), "original_choices")
                oa = answer_index(d.get("original_answer"), oc, "original_answer")
                choices = checked_choices(d.get("choices"), "choices")
                answer = answer_index(d.get("answer"), choices, "answer")
            source = optional_text(d.get("source"), "source") or ""
            subject = optional_text(d.get("subject"), "subject")
            qid = optional_text(d.get("question_id"), "question_id")
            qid = qid or stable_id(source, oq, oc or refs)
            path = optional_text(d.get("path"), "path")
            optional_text(d.get("target"), "target")
            original = Variant(ORIGINAL, oq, tuple(oc), oa, task, refs)
            g = grouped.get(qid)
            if g is not None and g["original"] != original:
                raise BadRow(
                    f"question_id {qid!r} names another original question in row {g['row']}"
                )
        except BadRow as exc:
            problems.append(f"{where}: {exc}")
            continue
        if g is None:
            g = grouped[qid] = {
                "row": row.number,
                "dataset": source,
                "subject": subject,
                "original": original,
                "examples": [],
                "identical": [],
            }
        if same_text(question, oq):
            g["identical"].append((row.number, f"{where}: {IDENTICAL}"))
            continue
        key = f"example:{path or len(g['examples'])}"
        if any(v.key == key for v in g["examples"]):
            key = f"{key}@row{row.number}"  # two rows with one path: keep both apart
        g["examples"].append(Variant(key, question, tuple(choices), answer, task, refs))
    items, others = [], []
    left_out: list[tuple[int, str]] = []
    for qid, g in grouped.items():
        item = EvalItem(qid, g["dataset"], g["original"], tuple(g["examples"]), g["subject"])
        if not g["examples"]:
            left_out.append((g["row"], no_example_left(f"row {g['row']}", len(g["identical"]))))
            others.append(item)  # still a question of the dataset
            continue
        left_out.extend(g["identical"])
        items.append(item)
    skipped = [line for _, line in sorted(left_out, key=lambda x: x[0])]
    return ReadRows(items, skipped, problems, others)


def free_form_of(d: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A row's task shape and accepted answers: a free-form ``task`` (numeric, short_answer, a
    plugin's) with a list of ``references`` (cdvkit's export), else multiple choice with none
    (a row that names no task: every file written before there were shapes)."""
    task = row_task(d)
    try:
        shape = shape_of(str(task))
    except ValueError:
        known = ", ".join(shape_names())
        what = f"task {str(task)[:40]!r}"
        raise BadRow(
            f"{what} is not a registered task shape ({known}); a plugin's shape needs its "
            "plugin installed"
        ) from None
    if shape.has_choices:
        return shape.name, ()
    refs = d.get("references")
    if (
        not isinstance(refs, list)
        or not refs
        or not all(isinstance(r, str) and r.strip() for r in refs)
    ):
        raise BadRow(f"a {task} row needs references: a list of its accepted answers (text)")
    try:
        AnswerKey(task, tuple(refs))
    except ValueError as exc:
        raise BadRow(str(exc)) from None
    return task, tuple(refs)


def items_from_examples(rows: Iterable[dict[str, Any]]) -> list[EvalItem]:
    """Group example rows (``RunStore.examples()`` / its JSONL) by question, keeping their order.

    Examples identical to their original are left out (``from_store`` and ``load_examples_file``
    also say so); malformed rows raise ExamplesFileError naming every one by its 1-based row.
    """
    read = read_example_rows(Row(n, row) for n, row in enumerate(rows, 1))
    if read.problems:
        raise ExamplesFileError("example rows", read.problems)
    return read.items


def from_store(store: RunStore, label: str | None = None) -> ExampleSet:
    """A run's examples, and every other question of the run (searched without an example,
    originally failed, skipped by a prefilter, not reached) for the accuracy over them all.

    A rewrite baseline's run (its ``proposer`` is one, see ``search.proposers.rewrites``)
    has no search: each question's one rewrite is its distracted version whether or not it
    fooled the target, so the baseline and a CDV run compare side by side.
    """
    from cdvkit.protocol import protocol_from_config
    from cdvkit.search.proposers import rewrites

    cfg = store.get_config() or {}
    statuses = store.questions()
    baseline = str(cfg["proposer"]) if rewrites(cfg.get("proposer")) else None
    if baseline:
        items, skipped = rewrite_items(store, [d["question"] for d in statuses]), []
    else:
        # Row numbers are those of the run's JSONL export, which writes these rows in order.
        read = read_example_rows(Row(n, row) for n, row in enumerate(store.examples(), 1))
        if read.problems:
            raise ExamplesFileError(str(store.run_dir), read.problems)
        items, skipped = read.items, read.skipped
    with_example = {i.id for i in items}
    others = [
        question_item(d["question"], failed=d["status"] == QuestionStatus.ORIGINAL_FAILED)
        for d in statuses
        if d["question"].id not in with_example
    ]
    searched = cfg.get("target") or ()
    targets = (searched,) if isinstance(searched, str) else tuple(map(str, searched))
    try:
        protocol = protocol_from_config(cfg) if cfg else None
    except (TypeError, ValueError):  # a config this version cannot read
        protocol = None
    name = label or " + ".join(targets) or store.run_dir.name
    if baseline and not label:
        name = f"{name} · {baseline}"
    return ExampleSet(
        label=name,
        kind="run",
        path=str(store.run_dir),
        items=items,
        skipped=skipped,
        others=others,
        whole=True,
        targets=fooled_by_construction(targets, cfg.get("fool", "all")),
        protocol=protocol,
        baseline=baseline,
    )


def fooled_by_construction(targets: tuple[str, ...], fool: Any) -> tuple[str, ...]:
    """The targets every example of a run fools under its protocol: its one target, or its
    targets when each example had to fool them all (``--fool all``, or K = all of them); with
    ``any`` or fewer than all, an example may leave any one of them right, so none is fooled
    by construction."""
    if len(targets) <= 1:
        return targets
    try:
        every = required_targets(fool, len(targets)) == len(targets)
    except ValueError:  # a setting this version cannot read: claim nothing
        return ()
    return targets if every else ()


def question_item(q: Question, *, failed: bool = False) -> EvalItem:
    """A question of the dataset with no example: only its original is asked."""
    original = Variant(ORIGINAL, q.question, q.choices, q.answer, q.task, q.references)
    return EvalItem(q.id, q.source, original, (), q.subject, failed)


def rewrite_items(store: RunStore, questions: list[Question]) -> list[EvalItem]:
    """A baseline run's questions with their rewrite: the first valid child of the root (depth
    2, good or open), whether or not it fooled the target."""
    by_id = {q.id: q for q in questions}
    items: dict[str, EvalItem] = {}
    for n in store.nodes():
        q = by_id.get(n["question_id"])
        if q is None or q.id in items or n["depth"] != 2 or n["status"] not in REWRITE_STATUSES:
            continue
        rewrite = Variant(
            f"example:{n['path']}",
            n["question"],
            tuple(n["choices"]),
            n["answer"],
            q.task,
            q.references,
        )
        items[q.id] = replace(question_item(q), examples=(rewrite,))
    # In the dataset's order, as a CDV run's examples come.
    return [items[q.id] for q in questions if q.id in items]


def from_run_dir(run_dir: str | Path, label: str | None = None) -> ExampleSet:
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return from_store(store, label)
