"""The protocol: how the target is asked a question and how its answer is read.

Search and evaluation share this one definition, so the numbers they print mean the same thing:

- a question is *originally correct* when the target answers it right under the protocol;
- a distracted question *fools* the target when the target answers it wrong under the protocol.

Two scorings exist. ``sample`` (the default, and the paper's): ``samples`` step-by-step answers
at a near-greedy temperature, read by :func:`cdvkit.answers.read_answer`; the question is answered
right when at least one answer is right, so it fools the target only when none is. ``exact``: the
argmax of the choice probabilities (backends with log-probs); ``threshold`` may make it stricter
(fooled only when P(correct) is also below it).

Whatever cheaper score guides a search, an example counts only once this protocol confirms it
(:mod:`cdvkit.search.goal`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from cdvkit.models.base import MCQ
from cdvkit.models.client import RoleClient
from cdvkit.outcome import Answer, Outcome, exact_outcome
from cdvkit.prompts import (
    TARGET_PROMPTS,
    MalformedJSON,
    extractor_request,
    read_choice_reply,
    read_verdict,
    reply_part,
    target_messages,
    target_request,
    target_template,
)
from cdvkit.prompts.templates import DEFAULT_PROMPTS, PromptSet
from cdvkit.tasks import AnswerKey, shape_of
from cdvkit.tasks.prompts import free_extractor_request, free_target_request, grader_request

SCORINGS = ("sample", "exact")
# "Near-zero temperature" in the paper: greedy in effect, yet a sampling request, so a backend
# that ignores temperature 0 or refuses n > 1 at temperature 0 still behaves.
NEAR_GREEDY = 0.01


@dataclass(frozen=True)
class Protocol:
    """How the target is asked (prompt, samples, temperature) and how "right" is decided.

    ``batch_samples``, ``sequential`` and ``always_extract`` change only how the requests are
    sent (one request with n samples or n requests; stop at the first right answer; send every
    reply to the extractor), never which questions count as right.
    """

    scoring: str = "sample"
    samples: int = 5
    temperature: float = NEAR_GREEDY
    prompt: str = "letter"
    threshold: float | None = None
    defense: str = ""
    batch_samples: bool = True
    sequential: bool = False
    always_extract: bool = False
    # The templates the target, the extractor and the grader are asked with, and how their
    # replies are read (cdvkit.prompts.templates); part of the protocol only when not the
    # defaults, so answers stored before templates existed keep their keys.
    prompts: PromptSet = DEFAULT_PROMPTS

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(
                f"the protocol's scoring must be sample or exact, not {self.scoring!r}"
            )
        if self.samples < 1:
            raise ValueError("--samples must be at least 1")
        if self.temperature < 0:
            raise ValueError("--temperature must be at least 0")
        if self.prompt not in TARGET_PROMPTS:
            raise ValueError(f"--target-prompt must be one of {', '.join(TARGET_PROMPTS)}")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise ValueError("--threshold must lie in (0, 1]")

    def describe(self, task: str | None = None) -> str:
        """One line for summaries and reports; ``task`` names the questions' shape (a free-form
        one says how its answers are read)."""
        if self.scoring == "exact":
            rule = "fooled when the most likely choice is wrong"
            if self.threshold is not None:
                rule += f" and P(correct) < {self.threshold:g}"
            return f"exact choice probabilities; {rule}"
        temp = "near-greedy" if self.temperature <= NEAR_GREEDY else f"T={self.temperature:g}"
        shape = shape_of(task) if task else None
        if shape is not None and not shape.has_choices:
            return (
                f"{self.samples} {temp} step-by-step answer(s), each read as a "
                f"{shape.answer_noun}; fooled when none is right"
            )
        return (
            f"{self.samples} {temp} step-by-step answer(s), {self.prompt} prompt; "
            "fooled when none is right"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["prompts"]
        if self.prompts != DEFAULT_PROMPTS:
            out["prompts"] = self.prompts.digest
        return out


class Asker:
    """Asks one model questions under a protocol: the only code that turns replies into
    right/wrong, for the search's target, its verification and every evaluated model."""

    def __init__(
        self,
        client: RoleClient,
        protocol: Protocol,
        *,
        extractor: RoleClient | None = None,
        grader: RoleClient | None = None,
    ) -> None:
        self.client = client
        self.protocol = protocol
        self.extractor = extractor
        self.grader = grader

    def with_client(self, client: RoleClient) -> Asker:
        return Asker(client, self.protocol, extractor=self.extractor, grader=self.grader)

    async def ask(
        self,
        question: str,
        choices: tuple[str, ...],
        answer: int,
        key: AnswerKey | None = None,
    ) -> Outcome:
        """The target's answer to one question; ``key`` marks a free-form one (no choices)."""
        if self.protocol.scoring == "exact":
            if key is not None:
                raise ValueError(
                    f"a {key.task} question has no choices to score exactly; use --protocol sample"
                )
            return await self.exact(question, choices, answer)
        return await self.sampled(question, choices, answer, key)

    # --- exact --------------------------------------------------------------------------------
    async def probs(self, question: str, choices: tuple[str, ...]) -> list[float]:
        # Exact scoring reads the answer letter's probability, so it always uses the letter
        # rendering whatever prompt the sampled answers use.
        msgs = target_messages(
            question, choices, defense=self.protocol.defense, prompts=self.protocol.prompts
        )
        return await self.client.choice_probs(msgs, MCQ(question, tuple(choices)))

    async def exact(self, question: str, choices: tuple[str, ...], answer: int) -> Outcome:
        probs = await self.probs(question, choices)
        return exact_outcome(probs, answer, self.protocol.threshold)

    # --- sampled ------------------------------------------------------------------------------
    async def sampled(
        self,
        question: str,
        choices: tuple[str, ...],
        answer: int,
        key: AnswerKey | None = None,
    ) -> Outcome:
        p = self.protocol
        if key is None:
            req = target_request(
                question,
                choices,
                temperature=p.temperature,
                defense=p.defense,
                prompt=p.prompt,
                prompts=p.prompts,
            )
        else:
            req = free_target_request(
                question, key.task, temperature=p.temperature, defense=p.defense, prompts=p.prompts
            )
        answers: list[Answer] = []
        for start, count in self._stages():
            replies = await self._replies(req, start, count)
            if key is None:
                read = [self._read(choices, answer, r) for r in replies]
            else:
                read = [self._read_free(key, r) for r in replies]
            extract = [
                i
                for i, a in enumerate(read)
                if self.extractor is not None and (self.protocol.always_extract or a.undecided)
            ]
            if extract:
                done = await asyncio.gather(
                    *(
                        self._extract(question, choices, answer, read[i], start + i)
                        if key is None
                        else self._extract_free(question, key, read[i], start + i)
                        for i in extract
                    )
                )
                for i, a in zip(extract, done, strict=True):
                    read[i] = a
            if key is not None and self.grader is not None:
                grade = [i for i, a in enumerate(read) if _gradable(key, a)]
                done = await asyncio.gather(*(self._grade(question, key, read[i]) for i in grade))
                for i, a in zip(grade, done, strict=True):
                    read[i] = a
            answers += read
            if p.sequential and any(a.correct for a in answers):
                break  # one right answer decides the outcome; the rest would not change it
        right = sum(a.correct for a in answers)
        if p.sequential and right:
            # Sampling stopped at a right answer: the posterior mean keeps the search's priority
            # informative without paying for the remaining samples.
            return Outcome(True, (right + 1) / (len(answers) + 2), "sample", answers)
        return Outcome(right > 0, right / len(answers), "sample", answers)

    def _stages(self) -> list[tuple[int, int]]:
        """(first sample, count) of each request.

        Without ``sequential`` all samples go together (one request, or one per sample without
        ``batch_samples``). With it the first sample goes alone, since most questions are
        answered right at once; the rest follow in one request, or one at a time.
        """
        n = self.protocol.samples
        if not self.protocol.sequential:
            return [(0, n)]
        if n == 1:
            return [(0, 1)]
        if self.protocol.batch_samples:
            return [(0, 1), (1, n - 1)]
        return [(i, 1) for i in range(n)]

    async def _replies(self, req: Any, start: int, count: int) -> list[str]:
        if self.protocol.batch_samples or count == 1:
            return await self.client.samples(req, start, count)
        # One request per sample, all in flight together (the reference's pattern).
        batches = await asyncio.gather(
            *(self.client.samples(req, start + i, 1) for i in range(count))
        )
        return [b[0] for b in batches]

    def _read(self, choices: tuple[str, ...], answer: int, reply: str) -> Answer:
        spec = self.protocol.prompts[target_template(self.protocol.prompt)].reply
        reading = read_choice_reply(spec, reply, choices)
        index = reading.index
        return Answer(
            correct=index == answer,
            status="ok" if index is not None else _STATUS[reading.reason],
            reply=reply,
            choice=index,
            undecided=index is None and reading.reason in ("no answer", "ambiguous"),
        )

    async def _extract(
        self, question: str, choices: tuple[str, ...], answer: int, a: Answer, sample: int
    ) -> Answer:
        """The extractor's reading of a reply the local reader could not decide (or of every
        reply, with ``always_extract``)."""
        assert self.extractor is not None
        # Identical unreadable replies share one extraction (sample 0), so none is paid twice;
        # the reference pays one extraction per answer, which the sample index reproduces.
        p = self.protocol
        ext = await self.extractor.complete(
            extractor_request(question, choices, a.reply, prompt=p.prompt, prompts=p.prompts),
            sample=sample if p.always_extract else 0,
        )
        via = read_choice_reply(p.prompts[f"extractor.{p.prompt}"].reply, ext, choices).index
        if via is not None and via != a.choice:
            return a.settled("extracted", via == answer, choice=via)
        return a

    async def _extract_free(self, question: str, key: AnswerKey, a: Answer, sample: int) -> Answer:
        """The extractor's reading of a free-form reply the shape's reader could not decide."""
        assert self.extractor is not None
        p = self.protocol
        ext = await self.extractor.complete(
            free_extractor_request(question, key.task, a.reply, prompts=p.prompts),
            sample=sample if p.always_extract else 0,
        )
        spec = p.prompts[key.shape.template("extractor")].reply
        via = key.read(_reply_part(spec, ext)).answer
        if via is not None and via != a.answer:
            return a.settled("extracted", key.is_right(via), answer=via)
        return a

    async def _grade(self, question: str, key: AnswerKey, a: Answer) -> Answer:
        """The grader's verdict on a reply the readers could not settle (see ``_gradable``).

        A verdict that is not JSON with a true/false ``correct`` leaves the reading as it was:
        an unread reply stays wrong, never a guess."""
        assert self.grader is not None
        prompts = self.protocol.prompts
        reply = await self.grader.complete(
            grader_request(question, key.references, a.reply, task=key.task, prompts=prompts)
        )
        try:
            verdict, _ = read_verdict(prompts[key.shape.template("grader")].reply, reply)
        except (MalformedJSON, KeyError, ValueError):
            return a
        return a.settled("graded", verdict)

    def _read_free(self, key: AnswerKey, reply: str) -> Answer:
        spec = self.protocol.prompts[key.shape.template("target")].reply
        return _read_free(key, reply, _reply_part(spec, reply))


