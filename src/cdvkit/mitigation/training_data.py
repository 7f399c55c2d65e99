"""Training data from a run's CDV examples, in the shapes TRL's SFTTrainer and DPOTrainer read.

Every CDV example (a distracted question the target got wrong) becomes one row:

- *chosen*: a correct answer to the distracted question. A stored reply that got it right is
  used when there is one: the target's own, else an evaluation answer (e.g. of the target under a
  defense or of a stronger model, from ``cdv evaluate``); otherwise a short rationale ending in
  ``Answer: X``, the final-answer line :func:`cdvkit.answers.read_answer` reads.
- *rejected* (DPO only): a wrong answer, and only ever the TARGET's: one of its own wrong replies
  to the example under the protocol (the search's answers to the node, read back whole from the
  run's call cache), else a constructed answer naming the wrong option the distraction was
  written to push. A reply of any other model (an evaluated model, a defense, the extractor) is
  never a rejected answer: DPO would then push down behaviour the target never had.

Each row says where its answers came from (``chosen_source``: ``target``,
``evaluated:<model>`` or ``constructed``; ``rejected_source``: ``target`` or ``constructed``),
and the export counts them (:attr:`TrainingExport.sources`, ``split.json``).

Prompts are :func:`cdvkit.prompts.target_messages`, the messages the ``hf/`` backend (and every
other backend) sends the target, so a model is trained on exactly what it is evaluated on.
Free-form examples (numeric, short answer; :mod:`cdvkit.mitigation.freeform`) get the free-form
target prompt instead, with answers ending in ``Answer: <text>`` that their
:class:`cdvkit.tasks.AnswerKey` reads: the reference for *chosen*, the wrong answer the
distraction pushed for a constructed *rejected*. The
plain-string form renders them as the ``hf/`` backend does for a tokenizer without a chat
template; the conversational form (``chat=True``) leaves the rendering to the model's chat
template, as the ``hf/`` backend does for chat models.

Rows are split by ORIGINAL question: every example of a question lands on the same side, so no
question the model was trained on (in any distracted form) is in the test split.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.answers import read_answer
from cdvkit.data.question import LETTERS, MULTIPLE_CHOICE
from cdvkit.export.formats import example_rows
from cdvkit.mitigation.freeform import (
    answer_key,
    constructed_free_chosen,
    constructed_free_rejected,
    free_target_messages,
    reference_text,
    stored_free_reply,
)
from cdvkit.mitigation.replies import (
    EVAL_ROLES,
    TARGET_ROLES,
    WholeReplies,
    eval_answers,
    target_answers,
)
from cdvkit.models.hf_text import render_plain
from cdvkit.prompts import target_messages
from cdvkit.store import RunStore, check_writable_output
from cdvkit.store.outputs import atomic_folder, check_output, jsonl_lines
from cdvkit.tasks import AnswerKey

FORMATS = ("sft", "dpo")
RESPONSES = ("auto", "rationale", "short")
DEFAULT_DIRS = {"sft": "sft_data", "dpo": "dpo_data"}
TRAIN_FILE = "train.jsonl"
TEST_FILE = "test.jsonl"
TEST_EXAMPLES_FILE = "test_examples.jsonl"
TRAIN_EXAMPLES_FILE = "train_examples.jsonl"
MANIFEST_FILE = "split.json"

# Where a row's answer came from (``chosen_source`` / ``rejected_source``).
FROM_TARGET = "target"
CONSTRUCTED = "constructed"
EVALUATED = "evaluated:"  # followed by the evaluated model's name


@dataclass(frozen=True)
class TrainingPair:
    """One distracted question with a correct and a wrong answer to it."""

    question_id: str
    example: str  # the node path of the CDV example within its question's tree
    source: str
    question: str
    choices: tuple[str, ...]  # () for a free-form question
    answer: int  # -1 for a free-form question
    chosen: str
    rejected: str
    chosen_source: str  # "target", "evaluated:<model>" or "constructed"
    rejected_source: str  # "target" or "constructed"
    task: str = MULTIPLE_CHOICE
    references: tuple[str, ...] = ()  # a free-form question's accepted answers, reference first

    @property
    def free_form(self) -> bool:
        return not self.choices


@dataclass
class TrainingExport:
    path: Path
    fmt: str
    train: int  # rows
    test: int
    train_questions: list[str] = field(default_factory=list)
    test_questions: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # Rows (train and test) by where their answers came from: {"chosen": {source: rows}, and for
    # DPO "rejected": {"target": rows, "constructed": rows}}.
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    response: str = "auto"

    def summary(self) -> list[str]:
        """Where the rows' answers came from, one line per answer kind, for the CLI."""
        lines = []
        rejected = self.sources.get("rejected")
        if rejected is not None:
            why = (
                f"--response {self.response}"
                if self.response != "auto"
                else "the target left no wrong reply that reads as its answer"
            )
            made = rejected.get(CONSTRUCTED, 0)
            lines.append(
                f"rejected: {rejected.get(FROM_TARGET, 0)} row(s) with the target's own wrong "
                f"reply, {made} constructed" + (f" ({why})" if made else "")
            )
        chosen = self.sources.get("chosen") or {}
        evaluated = {k[len(EVALUATED) :]: n for k, n in chosen.items() if k.startswith(EVALUATED)}
        by_model = ", ".join(f"{m} {n}" for m, n in sorted(evaluated.items()))
        lines.append(
            f"chosen: {chosen.get(FROM_TARGET, 0)} row(s) with the target's own right reply, "
            f"{sum(evaluated.values())} with an evaluated model's right reply"
            + (f" ({by_model})" if by_model else "")
            + f", {chosen.get(CONSTRUCTED, 0)} constructed"
        )
        return lines


