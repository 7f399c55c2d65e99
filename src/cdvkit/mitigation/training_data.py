"""Training data from a run's CDV examples, in the shapes TRL's SFTTrainer and DPOTrainer read.

Every CDV example (a distracted question the target got wrong) becomes one row:

- *chosen*: a correct answer to the distracted question. A stored reply that got it right is
  used when there is one (an evaluation answer, e.g. of the target under a defense or of a
  stronger model); otherwise a short rationale ending in ``Answer: X``, the final-answer line
  :func:`cdvkit.answers.read_answer` reads.
- *rejected* (DPO only): a wrong answer. The target's own stored wrong reply when there is one,
  else an answer naming the wrong option the distraction was written to push.

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
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.answers import read_answer
from cdvkit.data.question import LETTERS, MULTIPLE_CHOICE
from cdvkit.export.formats import example_rows
from cdvkit.mitigation.freeform import (
    STORED_REPLY_LIMIT,
    answer_key,
    constructed_free_chosen,
    constructed_free_rejected,
    free_target_messages,
    reference_text,
    stored_free_reply,
)
from cdvkit.models.hf_text import render_plain
from cdvkit.prompts import target_messages
from cdvkit.store import RunStore, check_writable_output
from cdvkit.tasks import AnswerKey

FORMATS = ("sft", "dpo")
RESPONSES = ("auto", "rationale", "short")
DEFAULT_DIRS = {"sft": "sft_data", "dpo": "dpo_data"}
TRAIN_FILE = "train.jsonl"
TEST_FILE = "test.jsonl"
TEST_EXAMPLES_FILE = "test_examples.jsonl"
TRAIN_EXAMPLES_FILE = "train_examples.jsonl"
MANIFEST_FILE = "split.json"


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
    chosen_from: str  # "stored:<model>" or "constructed"
    rejected_from: str
    task: str = MULTIPLE_CHOICE
    references: tuple[str, ...] = ()  # a free-form question's accepted answers, reference first

    @property
    def free_form(self) -> bool:
        return self.task != MULTIPLE_CHOICE


@dataclass
class TrainingExport:
    path: Path
    fmt: str
    train: int  # rows
    test: int
    train_questions: list[str] = field(default_factory=list)
    test_questions: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _stored_reply(reply: Any, choices: tuple[str, ...], index: int) -> str | None:
    """The reply when it is whole and its own final-answer line names choice ``index``.

    A reply read only through the extractor is left out: a model trained on it would learn an
    answer format cdvkit's parser cannot read.
    """
    if not isinstance(reply, str) or not reply.strip() or len(reply) >= STORED_REPLY_LIMIT:
        return None
    if read_answer(reply, choices).index != index:
        return None
    return reply.strip()


def _eval_answers(store: RunStore) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """Stored evaluation answers by (question id, variant key): [(model, answer), ...]."""
    out: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    try:
        # RunStore has no iterator over evaluation answers; this table is only read here.
        rows = store.db.execute("SELECT data FROM evaluations ORDER BY key").fetchall()
    except sqlite3.OperationalError:  # a run written before evaluations existed
        return out
    for (data,) in rows:
        d = json.loads(data)
        answers = (d.get("outputs") or {}).get("answers") or []
        key = (str(d.get("item")), str(d.get("variant")))
        out.setdefault(key, []).extend((str(d.get("model")), a) for a in answers)
    return out


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


def collect_pairs(
    store: RunStore, *, response: str = "auto", first_only: bool = False
) -> list[TrainingPair]:
    """One pair per CDV example of the run (the first per question with ``first_only``).

    ``response``: ``auto`` prefers stored replies and constructs a rationale only where none
    fits; ``rationale`` always constructs one; ``short`` uses the bare ``Answer: X`` line, which
    trains exactly the token that exact (log-prob) scoring reads.
    """
    if response not in RESPONSES:
        raise ValueError(f"unknown response style {response!r} (use {', '.join(RESPONSES)})")
    target = str((store.get_config() or {}).get("target") or "")
    nodes = {(n["question_id"], n["path"]): n for n in store.nodes(status="good")}
    evals = _eval_answers(store) if response == "auto" else {}
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
        chosen_from = rejected_from = "constructed"
        node = nodes.get((qid, ex["path"])) or {}
        own = [(target, a) for a in (node.get("outputs") or {}).get("answers") or []]
        if response == "auto":
            # The target's own wrong replies first: they are the behaviour to unlearn.
            evaluated = evals.get((qid, f"example:{ex['path']}"), [])
            # Among evaluation answers, the target's own (e.g. under a defense) come first.
            evaluated = sorted(evaluated, key=lambda ma: ma[0] != target)
            for model, a in [*own, *evaluated]:
                if chosen is None and a.get("correct"):
                    if key is None:
                        chosen = _stored_reply(a.get("reply"), choices, answer)
                    else:
                        chosen = stored_free_reply(a.get("reply"), key, right=True)
                    chosen_from = f"stored:{model}" if chosen else chosen_from
                elif rejected is None and not a.get("correct"):
                    if key is None and a.get("choice") is not None:
                        rejected = _stored_reply(a.get("reply"), choices, int(a["choice"]))
                    elif key is not None and a.get("answer") is not None:
                        rejected = stored_free_reply(
                            a.get("reply"), key, right=False, answer=a["answer"]
                        )
                    rejected_from = f"stored:{model}" if rejected else rejected_from
        if key is None:
            chosen = chosen or constructed_chosen(choices, answer, style)
            rejected = rejected or constructed_rejected(
                choices, answer, ex.get("target_option"), style
            )
        else:
            chosen = chosen or constructed_free_chosen(key, style)
            # Without a pushed answer, a wrong one the target gave serves (any reply length).
            others = [a.get("answer") for _, a in own if not a.get("correct")]
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
                chosen_from=chosen_from,
                rejected_from=rejected_from,
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
        "chosen_from": pair.chosen_from,
    }
    if fmt == "dpo":
        meta["rejected_from"] = pair.rejected_from
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


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


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
    with RunStore(run_dir, lock=False, readonly=True) as store:
        pairs = collect_pairs(store, response=response, first_only=first_only)
        examples = example_rows(store)
    if not pairs:
        raise ValueError(f"{run_dir} has no CDV example to train on")
    train_ids, test_ids = split_questions((p.question_id for p in pairs), test_share, seed)
    held_out = set(test_ids)
    out.mkdir(parents=True, exist_ok=True)
    train_rows = [pair_row(p, fmt, chat=chat) for p in pairs if p.question_id not in held_out]
    test_rows = [pair_row(p, fmt, chat=chat) for p in pairs if p.question_id in held_out]
    files = [out / TRAIN_FILE, out / TEST_FILE, out / TRAIN_EXAMPLES_FILE, out / TEST_EXAMPLES_FILE]
    n_train = _write_jsonl(files[0], train_rows)
    n_test = _write_jsonl(files[1], test_rows)
    _write_jsonl(files[2], (e for e in examples if str(e["question_id"]) not in held_out))
    _write_jsonl(files[3], (e for e in examples if str(e["question_id"]) in held_out))
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
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    files.append(out / MANIFEST_FILE)
    return TrainingExport(out, fmt, n_train, n_test, train_ids, test_ids, files)