# What a reply the reader could not map to a choice is recorded as (it counts as wrong).
_STATUS = {"no answer": "unparsed", "ambiguous": "ambiguous", "outside": "outside"}


def _reply_part(spec: Any, reply: str) -> str:
    """The part of a free-form reply its template says holds the answer (a prompts file's JSON
    key or prefix); the shape's reader finds the answer in the whole reply otherwise."""
    part = reply_part(spec, reply)
    if spec.format == "json":
        return part or ""
    return part if part and part.strip() else reply


def _read_free(key: AnswerKey, reply: str, part: str | None = None) -> Answer:
    reading = key.read(reply if part is None else part)
    status = "ok" if reading.answer is not None else _FREE_STATUS.get(reading.reason, "unparsed")
    return Answer(
        correct=key.is_right(reading.answer),
        status=status,
        reply=reply,
        free=True,
        answer=reading.answer,
        undecided=reading.answer is None and reading.reason != "refused",
    )


_FREE_STATUS = {"no answer": "unparsed", "ambiguous": "ambiguous", "refused": "refused"}


def _gradable(key: AnswerKey, a: Answer) -> bool:
    """Replies the grader decides: those no reader could read, and answers of a shape whose
    matching is fuzzy (a short answer that matches no listed alias: an alias list is never
    complete, "JFK" for "John F. Kennedy")."""
    if a.correct or a.status == "refused":
        return False
    return a.answer is None or key.shape.grade_read_answers


def protocol_from_config(cfg: Any) -> Protocol:
    """The protocol a run's settings (a search config or its stored dict) define."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    return Protocol(
        scoring=get("protocol", "sample") or "sample",
        samples=int(get("samples", 5) or 5),
        temperature=float(get("temperature", NEAR_GREEDY)),
        prompt=get("target_prompt", "letter") or "letter",
        threshold=get("threshold", None),
        batch_samples=bool(get("batch_samples", True)),
        sequential=bool(get("sequential", False)),
        always_extract=bool(get("always_extract", False)),
        prompts=prompts_from_config(cfg),
    )


def prompts_from_config(cfg: Any) -> PromptSet:
    """The templates a run's settings (a search config or its stored dict) define."""
    from cdvkit.prompts.templates import prompt_set

    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    return prompt_set(get("prompts", None) or None, get("max_tokens", None) or None)


__all__ = [
    "NEAR_GREEDY",
    "SCORINGS",
    "Answer",
    "Asker",
    "Outcome",
    "Protocol",
    "exact_outcome",
    "protocol_from_config",
]
