"""A task shape: what a question asks for, as one part.

A shape owns everything that differs between multiple choice, a number and a short answer:
its prompt templates, how a data row becomes a question, how a reply's answer is read, when an
answer is right, what a distraction may not say (the leak check), and how its questions are
exported for lm-evaluation-harness. Everything else (the search, the protocol, the store, the
report) asks the question's shape and never compares shape names, so a new shape is one module
that registers itself (``@task_shape``) plus its tests; ``--task NAME`` then picks it.

A shape without choices (``has_choices = False``) is free form: its questions carry accepted
answers (``references``), its replies are read by :meth:`TaskShape.read` and judged by
:meth:`TaskShape.is_right`, and it uses the shared free-form templates of every role it does
not bring itself (``proposer.free``, ``judge.free``, ``grader.free``, ``wrong_answers.free``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cdvkit.data.question import MULTIPLE_CHOICE, Question
from cdvkit.data.validation import InvalidRow, answer_text
from cdvkit.prompts.defaults import add_templates
from cdvkit.prompts.spec import Template
from cdvkit.registry import PartError, Registry, describe


@dataclass(frozen=True)
class FreeReading:
    """A free-form reply's final answer as written (``answer``), or None and why not."""

    answer: str | None
    reason: str  # "" when answer is set, else "no answer" | "ambiguous" | "refused" | ...
    how: str = ""


class TaskShape:
    """One task shape; subclass it, set the class attributes and register an instance."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    has_choices: ClassVar[bool] = False
    # What one answer of this shape is called in a sentence ("number", "short answer").
    answer_noun: ClassVar[str] = "answer"
    # The shape's own templates, by role ("target", "extractor", "proposer", "proposer_batch",
    # "judge", "grader", "wrong_answers"): registered as "role.<name>" ("proposer.<name>_batch");
    # a role it leaves out uses the shared free-form template.
    templates: ClassVar[Mapping[str, Template]] = {}
    # One data row of the shape, as a dataset file holds it (question, answer, and choices or
    # aliases): the contract tests load it and check the shape reads its own answer right.
    example: ClassVar[Mapping[str, Any]] = {}
    # What its wrong answers are called when a model is asked to list some ("numbers").
    wrong_kind: ClassVar[str] = "answers"
    # Rows without choices whose shape is inferred: shapes are asked in ascending rank and the
    # first that claims the answer takes the row; None: only chosen with --task.
    infer_rank: ClassVar[int | None] = None
    # How an error message says a row's answer reads as this shape ("is a number").
    row_claim: ClassVar[str] = ""
    # What the shape's task in lm-eval's own conventions (the loglik export) measures: a line of
    # the exported folder's README.
    lm_eval_measures: ClassVar[str] = (
        "Free form (`exact_match`): one greedy answer to the zero-shot `Question: ...\\nAnswer:` "
        "prompt, its first line against the reference."
    )
    # A step-by-step reply's length in tokens, low / mid / high: the forecast's prior.
    reply_tokens: ClassVar[tuple[int, int, int]] = (150, 270, 450)
    # A read answer goes on to the grader as well (when matching it is fuzzy, as for text).
    grade_read_answers: ClassVar[bool] = False

    # --- data rows ---------------------------------------------------------------------------

    def claims(self, answer: Any) -> bool:
        """Whether a row without choices whose answer is ``answer`` reads as this shape."""
        return False

    def reference(self, answer: Any) -> tuple[str, dict[str, Any]]:
        """A row's answer as this shape's reference, and metadata it adds (a worked
        solution); raises InvalidRow naming the defect."""
        return answer_text(answer), {}

    # --- replies -----------------------------------------------------------------------------

    def read(self, reply: str | None) -> FreeReading:
        """The final answer a reply gives, or None and why; never a guess."""
        raise NotImplementedError(f"the {self.name} shape reads no free-form replies")

    def is_right(self, answer: str | None, references: tuple[str, ...]) -> bool:
        """Whether ``answer`` (as read) is one of the accepted ``references``."""
        raise NotImplementedError(f"the {self.name} shape judges no free-form answers")

    def canonical(self, answer: str) -> str:
        """One spelling per distinct answer, so two spellings of one wrong answer count once."""
        return " ".join(answer.lower().split())

    # --- the search --------------------------------------------------------------------------

    def leaks(self, distraction: str, question: Question) -> bool:
        """Whether a distraction states the question's answer (that its question does not)."""
        return False

    def near_misses(self, reference: str) -> list[str]:
        """Wrong answers a careless solver gives for ``reference``, found without a model (none
        by default)."""
        return []

    def plain_answer(self, reference: str) -> str:
        """The reference as a final answer line gives it (a number alone: "$1,080" -> "1080")."""
        return reference

    def template(self, role: str, variant: str = "") -> str:
        """The name of the template ``role`` uses for this shape (``variant``: the run's choice
        among a role's templates, e.g. the judge's ``standard`` or ``paper``)."""
        key = "proposer_batch" if role == "proposer" and variant == "batch" else role
        if key in self.templates:
            return template_name(key, self.name)
        if role == "judge" and variant == "paper":
            return "judge.paper"  # the paper's judge sees the two questions only, any shape
        return template_name(key, "free")

    # --- export ------------------------------------------------------------------------------

    def lm_eval(self) -> dict[str, Any]:
        """What an lm-evaluation-harness task of this shape adds to the common part (generate
        mode): generation settings and the filter that reads a reply's answer."""
        return {
            "output_type": "generate_until",
            "doc_to_text": "Question: {{question}}\nAnswer:",
            "doc_to_target": "answer",
            "generation_kwargs": {"until": ["\n"], "do_sample": False, "temperature": 0.0},
            "metric_list": [
                {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}
            ],
        }

    def __repr__(self) -> str:
        return f"<task shape {self.name}>"


