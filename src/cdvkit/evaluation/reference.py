"""The reference implementation's output (a JSON list of questions with ``good_questions``).

Its conventions are kept as it wrote them: the target model is the folder name, the dataset the
file name, and a ``good_questions`` entry equal to its question marks a question the target
already failed (no CDV example).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cdvkit.data.question import NO_CHOICE, stable_id
from cdvkit.evaluation.example_rows import free_form_of
from cdvkit.evaluation.items import ORIGINAL, EvalItem, Variant
from cdvkit.evaluation.row_checks import (
    IDENTICAL,
    BadRow,
    ReadRows,
    Row,
    answer_index,
    checked_choices,
    checked_text,
    json_kind,
    no_example_left,
    optional_text,
    same_text,
)


def reference_dataset_name(path: Path) -> str:
    # The reference writes enhanced/<model>/<Dataset>_enhanced.json.
    return re.sub(r"_enhanced$", "", path.stem)


def reference_label(path: Path) -> str:
    """The reference keeps the target model in the folder name: enhanced/<model>/<file>."""
    if path.parent.parent.name == "enhanced" and path.parent.name:
        return path.parent.name
    return path.stem


def read_reference_rows(rows: Iterable[Row], dataset: str) -> ReadRows:
    """Every entry is a question of the dataset: those with an example become items, the others
    (not searched, nothing found, or already failed: ``failed``) count in the accuracy over every
    question."""
    items: list[EvalItem] = []
    others: list[EvalItem] = []
    skipped: list[str] = []
    problems: list[str] = []
    for row in rows:
        where = f"row {row.number}"
        try:
            e = row.object()
            question = checked_text(e.get("question"), "question")
            # cdvkit's export of a free-form run adds task and references to the format.
            task, refs = free_form_of(e)
            if refs:
                choices, answer = [], NO_CHOICE
            else:
                choices = checked_choices(e.get("choices"), "choices", numbers=True)
                answer = answer_index(e.get("answer"), choices, "answer")
            source = optional_text(e.get("source"), "source") or dataset
            subject = optional_text(e.get("subject"), "subject")
            qid = optional_text(e.get("id"), "id") or stable_id(source, question, choices or refs)
            original = Variant(ORIGINAL, question, tuple(choices), answer, task, refs)
            if "good_questions" not in e:
                skipped.append(f"{where}: not searched (no good_questions)")
                others.append(EvalItem(qid, source, original, (), subject))
                continue
            goods = [] if e["good_questions"] is None else e["good_questions"]
            if not isinstance(goods, list):
                raise BadRow(f"good_questions must be a list, got {json_kind(goods)}")
            examples: list[Variant] = []
            identical: list[str] = []
            for k, g in enumerate(goods):
                at = f"good_questions[{k}]"
                if not isinstance(g, dict):
                    raise BadRow(f"{at} is not a JSON object but {json_kind(g)}")
                text = checked_text(g.get("question"), f"{at}.question")
                if refs:
                    if not same_text(text, question):
                        examples.append(Variant(f"example:{k}", text, (), NO_CHOICE, task, refs))
                    else:
                        identical.append(f"{where}, {at}: {IDENTICAL}")
                    continue
                gchoices = choices
                if g.get("choices") is not None:
                    gchoices = checked_choices(g["choices"], f"{at}.choices", numbers=True)
                # Without a ground truth of its own, the example's is the original's answer text.
                truth = g.get("ground_truth")
                gt = answer_index(
                    choices[answer] if truth is None else truth, gchoices, f"{at}.ground_truth"
                )
                if same_text(text, question):
                    # Also the reference's marker for "the target already failed the original".
                    identical.append(f"{where}, {at}: {IDENTICAL}")
                    continue
                examples.append(Variant(f"example:{k}", text, tuple(gchoices), gt))
        except BadRow as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not examples:
            if identical:
                skipped.append(no_example_left(where, len(identical)))
            else:
                skipped.append(f"{where}: no CDV example (good_questions is empty)")
            # Itself as its only good question: the reference's originally failed question.
            others.append(EvalItem(qid, source, original, (), subject, failed=bool(identical)))
            continue
        skipped.extend(identical)
        items.append(EvalItem(qid, source, original, tuple(examples), subject))
    return ReadRows(items, skipped, problems, others)


def items_from_reference(
    entries: list[dict[str, Any]], *, dataset: str = ""
) -> tuple[list[EvalItem], list[str]]:
    """Read the reference's output; returns the items and why other entries were left out.

    The reference records a question its target already failed as a ``good_questions`` entry that
    is the original question itself; that is no CDV example and is skipped (like any example
    identical to its original), as is an entry the reference never processed (no
    ``good_questions`` key). Here a malformed entry is listed with them, by its 1-based row;
    ``load_examples_file`` refuses a file that has any.
    """
    read = read_reference_rows((Row(n, e) for n, e in enumerate(entries, 1)), dataset)
    return read.items, read.problems + read.skipped
