"""The ``multiple_choice`` task shape: a question with lettered choices, one of them right.

Its replies are read by :mod:`cdvkit.answers` (a letter, or a choice's text) against the
question's choices, and its templates come in variants a run picks by its settings
(``target.letter`` / ``target.paper``, ``proposer.one`` / ``proposer.batch`` / ``proposer.paper``,
``judge.standard`` / ``judge.paper``). A row with choices reads as this shape.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cdvkit.data.question import Question
from cdvkit.tasks.base import TaskShape, mentions, task_shape


@task_shape
class MultipleChoice(TaskShape):
    name = "multiple_choice"
    description = "lettered choices, one right (MMLU, ARC, TruthfulQA MC1)"
    has_choices = True
    answer_noun = "choice"
    example: ClassVar[dict[str, Any]] = {
        "question": "Which planet is known as the Red Planet?",
        "choices": ["Venus", "Mars", "Jupiter", "Saturn"],
        "answer": "Mars",
    }
    infer_rank = 0  # a row with choices
    # The real replies of six models to the tool's prompt (../shared/data/replies) average 116
    # (llama-3.1-8B) to 381 (qwen-2.5-72B) tokens, 270 over all.
    reply_tokens = (115, 270, 380)
    lm_eval_measures = (
        "Multiple choice (`acc`): the choice letter the model finds most likely after the "
        "lettered question and `Answer:`: no system prompt, no reasoning, no sampling, no "
        "reader. The nearest cdvkit number is `cdv evaluate --protocol exact`, which scores "
        "the letters after cdvkit's system prompt and chat messages."
    )

    def template(self, role: str, variant: str = "") -> str:
        return f"{role}.{variant}"

    def leaks(self, distraction: str, question: Question) -> bool:
        answer = question.answer_text
        return mentions(distraction, answer) and not mentions(question.question, answer)

    def lm_eval(self) -> dict[str, Any]:
        # Each choice's letter scored by its likelihood after the lettered question.
        return {
            "output_type": "multiple_choice",
            "doc_to_text": "prompt",
            "doc_to_choice": "labels",
            "doc_to_target": "answer",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        }
