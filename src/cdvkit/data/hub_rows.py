"""Converters from one Hugging Face Hub row of a built-in benchmark to a Question.

Each raises InvalidRow on a defective row, so the mapping is tested without a network
(``cdvkit.data.hub`` fetches the rows and registers the benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdvkit.data.question import Question
from cdvkit.data.validation import InvalidRow, RowShape, build_free_form, build_question


def _extras(row: Mapping[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in used}


def _hub_id(source: str, row: Mapping[str, Any]) -> str | None:
    # Prefixed so ids from different benchmarks cannot collide in one run store.
    raw = row.get("id")
    return f"{source}-{raw}" if raw not in (None, "") else None


def convert_mmlu(row: Mapping[str, Any], shape: RowShape | None = None) -> Question:
    """cais/mmlu: question, subject, choices (4 texts), answer (0-based int)."""
    return build_question(
        question=row.get("question"),
        choices=row.get("choices"),
        answer=row.get("answer"),
        source="MMLU",
        subject=row.get("subject"),
        metadata=_extras(row, {"question", "choices", "answer", "subject"}),
    )


def _labelled(row: Mapping[str, Any], question_key: str, source: str) -> Question:
    choices = row.get("choices")
    if not isinstance(choices, Mapping):
        raise InvalidRow("choices must be an object with 'label' and 'text' lists")
    metadata = _extras(row, {"id", question_key, "choices", "answerKey"})
    if row.get("id") not in (None, ""):
        metadata["hub_id"] = row["id"]
    return build_question(
        id=_hub_id(source, row),
        question=row.get(question_key),
        choices=choices,
        answer=row.get("answerKey"),
        source=source,
        metadata=metadata,
    )


def convert_commonsense_qa(row: Mapping[str, Any], shape: RowShape | None = None) -> Question:
    """tau/commonsense_qa: id, question, question_concept, choices={label, text}, answerKey."""
    return _labelled(row, "question", "CommonsenseQA")


def convert_openbookqa(row: Mapping[str, Any], shape: RowShape | None = None) -> Question:
    """allenai/openbookqa: id, question_stem, choices={text, label}, answerKey."""
    return _labelled(row, "question_stem", "OpenbookQA")


def convert_truthfulqa_mc1(row: Mapping[str, Any], shape: RowShape | None = None) -> Question:
    """truthfulqa/truthful_qa (multiple_choice): question, mc1_targets={choices, labels}.

    MC1 has exactly one true answer, listed first on the hub; the order is kept as the
    reference implementation kept it, so callers that care about position bias must shuffle.
    """
    targets = row.get("mc1_targets")
    if not isinstance(targets, Mapping):
        raise InvalidRow("mc1_targets is missing or not an object")
    choices, labels = targets.get("choices"), targets.get("labels")
    if not isinstance(labels, list) or not isinstance(choices, list):
        raise InvalidRow("mc1_targets must hold 'choices' and 'labels' lists")
    if len(labels) != len(choices):
        raise InvalidRow(f"mc1_targets has {len(choices)} choices but {len(labels)} labels")
    correct = [i for i, label in enumerate(labels) if label == 1]
    if len(correct) != 1:
        raise InvalidRow(f"mc1_targets marks {len(correct)} choices correct; MC1 needs exactly 1")
    return build_question(
        question=row.get("question"),
        choices=choices,
        answer=correct[0],
        source="TruthfulQA",
        # mc2_targets repeats the choices with several true answers; not needed for MC1.
        metadata=_extras(row, {"question", "mc1_targets", "mc2_targets"}),
    )


def convert_gsm8k(row: Mapping[str, Any], shape: RowShape) -> Question:
    """openai/gsm8k (main): question, answer = a worked solution whose last line is "#### N".

    The reference is N (normalised: "#### 1,080" -> "1080"); the solution is kept in
    metadata["solution"].
    """
    solution = row.get("answer")
    if isinstance(solution, str) and solution.strip() and "####" not in solution:
        raise InvalidRow("answer is a solution without its final '#### <number>' line")
    return build_free_form(
        shape=shape,
        question=row.get("question"),
        answer=solution,
        source="GSM8K",
        metadata=_extras(row, {"question", "answer"}),
    )


def convert_trivia_qa(row: Mapping[str, Any], shape: RowShape) -> Question:
    """mandarjoshi/trivia_qa (rc.nocontext): question_id, question, question_source,
    answer={value, aliases, normalized_aliases, ...}; entity_pages and search_results are empty.

    The references are the answer's value, then its aliases (repeats and blanks left out).
    """
    answer = row.get("answer")
    if not isinstance(answer, Mapping):
        raise InvalidRow("answer is missing or not an object with 'value' and 'aliases'")
    aliases = answer.get("aliases")
    if not isinstance(aliases, list | tuple):
        aliases = []
    metadata = _extras(row, {"question", "question_id", "answer", "entity_pages", "search_results"})
    raw_id = row.get("question_id")
    if raw_id not in (None, ""):
        metadata["hub_id"] = raw_id
    return build_free_form(
        shape=shape,
        id=f"TriviaQA-{raw_id}" if raw_id not in (None, "") else None,
        question=row.get("question"),
        answer=answer.get("value"),
        # The hub's aliases cannot be fixed by the user: blanks are dropped, not a defect.
        aliases=[a for a in aliases if isinstance(a, str) and a.strip()],
        source="TriviaQA",
        metadata=metadata,
    )