def source_counts(pairs: Iterable[TrainingPair], fmt: str) -> dict[str, dict[str, int]]:
    """Rows by answer source: every source label with its count; rejected only for DPO."""
    pairs = list(pairs)
    out: dict[str, dict[str, int]] = {
        "chosen": dict(sorted(Counter(p.chosen_source for p in pairs).items()))
    }
    if fmt == "dpo":
        rejected = Counter(p.rejected_source for p in pairs)
        out["rejected"] = {FROM_TARGET: rejected[FROM_TARGET], CONSTRUCTED: rejected[CONSTRUCTED]}
    return out


def _stored_reply(reply: str | None, choices: tuple[str, ...], index: int) -> str | None:
    """The (whole) reply when its own final-answer line names choice ``index``.

    A reply read only through the extractor is left out: a model trained on it would learn an
    answer format cdvkit's parser cannot read.
    """
    if reply is None or not reply.strip():
        return None
    if read_answer(reply, choices).index != index:
        return None
    return reply.strip()


def constructed_chosen(choices: tuple[str, ...], answer: int, style: str = "rationale") -> str:
    letter = LETTERS[answer]
    if style == "short":
        return f"Answer: {letter}"
    return (
        "Some details in the question are not needed to answer it, so I set them aside and "
        f'answer what is actually asked. The correct choice is "{choices[answer]}".\n'
        f"Answer: {letter}"
    )


def constructed_rejected(
    choices: tuple[str, ...], answer: int, target_option: str | None, style: str = "rationale"
) -> str:
    """A wrong answer naming the option the distraction pushed (any wrong one if unknown)."""
    wrong = [i for i in range(len(choices)) if i != answer]
    index = next((i for i in wrong if choices[i] == target_option), wrong[0])
    if style == "short":
        return f"Answer: {LETTERS[index]}"
    return (
        f'Taking the context of the question into account, the answer is "{choices[index]}".\n'
        f"Answer: {LETTERS[index]}"
    )


def _usable(
    a: dict[str, Any], text: str | None, right: bool, choices: tuple[str, ...], key: Any
) -> str | None:
    """``text`` (an answer's whole reply) when it is one to train on as a right (``right``) or
    wrong answer: it reads, by itself, as the answer the run recorded for it."""
    if text is None or bool(a.get("correct")) != right:
        return None
    if key is None:
        index = a.get("choice")
        return None if index is None else _stored_reply(text, choices, int(index))
    if not right and a.get("answer") is None:
        return None
    return stored_free_reply(
        text, key, right=right, answer=None if right else a["answer"], whole=True
    )


