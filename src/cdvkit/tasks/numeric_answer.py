"""The ``numeric`` task shape: a question answered by a number (GSM8K-style word problems).

A reply's number is read by :func:`cdvkit.tasks.numeric.read_number`; it is right when it equals
the reference within a tolerance, after commas, currency, percent signs, units, fractions and
markup are dropped. A row without choices whose answer is a number alone (or a worked solution
ending in "#### N") reads as this shape.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, ClassVar

from cdvkit.data.question import Question
from cdvkit.data.validation import InvalidRow, answer_text, short
from cdvkit.prompts.defaults import free_extractor, free_target
from cdvkit.prompts.spec import Template
from cdvkit.tasks.base import FreeReading, TaskShape, task_shape
from cdvkit.tasks.numeric import (
    numbers_in,
    parse_number,
    read_number,
    reference_number,
    same_number,
)

# What a numeric answer looks like when the shape is inferred: a number alone, as people write it
# ("72", "-3", "1,080", "$18", "0.5", "1/2", "1 1/2", "45%"). The reader takes more ("12 cm",
# "eighteen", "Apollo 11" -> 11), which is right for a number but would read many a short answer
# as one; under --task numeric every answer it reads counts.
_NUMBER_ALONE = re.compile(
    r"[-+\u2212]?[$\u20ac\u00a3\u00a5]?\s*[-+\u2212]?"
    r"(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    r"(?:/[0-9]+|\s+[0-9]+/[0-9]+)?%?"
)

# lm-eval's own conventions (the loglik export mode), modelled on its gsm8k task.
FREE_PROMPT = "Question: {{question}}\nAnswer:"
# A number as replies write it: "-5", "$1,080.50".
_NUM = r"-?\$?[0-9][0-9,]*(?:\.[0-9]+)?"
# What the final answer follows: cdvkit's targets end on "Answer: N", gsm8k's solutions "#### N".
_MARK = r"(?:####|(?i:answer)\s*:)"
# The number after the last "Answer:" (or "####") of a reply, markup between them skipped; in a
# reply without such a line, its last number. One pattern, two alternatives: the second matches
# from the start, and only where no marked number is, so lm-eval's regex filter (last match,
# first non-empty group) needs no fallback step.
FINAL_NUMBER = (
    rf"(?s){_MARK}[^0-9\n]*?({_NUM})|^(?!.*{_MARK}[^0-9\n]*[0-9])(?:.*[^0-9.,$-])?({_NUM})"
)
# Dropped from the extracted number and the reference before they are compared, in this order.
NUMBER_NOISE = [",", "\\$", "%", "\\.$", "\\.0+$"]
NUMERIC_FILTER = "final-number"


def number_text(value: float) -> str:
    """A number as a reference: 1080.0 -> "1080", 0.5 -> "0.5"."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def numeric_reference(answer: Any) -> tuple[str, str | None]:
    """The reference of a numeric answer and, for a worked solution, the solution.

    A plain answer ("72", "1,080", "$18", 72) is kept as written. A solution that ends in
    "#### N" (GSM8K), or gives its answer in ``\\boxed{N}`` (MATH), gives the number N,
    normalised ("#### 1,080" -> "1080"), and the whole solution.
    """
    text = answer_text(answer)
    value = reference_number(text)
    if "####" in text or "\\boxed" in text or "\\fbox" in text:
        if value is None:
            final = text.rsplit("####", 1)[1].strip() if "####" in text else text
            raise InvalidRow(
                f"answer is a solution whose final answer {short(final)} is not a number"
            )
        return number_text(value), text
    if value is None:
        raise InvalidRow(f"answer {short(text)} is not a number (task numeric)")
    return text, None


def names_number(text: str, reference: str) -> bool:
    """Whether ``text`` holds the number ``reference`` gives, in any spelling."""
    want = reference_number(reference)
    return want is not None and any(same_number(v, want) for v in numbers_in(text))


@task_shape
class Numeric(TaskShape):
    name = "numeric"
    description = "a number (math word problems: GSM8K)"
    answer_noun = "number"
    templates: ClassVar[dict[str, Template]] = {
        "target": free_target(
            "math word problems", "a final line of the form 'Answer: N' where N is the number alone"
        ),
        "extractor": free_extractor("number"),
    }
    example: ClassVar[dict[str, Any]] = {
        "question": "A box holds 12 pens. How many pens are in 5 boxes?",
        "answer": "60",
    }
    infer_rank = 10
    row_claim = "is a number"
    wrong_kind = "numbers"
    reply_tokens = (150, 270, 450)  # a guess: no corpus of worked-solution replies here
    lm_eval_measures = (
        "Numeric (`exact_match,final-number`): one greedy answer to the zero-shot "
        "`Question: ...\\nAnswer:` prompt, its final number compared as text by lm-eval's "
        "`exact_match` (gsm8k's conventions)."
    )

    def claims(self, answer: Any) -> bool:
        try:
            text = answer_text(answer)
        except InvalidRow:
            return False
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            return True
        final = text.rsplit("####", 1)[1].strip().split("\n")[0] if "####" in text else text
        return bool(_NUMBER_ALONE.fullmatch(final.strip())) and reference_number(text) is not None

    def reference(self, answer: Any) -> tuple[str, dict[str, Any]]:
        reference, solution = numeric_reference(answer)
        return reference, ({"solution": solution} if solution is not None else {})

    def read(self, reply: str | None) -> FreeReading:
        num = read_number(reply)
        return FreeReading(num.text if num.value is not None else None, num.reason, num.how)

    def is_right(self, answer: str | None, references: tuple[str, ...]) -> bool:
        if answer is None:
            return False
        got, want = parse_number(answer), reference_number(references[0])
        return got is not None and want is not None and same_number(got, want)

    def canonical(self, answer: str) -> str:
        value = parse_number(answer)
        return f"{value:.6g}" if value is not None else super().canonical(answer)

    def leaks(self, distraction: str, question: Question) -> bool:
        ref = question.answer_text
        return names_number(distraction, ref) and not names_number(question.question, ref)

    def near_misses(self, reference: str) -> list[str]:
        value = reference_number(reference)
        if value is None:
            return []
        slips = [value + 1, value - 1, value * 2, value / 2, value + 10, value * 10, value - 10]
        out: list[str] = []
        for v in slips:
            if value >= 0 > v or v == value:
                continue  # a negative count or the answer itself is no plausible slip
            text = f"{v:.4f}".rstrip("0").rstrip(".")
            if text not in out:
                out.append(text)
        return out

    def plain_answer(self, reference: str) -> str:
        value = reference_number(reference)
        if value is None or not math.isfinite(value):
            return reference
        text = format(Decimal(repr(float(value))).normalize(), "f")
        return "0" if text == "-0" else text

    def lm_eval(self) -> dict[str, Any]:
        return {
            "output_type": "generate_until",
            "doc_to_text": FREE_PROMPT,
            "doc_to_target": "answer",
            "generation_kwargs": {
                "until": ["Question:", "</s>", "<|im_end|>"],
                "do_sample": False,
                "temperature": 0.0,
            },
            "filter_list": [
                {
                    "name": NUMERIC_FILTER,
                    "filter": [
                        {"function": "regex", "regex_pattern": FINAL_NUMBER, "group_select": -1},
                        {"function": "take_first"},
                    ],
                }
            ],
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "ignore_case": True,
                    # Not True: it would drop the minus sign and the decimal point (-1.5 == 15).
                    "ignore_punctuation": False,
                    "regexes_to_ignore": NUMBER_NOISE,
                }
            ],
        }
