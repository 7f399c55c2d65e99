"""Labelled questions for the enhanceability classifier: the texts it sees and where labels come
from (the reference's instruction/output file, or the outcomes of cdvkit runs)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cdvkit.data.question import Question
from cdvkit.store.status import QuestionStatus

_INSTRUCTION_RE = re.compile(r"Question:\s*(?P<q>.*?)\nChoices:\s*(?P<c>.*)\Z", re.S)

QuestionLike = Question | tuple[str, Sequence[str]] | str


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
    """Questions as classifier texts with labels (1 = enhanceable), and where they came from."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def extend(self, other: Labelled) -> None:
        self.texts += other.texts
        self.labels += other.labels
        self.sources += other.sources

    @property
    def positives(self) -> int:
        return int(sum(self.labels))

    def subset(self, keep: Iterable[int]) -> Labelled:
        idx = list(keep)
        return Labelled(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.sources[i] for i in idx],
        )


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
    """The reference's answer to "is it too simple to be enhanced?" as enhanceable (1) or not."""
    word = output.strip().strip(".").lower()
    if word == "yes":
        return 0
    if word == "no":
        return 1
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
    return out


def load_run_outcomes(run_dir: str | Path) -> Labelled:
    """Labels from a finished (or partly finished) cdvkit run."""
    from cdvkit.store import RunStore

    with RunStore(run_dir, readonly=True) as store:
        with_example = {n["question_id"] for n in store.nodes(status="good")}
        out = Labelled()
        for d in store.questions(status=QuestionStatus.DONE):
            q: Question = d["question"]
            out.texts.append(question_text(q.question, q.choices))
            out.labels.append(int(q.id in with_example))
            out.sources.append(str(run_dir))
    return out


def load_labelled(source: str | Path) -> Labelled:
    """A reference-format JSON file, or a run directory."""
    p = Path(source)
    if p.is_dir():
        return load_run_outcomes(p)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or run directory")
    return load_reference_file(p)
