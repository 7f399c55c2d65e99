"""Labelled questions for the enhanceability classifier: the texts it sees and where labels come
from (the reference's instruction/output file, or the outcomes of cdvkit runs).

Both sources mean the same by label 1 (``LABEL_MEANING``): a search of the question ended with
at least one good question, a question the target already failed counting as its own, because
that is what the reference's labelling script wrote. Each ``Labelled`` keeps, per source, how its
labels were read (``readings``), so a saved model can say where every label came from.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.data.question import Question
from cdvkit.store.status import QuestionStatus

_INSTRUCTION_RE = re.compile(r"Question:\s*(?P<q>.*?)\nChoices:\s*(?P<c>.*)\Z", re.S)

QuestionLike = Question | tuple[str, Sequence[str]] | str

# What label 1 means, whatever the source: recorded in every saved model.
LABEL_MEANING = (
    "P(enhanceable): 1 = the search found at least one good question (a question the target "
    "failed undistracted counts as its own, as in the reference)"
)
REFERENCE_READING = (
    'reference file: output "Yes" = at least one good question (originally failed included), '
    '"No" = none'
)
RUN_READING = (
    "run outcomes: 1 = the search found a CDV example, or the target failed the original "
    "(counted as its own good question, as the reference does); 0 = searched to the end with "
    "none; unfinished questions left out"
)
UNSTATED = "unstated (labels given directly, not read from a file or run)"


def question_text(question: str, choices: Sequence[str]) -> str:
    """The text the classifier sees, in the reference file's layout so both sources agree."""
    return f"Question: {question.strip()}\nChoices: {list(choices)!r}"


def as_text(q: QuestionLike) -> str:
    if isinstance(q, Question):
        return question_text(q.question, q.choices)
    if isinstance(q, str):
        return q
    question, choices = q
    return question_text(question, choices)


@dataclass
class Labelled:
    """Questions as classifier texts with labels (1 = enhanceable), where each came from, and
    per source how its labels were read (``readings``: source -> a short text)."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    readings: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def extend(self, other: Labelled) -> None:
        self.texts += other.texts
        self.labels += other.labels
        self.sources += other.sources
        self.readings.update(other.readings)

    @property
    def positives(self) -> int:
        return int(sum(self.labels))

    def subset(self, keep: Iterable[int]) -> Labelled:
        idx = list(keep)
        return Labelled(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.sources[i] for i in idx],
            dict(self.readings),
        )

    def record(self) -> list[dict[str, Any]]:
        """Per source, in first-seen order: its rows, its positives and how its labels were read
        (what a saved model keeps, so its labels can be traced)."""
        rows: dict[str, dict[str, Any]] = {}
        for source, label in zip(self.sources, self.labels, strict=True):
            row = rows.setdefault(
                source,
                {
                    "source": source,
                    "n": 0,
                    "positives": 0,
                    "reading": self.readings.get(source, UNSTATED),
                },
            )
            row["n"] += 1
            row["positives"] += int(label)
        return list(rows.values())


def parse_instruction(instruction: str) -> tuple[str, list[str]]:
    """(question, choices) from a reference row's instruction text."""
    m = _INSTRUCTION_RE.search(instruction)
    if m is None:
        raise ValueError(f"no 'Question: ...\\nChoices: [...]' in {instruction[:80]!r}")
    try:
        choices = ast.literal_eval(m.group("c").strip())
    except (ValueError, SyntaxError):
        raise ValueError(f"unreadable choices list in {instruction[:80]!r}") from None
    if not isinstance(choices, list):
        raise ValueError(f"choices are not a list in {instruction[:80]!r}")
    return m.group("q").strip(), [str(c) for c in choices]


def label_from_output(output: str) -> int:
    """A reference row's output as enhanceable (1) or not (0), read as its code wrote it.

    The row's instruction asks whether the question is "too simple to be enhanced", which would
    make "Yes" mean *not* enhanceable; but the reference's labelling script writes "Yes" exactly
    when the search found at least one good question (a question the target failed
    undistracted included, stored with itself as its good question) and "No" when it found
    none. The labels are what the code did, not what the wording asks, so "Yes" is 1.
    """
    word = output.strip().strip(".").lower()
    if word == "yes":
        return 1
    if word == "no":
        return 0
    raise ValueError(f"output must be Yes or No, not {output!r}")


def load_reference_file(path: str | Path) -> Labelled:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of instruction/output rows")
    out = Labelled()
    for i, row in enumerate(rows):
        try:
            question, choices = parse_instruction(row["instruction"])
            label = label_from_output(row["output"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: row {i}: {exc}") from None
        out.texts.append(question_text(question, choices))
        out.labels.append(label)
        out.sources.append(str(path))
    out.readings[str(path)] = REFERENCE_READING
    return out


def load_run_outcomes(run_dir: str | Path) -> Labelled:
    """Labels from a finished (or partly finished) cdvkit run, meaning what the reference's do.

    A question searched to the end is 1 when it has a CDV example, 0 when it has none. A question
    the target already failed undistracted is 1, as in the reference (which stores it as its own
    good question): a saved prefilter decides before any call, on questions the target may well
    fail, and skipping one of those would save only its undistracted answers (the search stops
    there) while taking out of the paper's numbers a question they count. Questions not finished
    (pending, incomplete, skipped) say nothing and are left out.
    """
    from cdvkit.store import RunStore

    with RunStore(run_dir, readonly=True) as store:
        with_example = {n["question_id"] for n in store.nodes(status="good")}
        out = Labelled()
        for d in store.questions():
            if d["status"] not in (QuestionStatus.DONE, QuestionStatus.ORIGINAL_FAILED):
                continue
            q: Question = d["question"]
            positive = d["status"] == QuestionStatus.ORIGINAL_FAILED or q.id in with_example
            out.texts.append(question_text(q.question, q.choices))
            out.labels.append(int(positive))
            out.sources.append(str(run_dir))
    out.readings[str(run_dir)] = RUN_READING
    return out


def load_labelled(source: str | Path) -> Labelled:
    """A reference-format JSON file, or a run directory."""
    p = Path(source)
    if p.is_dir():
        return load_run_outcomes(p)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or run directory")
    return load_reference_file(p)
