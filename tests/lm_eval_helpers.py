"""Drive an exported lm-eval task offline, and `cdv evaluate` on the same scripted replies.

A *script* answers chat messages: ``reply(messages, sample) -> str`` for generated answers and
``probs(messages) -> list[float]`` for choice probabilities. The same script drives lm-eval's
model (which gets the messages as JSON through ``--apply_chat_template``) and cdvkit's scripted
backend, so the two accuracies can be compared number for number.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

Messages = list[dict[str, str]]
Reply = Callable[[Messages, int], str]
Probs = Callable[[Messages], list[float]]

MODEL = "scripted/lm-eval-twin"


def chat_lm(reply: Reply | None = None, probs: Probs | None = None) -> Any:
    """An lm-eval model answering from the script. It records every request it gets
    (``seen``: messages and generation settings), and numbers the copies lm-eval's ``repeats``
    sends of one prompt 0, 1, ... as cdvkit numbers a request's samples."""
    from lm_eval.api.model import LM

    class ScriptedChat(LM):
        tokenizer_name = "scripted-chat"

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[Messages, dict[str, Any]]] = []

        def apply_chat_template(self, chat_history: Messages, add_generation_prompt=True) -> str:
            return json.dumps(chat_history)

        def generate_until(self, requests):
            assert reply is not None
            sample: Counter[str] = Counter()
            out = []
            for r in requests:
                context, settings = r.args
                messages = json.loads(context)
                self.seen.append((messages, settings))
                out.append(reply(messages, sample[context]))
                sample[context] += 1
            return out

        def loglikelihood(self, requests):
            assert probs is not None
            out = []
            for r in requests:
                context, continuation = r.args
                messages = json.loads(context)
                # The scored letter follows the assistant's "Answer:" prefix.
                assert messages[-1] == {"role": "assistant", "content": "Answer:"}, messages
                letter = "ABCDEFGHIJ".index(continuation.strip())
                out.append((math.log(probs(messages[:-1])[letter]), False))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

    return ScriptedChat()


def lm_eval_results(folder: Path, tag: str, lm: Any) -> dict[str, dict[str, Any]]:
    """lm-eval's results of the tasks tagged ``tag`` in ``folder``, asked as chat messages."""
    from lm_eval.evaluator import evaluate as lm_evaluate
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm-eval").setLevel(logging.WARNING)
    tm = TaskManager(include_path=str(folder), include_defaults=False)
    return lm_evaluate(
        lm=lm,
        task_dict=tm.load([tag]),
        bootstrap_iters=0,
        log_samples=False,
        apply_chat_template=True,
    )["results"]


async def cdv_evaluate(
    store: Any, settings: Any, reply: Reply | None = None, probs: Probs | None = None
) -> dict[str, Any]:
    """``cdv evaluate``'s overall paired result for a scripted model answering from the script,
    on the run in ``store`` (nothing is written)."""
    from cdvkit.evaluation import evaluate, from_store
    from cdvkit.models.scripted import ScriptedModel

    model = ScriptedModel(
        MODEL,
        responder=(lambda req, i: reply(req.message_dicts, i)) if reply else None,
        probs_fn=(lambda messages, mcq: probs(list(messages))) if probs else None,
    )
    es = from_store(store)
    res = await evaluate([es], [MODEL], store=None, backends={MODEL: model}, settings=settings)
    return res["results"][es.label][MODEL]["overall"]


def by_user_message(table: dict[str, Any]) -> Callable[[Messages], Any]:
    """Looks a question up by its user message: a prompt cdvkit would not send finds nothing."""

    def find(messages: Messages) -> Any:
        (user,) = [m["content"] for m in messages if m["role"] == "user"]
        return table[user]

    return find


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def load_task_yaml(path: Path) -> dict[str, Any]:
    """A task's YAML as lm-eval reads it, a ``!function name`` tag kept as that text."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: f"!function {node.value}")
    return yaml.load(path.read_text(), Loader=Loader)
