"""Training pairs for free-form questions (numeric and short answers).

A free-form CDV example has no choices: the target is asked the bare question under the
free-form system prompt (:func:`cdvkit.tasks.prompts.free_target_request`) and its reply ends
in ``Answer: <text>``, which :class:`cdvkit.tasks.AnswerKey` reads and judges. Here are that
prompt as messages, the stored replies that may serve as chosen / rejected answers, and the
constructed answers used where no stored reply fits. Every chosen answer is one the answer key
reads as right; every rejected one is read as wrong (or not read at all). As for multiple
choice, a stored rejected answer is only ever the target's own reply under the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cdvkit.models.base import Message
from cdvkit.outcome import STORED_REPLY_CHARS
from cdvkit.tasks import AnswerKey, row_task, shape_of
from cdvkit.tasks.prompts import free_target_request

# Nodes and evaluations keep the last 300 characters of a reply; a reply that long may have lost
# its beginning, and a rationale cut mid-sentence is no answer to train on. The whole reply is
# read back from the run's call cache (cdvkit.mitigation.training_data) when it is there.
STORED_REPLY_LIMIT = STORED_REPLY_CHARS
SET_ASIDE = (
    "Some details in the question are not needed to answer it, so I set them aside and answer "
    "what is actually asked."
)


def free_target_messages(question: str, task: str, *, defense: str = "") -> list[Message]:
    """The messages every backend sends the target for a free-form question (the sampled
    request's messages; temperature and length do not change them)."""
    return free_target_request(question, task, temperature=0.0, defense=defense).message_dicts


def answer_key(example: Mapping[str, Any]) -> AnswerKey | None:
    """The answer key of a free-form example row; None for multiple choice."""
    task = row_task(example)
    if shape_of(task).has_choices:
        return None
    refs = tuple(str(r) for r in example.get("references") or () if str(r).strip())
    return AnswerKey(task, refs or (str(example["answer_text"]),))


def stored_free_reply(
    reply: Any, key: AnswerKey, *, right: bool, answer: Any = None, whole: bool = False
) -> str | None:
    """The reply when it is whole and its own final answer is right (``right``) or wrong.

    ``whole``: the text is known to be the entire reply (read back from the run's call cache), so
    its length says nothing; otherwise it is a stored tail, whole only when shorter than the
    limit. A wrong reply must also read as the ``answer`` the run recorded for it, when given: a
    reply read only through the extractor or the grader is left out, since a model trained on it
    would learn an answer format the answer key cannot read.
    """
    if not isinstance(reply, str) or not reply.strip():
        return None
    if not whole and len(reply) >= STORED_REPLY_LIMIT:
        return None
    read = key.read(reply).answer
    if read is None or key.is_right(read) != right:
        return None
    if answer is not None and key.canonical(read) != key.canonical(str(answer)):
        return None
    return reply.strip()


def reference_text(key: AnswerKey) -> str:
    """The reference as the final answer line wants it: for numeric questions the number alone
    (the prompt asks for "the number alone", so "$1,080" becomes "1080"), else as written."""
    ref = key.reference.strip()
    plain = key.shape.plain_answer(ref)
    if plain != ref and key.is_right(key.read(f"Answer: {plain}").answer):
        return plain
    return ref


def constructed_free_chosen(key: AnswerKey, style: str = "rationale") -> str:
    """A right answer ending in ``Answer: <reference>``."""
    line = f"Answer: {reference_text(key)}"
    return line if style == "short" else f"{SET_ASIDE}\n{line}"


def wrong_free_answer(key: AnswerKey, candidates: Iterable[Any]) -> str | None:
    """The first candidate the answer key reads back as a wrong answer; with none, the first of
    the shape's near misses that does (a number's: the reference plus one)."""
    for c in candidates:
        if isinstance(c, str | int | float) and not isinstance(c, bool) and str(c).strip():
            text = " ".join(str(c).split())
            read = key.read(f"Answer: {text}").answer
            if read is not None and not key.is_right(read):
                return text
    for near in key.shape.near_misses(key.reference):
        read = key.read(f"Answer: {near}").answer
        if read is not None and not key.is_right(read):
            return near
    return None


def constructed_free_rejected(
    key: AnswerKey,
    target_option: str | None,
    style: str = "rationale",
    others: Iterable[Any] = (),
) -> str:
    """A wrong answer naming the one the distraction pushed (``target_option``), else another
    wrong answer the run saw (``others``), else a near miss. A short-answer question with none
    of them gets a reply that gives no answer, which counts as wrong."""
    wrong = wrong_free_answer(key, [target_option, *others])
    if wrong is None:
        return "The context makes this unclear, so I cannot give a final answer."
    if style == "short":
        return f"Answer: {wrong}"
    return (
        f"Taking the context of the question into account, the answer is {wrong}.\nAnswer: {wrong}"
    )