def collect_pairs(
    store: RunStore, *, response: str = "auto", first_only: bool = False
) -> list[TrainingPair]:
    """One pair per CDV example of the run (the first per question with ``first_only``).

    ``response``: ``auto`` prefers stored replies and constructs an answer only where none fits;
    ``rationale`` always constructs one; ``short`` uses the bare ``Answer: X`` line, which trains
    exactly the token that exact (log-prob) scoring reads. A rejected reply is the target's own
    or constructed, never another model's (see the module's docstring).
    """
    if response not in RESPONSES:
        raise ValueError(f"unknown response style {response!r} (use {', '.join(RESPONSES)})")
    target = str((store.get_config() or {}).get("target") or "")
    nodes = {(n["question_id"], n["path"]): n for n in store.nodes(status="good")}
    evals = eval_answers(store) if response == "auto" else {}
    whole = WholeReplies(store)
    pairs: list[TrainingPair] = []
    seen: set[str] = set()
    for ex in store.examples():
        qid = str(ex["question_id"])
        if first_only and qid in seen:
            continue
        seen.add(qid)
        choices = tuple(ex["choices"])
        answer = int(ex["answer"])
        key = answer_key(ex)
        style = "short" if response == "short" else "rationale"
        chosen = rejected = None
        chosen_source = rejected_source = CONSTRUCTED
        own = target_answers(nodes.get((qid, ex["path"])) or {})
        if response == "auto":
            question = str(ex["question"])
            # The target's own wrong replies: the behaviour to unlearn, and the only rejected
            # answers there are. An answer's place in the list is its sample's index.
            for i, a in enumerate(own):
                if a.get("correct"):
                    continue
                text = whole.find(qid, question, target, TARGET_ROLES, a.get("reply"), i)
                rejected = _usable(a, text, False, choices, key)
                if rejected is not None:
                    rejected_source = FROM_TARGET
                    break
            # A right answer: the target's own first (none when every sample fooled it), then
            # evaluation answers, the target's (e.g. under a defense) before other models'.
            evaluated = evals.get((qid, f"example:{ex['path']}"), [])
            evaluated = sorted(evaluated, key=lambda ma: ma[0] != target)
            candidates = [
                *((FROM_TARGET, target, TARGET_ROLES, i, a) for i, a in enumerate(own)),
                *((f"{EVALUATED}{m}", m, EVAL_ROLES, None, a) for m, a in evaluated),
            ]
            for label, model, roles, sample, a in candidates:
                if not a.get("correct"):
                    continue
                text = whole.find(qid, question, model, roles, a.get("reply"), sample)
                chosen = _usable(a, text, True, choices, key)
                if chosen is not None:
                    chosen_source = label
                    break
        if key is None:
            chosen = chosen or constructed_chosen(choices, answer, style)
            rejected = rejected or constructed_rejected(
                choices, answer, ex.get("target_option"), style
            )
        else:
            chosen = chosen or constructed_free_chosen(key, style)
            # Without a pushed answer, a wrong one the target gave serves (any reply length).
            others = [a.get("answer") for a in own if not a.get("correct")]
            rejected = rejected or constructed_free_rejected(
                key, ex.get("target_option"), style, others
            )
        pairs.append(
            TrainingPair(
                question_id=qid,
                example=str(ex["path"]),
                source=str(ex.get("source") or ""),
                question=ex["question"],
                choices=choices,
                answer=answer,
                chosen=chosen,
                rejected=rejected,
                chosen_source=chosen_source,
                rejected_source=rejected_source,
                task=key.task if key else MULTIPLE_CHOICE,
                references=key.references if key else (),
            )
        )
    return pairs