def mentions(text: str, phrase: str) -> bool:
    """Whether ``text`` says ``phrase`` as words of its own (any case): a leak check's test."""
    phrase = phrase.strip().rstrip(".").lower()
    if len(phrase) < 3:  # one- or two-letter answers match everywhere; nothing to check
        return False
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text.lower()) is not None


def template_name(role: str, shape: str) -> str:
    """The table's name of a shape's template for ``role`` ("proposer_batch" is a proposer's)."""
    if role == "proposer_batch":
        return f"proposer.{shape}_batch"
    return f"{role}.{shape}"


def _accept(name: str, value: Any) -> TaskShape:
    if isinstance(value, type) and issubclass(value, TaskShape):
        value = value()
    if not isinstance(value, TaskShape):
        raise PartError(f"expected a cdvkit.tasks.TaskShape, got {describe(value)}")
    if value.name != name:
        raise PartError(f"the shape calls itself {value.name!r}")
    if not value.example:
        raise PartError("the shape gives no example row (example = {question, answer, ...})")
    if not value.has_choices:
        # A free-form shape answers through its own reader; one that reads nothing is no shape.
        for method in ("read", "is_right"):
            if getattr(type(value), method) is getattr(TaskShape, method):
                raise PartError(f"a free-form shape needs its own {method}()")
    add_templates({template_name(role, value.name): t for role, t in value.templates.items()})
    return value


SHAPES: Registry[TaskShape] = Registry("task shape", "cdvkit.task_shapes", accept=_accept)


def task_shape(cls: type[TaskShape]) -> type[TaskShape]:
    """Register a TaskShape subclass under its ``name`` (a class decorator)."""
    SHAPES.add(cls.name, cls, help=cls.description)
    return cls


def shape_of(q: Question | str) -> TaskShape:
    """The shape of a question (or the shape named): raises ValueError for an unknown one."""
    return SHAPES.get(q if isinstance(q, str) else q.task)


def row_task(row: Mapping[str, Any]) -> str:
    """A stored or exported row's task shape: a row that names none is multiple choice (every
    file written before there were shapes)."""
    return row.get("task") or MULTIPLE_CHOICE


def shape_names() -> list[str]:
    return list(SHAPES)


def row_shapes() -> dict[str, TaskShape]:
    """Every registered shape by name, as the data layer takes them."""
    return {name: SHAPES.get(name) for name in SHAPES}


__all__ = [
    "SHAPES",
    "FreeReading",
    "InvalidRow",
    "TaskShape",
    "mentions",
    "row_shapes",
    "row_task",
    "shape_names",
    "shape_of",
    "task_shape",
]
