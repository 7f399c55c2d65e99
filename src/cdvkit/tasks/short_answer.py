"""The ``short_answer`` task shape: a question answered in a few words (TriviaQA-style).

A reply's answer is read by :func:`cdvkit.tasks.short.read_short`; it is right when it matches
the reference or one of its aliases after SQuAD-style normalisation. A row without choices whose
answer is not a number reads as this shape. Matching text is fuzzy, so a read answer also goes
to the grader when a run has one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cdvkit.data.question import Question
from cdvkit.prompts.defaults import free_extractor, free_target
from cdvkit.prompts.spec import Template
from cdvkit.tasks.base import FreeReading, TaskShape, mentions, task_shape
from cdvkit.tasks.numeric_answer import FREE_PROMPT
from cdvkit.tasks.short import normalize_answer, read_short, short_matches

SHORT_FILTER = "remove_whitespace"


@task_shape
class ShortAnswer(TaskShape):
    name = "short_answer"
    description = "a short text answer (trivia: TriviaQA)"
    answer_noun = "short answer"
    templates: ClassVar[dict[str, Template]] = {
        "target": free_target(
            "questions",
            "a final line of the form 'Answer: X' where X is the answer alone, in a few words",
        ),
        "extractor": free_extractor("answer, in a few words"),
    }
    example: ClassVar[dict[str, Any]] = {
        "question": "Which element has the chemical symbol Fe?",
        "answer": "Iron",
        "aliases": ["iron (Fe)"],
    }
    infer_rank = 100  # any answer that is no number
    row_claim = "is not a number"
    grade_read_answers = True
    reply_tokens = (20, 80, 200)  # a guess: no corpus of short-answer replies here
    lm_eval_measures = (
        "Short answer (`exact_match,remove_whitespace`): one greedy answer to the "
        "zero-shot prompt, its first line against the reference and its aliases "
        "(triviaqa's conventions)."
    )

    def claims(self, answer: Any) -> bool:
        # Whatever no shape before it took (a missing answer too: that row is rejected when
        # it is built, so its shape hardly matters).
        return True

    def read(self, reply: str | None) -> FreeReading:
        got = read_short(reply)
        return FreeReading(got.text, got.reason, got.how)

    def is_right(self, answer: str | None, references: tuple[str, ...]) -> bool:
        return answer is not None and short_matches(answer, references)

    def canonical(self, answer: str) -> str:
        return normalize_answer(answer)

    def leaks(self, distraction: str, question: Question) -> bool:
        return any(
            mentions(distraction, a) and not mentions(question.question, a)
            for a in question.references
        )

    def lm_eval(self) -> dict[str, Any]:
        return {
            "output_type": "generate_until",
            "doc_to_text": FREE_PROMPT,
            # A list: lm-eval counts a reply right when it matches any of them.
            "doc_to_target": "references",
            "target_delimiter": " ",
            "generation_kwargs": {
                "until": ["\n", ".", ","],
                "do_sample": False,
                "temperature": 0.0,
            },
            "filter_list": [
                {
                    "name": SHORT_FILTER,
                    "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}],
                }
            ],
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "ignore_case": True,
                    "ignore_punctuation": True,
                }
            ],
        }