def split_questions(
    question_ids: Iterable[str], test_share: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Seeded split of ORIGINAL question ids into (train, test).

    The ids are sorted before shuffling so the split depends on the set of questions and the
    seed only, not on the order the search finished them in. With two or more questions and a
    positive share, each side gets at least one.
    """
    if not 0 <= test_share < 1:
        raise ValueError("--test-share must be at least 0 and below 1")
    ids = sorted(set(question_ids))
    random.Random(seed).shuffle(ids)
    n_test = round(len(ids) * test_share)
    if test_share > 0 and len(ids) >= 2:
        n_test = min(max(n_test, 1), len(ids) - 1)
    return sorted(ids[n_test:]), sorted(ids[:n_test])


def pair_row(pair: TrainingPair, fmt: str, *, chat: bool = False) -> dict[str, Any]:
    """A TRL row for one pair, with the question id and example path kept for tracing.

    TRL's trainers drop columns they do not use, so the extra keys are harmless to them.
    """
    if pair.free_form:
        key = AnswerKey(pair.task, pair.references)
        messages = free_target_messages(pair.question, pair.task)
        # The answer a right reply ends in, and the task (multiple-choice rows have no "task").
        meta: dict[str, Any] = {
            "answer": reference_text(key),
            "task": pair.task,
            "references": list(pair.references),
        }
    else:
        messages = target_messages(pair.question, pair.choices)
        meta = {"answer": LETTERS[pair.answer]}
    meta = {
        "question_id": pair.question_id,
        "example": pair.example,
        **meta,
        "chosen_source": pair.chosen_source,
    }
    if fmt == "dpo":
        meta["rejected_source"] = pair.rejected_source
    if chat:
        prompt: Any = [dict(m) for m in messages]
        if fmt == "sft":
            return {
                "messages": [*prompt, {"role": "assistant", "content": pair.chosen}],
                **meta,
            }
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
            **meta,
        }
    # render_plain ends with "assistant:"; the reply follows after a space, as the hf/ backend
    # reads "assistant: Answer: A" when it scores choices.
    prompt = render_plain(messages)
    if fmt == "sft":
        return {"prompt": prompt, "completion": f" {pair.chosen}", **meta}
    return {"prompt": prompt, "chosen": f" {pair.chosen}", "rejected": f" {pair.rejected}", **meta}


def export_training(
    run_dir: str | Path,
    fmt: str,
    output: str | Path | None = None,
    *,
    chat: bool = False,
    test_share: float = 0.2,
    seed: int = 0,
    response: str = "auto",
    first_only: bool = False,
) -> TrainingExport:
    """Write ``train.jsonl`` and ``test.jsonl`` (TRL rows) and ``test_examples.jsonl`` (the
    held-out questions' CDV examples, for ``cdv evaluate --examples``) into ``output``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown training format {fmt!r} (use {', '.join(FORMATS)})")
    out = Path(output) if output else Path(run_dir) / DEFAULT_DIRS[fmt]
    if not output:
        check_writable_output(out, run_dir, "pass -o/--output to export elsewhere")
    # Refused before anything is read: an output on a run store, or inside another run.
    check_output(out, run=run_dir, folder=True)
    with RunStore(run_dir, lock=False, readonly=True) as store:
        return write_training(store, out, fmt, chat, test_share, seed, response, first_only)


def write_training(
    store: RunStore,
    out: Path,
    fmt: str,
    chat: bool = False,
    test_share: float = 0.2,
    seed: int = 0,
    response: str = "auto",
    first_only: bool = False,
) -> TrainingExport:
    """``export_training`` from an open store to a checked ``out`` (the sft and dpo export
    formats' writer, cdvkit.mitigation.formats)."""
    run_dir = store.run_dir
    pairs = collect_pairs(store, response=response, first_only=first_only)
    examples = example_rows(store)
    if not pairs:
        raise ValueError(f"{run_dir} has no CDV example to train on")
    train_ids, test_ids = split_questions((p.question_id for p in pairs), test_share, seed)
    held_out = set(test_ids)
    sources = source_counts(pairs, fmt)
    train_rows = [pair_row(p, fmt, chat=chat) for p in pairs if p.question_id not in held_out]
    test_rows = [pair_row(p, fmt, chat=chat) for p in pairs if p.question_id in held_out]
    names = [TRAIN_FILE, TEST_FILE, TRAIN_EXAMPLES_FILE, TEST_EXAMPLES_FILE, MANIFEST_FILE]
    # Built in a temporary sibling folder that becomes ``out`` at the end: whole or absent.
    with atomic_folder(out, run=run_dir) as tmp:
        n_train = jsonl_lines(tmp / TRAIN_FILE, train_rows)
        n_test = jsonl_lines(tmp / TEST_FILE, test_rows)
        jsonl_lines(
            tmp / TRAIN_EXAMPLES_FILE,
            (e for e in examples if str(e["question_id"]) not in held_out),
        )
        jsonl_lines(
            tmp / TEST_EXAMPLES_FILE, (e for e in examples if str(e["question_id"]) in held_out)
        )
        manifest = {
            "format": fmt,
            "chat": chat,
            "response": response,
            "first_only": first_only,
            "seed": seed,
            "test_share": test_share,
            "run": str(Path(run_dir).resolve()),
            "train_rows": n_train,
            "test_rows": n_test,
            "train_questions": train_ids,
            "test_questions": test_ids,
            # Rows by where their answers came from: "target" (its own reply under the
            # protocol), "evaluated:<model>" (chosen only) or "constructed".
            "sources": sources,
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    files = [out / name for name in names]
    return TrainingExport(out, fmt, n_train, n_test, train_ids, test_ids, files, sources, response)
