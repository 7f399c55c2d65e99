"""The requests one question's search sends, rendered as they will be sent, for the forecast.

The forecast counts a request's prompt tokens from its rendered text, so a long question, a
prompts file or the paper's layout all show in the price; this module renders one request per
role the way the search's parts build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdvkit.data.question import Question
from cdvkit.models.base import GenerateRequest
from cdvkit.prompts import judge_request, proposer_batch_request, proposer_request, target_request
from cdvkit.search.build import proposer_style
from cdvkit.tasks.prompts import (
    free_judge_request,
    free_proposer_batch_request,
    free_proposer_request,
    free_target_request,
)


@dataclass(frozen=True)
class QuestionRequests:
    target: GenerateRequest
    proposer: GenerateRequest
    judge: GenerateRequest
    # One proposer call covers every wrong answer of an expansion (a batch, or free-form).
    batched: bool


def question_requests(q: Question, cfg: Any, branching: int) -> QuestionRequests:
    """A target, a proposer and a judge request for ``q`` under the settings ``cfg``."""
    prompts, jp = cfg.prompt_set(), cfg.judge_prompt
    batch, proposer_prompt = proposer_style(cfg)
    if q.free_form:
        ref = q.answer_text
        if batch:
            proposer = free_proposer_batch_request(
                q.question, ref, [ref] * branching, task=q.task, prompts=prompts
            )
        else:
            proposer = free_proposer_request(q.question, ref, ref, task=q.task, prompts=prompts)
        return QuestionRequests(
            free_target_request(q.question, q.task, temperature=cfg.temperature, prompts=prompts),
            proposer,
            free_judge_request(
                q.question, ref, q.question, task=q.task, prompt=jp, prompts=prompts
            ),
            batch,
        )
    target = target_request(
        q.question,
        q.choices,
        temperature=cfg.temperature,
        prompt=cfg.target_prompt,
        prompts=prompts,
    )
    judge = judge_request(q.question, q.choices, q.answer, q.question, prompt=jp, prompts=prompts)
    if batch:
        wrong = [i for i in range(len(q.choices)) if i != q.answer]
        proposer = proposer_batch_request(q.question, q.choices, q.answer, wrong, prompts=prompts)
        return QuestionRequests(target, proposer, judge, True)
    proposer = proposer_request(
        q.question,
        q.choices,
        q.answer,
        (q.answer + 1) % len(q.choices),
        prompt=proposer_prompt,
        prompts=prompts,
    )
    return QuestionRequests(target, proposer, judge, False)
