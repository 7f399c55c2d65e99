"""Deterministic backend for tests and dry runs, driven by a Python callable or a rules file.

A rules file (JSON) looks like::

    {"rules": [{"contains": "DISTRACTOR", "reply": "Answer: B"},
               {"regex": "capital of", "replies": ["Answer: A", "Answer: C"]}],
     "default": "Answer: A",
     "probs_default": [0.7, 0.2, 0.1],
     "delay": 0.0,
     "log": "calls.jsonl"}

The first rule whose ``contains``/``regex`` matches the whole prompt (all messages joined) answers.
``replies`` are cycled by sample index. ``log`` appends one JSON line per call sent, so a test
can count calls across processes; the ``CDV_SCRIPTED_LOG`` environment variable does the same,
and ``CDV_SCRIPTED_DELAY`` sets the delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdvkit.models.base import (
    MCQ,
    ChoiceScores,
    Completion,
    GenerateRequest,
    Message,
    Model,
    Usage,
)
from cdvkit.models.errors import BackendUnavailableError, UnsupportedError

Responder = Callable[[GenerateRequest, int], str]
ProbsFn = Callable[[list[Message], MCQ], list[float]]

# Responders registered in-process by tests: `scripted/<name>` resolves here before the file system.
REGISTRY: dict[str, Responder] = {}
PROBS_REGISTRY: dict[str, ProbsFn] = {}


def prompt_text(messages: list[Message] | tuple[tuple[str, str], ...]) -> str:
    parts = [m["content"] if isinstance(m, dict) else m[1] for m in messages]
    return "\n".join(parts)


class ScriptedModel(Model):
    provider = "scripted"

    def __init__(
        self,
        spec: str,
        *,
        responder: Responder | None = None,
        probs_fn: ProbsFn | None = None,
        delay: float | None = None,
        log_path: str | os.PathLike[str] | None = None,
        concurrency: int = 16,
        **kw: Any,
    ) -> None:
        super().__init__(spec, concurrency=concurrency, **kw)
        self.responder = responder or (lambda req, i: "")
        self.probs_fn = probs_fn
        self.supports_choice_probs = probs_fn is not None
        # The environment variable lets a test slow a subprocess's calls to kill it mid-run.
        self.delay = float(os.environ.get("CDV_SCRIPTED_DELAY", 0.0)) if delay is None else delay
        self.log_path = log_path or os.environ.get("CDV_SCRIPTED_LOG")
        self.calls: list[tuple[GenerateRequest, int]] = []

    @classmethod
    def from_spec(cls, spec: str, name: str, **options: Any) -> ScriptedModel:
        options.pop("base_url", None)
        options.pop("api_key", None)
        if name in REGISTRY or name in PROBS_REGISTRY:
            return cls(
                spec,
                responder=REGISTRY.get(name),
                probs_fn=PROBS_REGISTRY.get(name),
                **options,
            )
        path = Path(name)
        if not path.exists():
            raise BackendUnavailableError(
                f"no scripted responder named {name!r} and no rules file at {path}", model=spec
            )
        cfg = json.loads(path.read_text(encoding="utf-8"))
        responder, probs_fn = rules_from_config(cfg)
        if "delay" in cfg:
            options.setdefault("delay", float(cfg["delay"]))
        if cfg.get("log"):
            options.setdefault("log_path", cfg["log"])
        return cls(spec, responder=responder, probs_fn=probs_fn, **options)

    def _log(self, kind: str, payload: Any, n: int) -> None:
        if not self.log_path:
            return
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        line = json.dumps({"model": self.name, "kind": kind, "key": digest, "n": n})
        # One write per line with O_APPEND keeps lines whole across concurrent processes.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        # Logged when sent, as a paid API bills it: a call killed in flight still shows here.
        self._log("gen", [request.messages, request.first_sample, request.temperature], n)
        if self.delay:
            await asyncio.sleep(self.delay)
        texts = [self.responder(request, request.first_sample + i) for i in range(n)]
        self.calls.append((request, n))
        ptoks = sum(len(c.split()) for _, c in request.messages)
        return Completion(texts, Usage(ptoks, sum(len(t.split()) for t in texts)))

    async def _choice_probs(self, messages: list[Message], mcq: MCQ) -> ChoiceScores:
        if self.probs_fn is None:
            raise UnsupportedError("no probabilities scripted", model=self.name)
        self._log("probs", [messages, mcq.question, list(mcq.choices)], 1)
        if self.delay:
            await asyncio.sleep(self.delay)
        probs = self.probs_fn(messages, mcq)
        total = sum(probs)
        return ChoiceScores(
            [p / total for p in probs], Usage(len(prompt_text(messages).split()), 0)
        )


def rules_from_config(cfg: dict[str, Any]) -> tuple[Responder, ProbsFn | None]:
    rules = cfg.get("rules", [])
    compiled = [(r, re.compile(r["regex"], re.S) if "regex" in r else None) for r in rules]
    default = cfg.get("default", "")

    def matching(text: str) -> dict[str, Any] | None:
        for rule, rx in compiled:
            if "contains" in rule and rule["contains"] not in text:
                continue
            if rx is not None and not rx.search(text):
                continue
            return rule
        return None

    def responder(req: GenerateRequest, i: int) -> str:
        rule = matching(prompt_text(req.messages))
        if rule is None or not ("reply" in rule or "replies" in rule):
            return default
        replies = rule.get("replies") or [rule["reply"]]
        return str(replies[i % len(replies)])

    probs_fn: ProbsFn | None = None
    if "probs_default" in cfg or any("probs" in r for r in rules):

        def probs_fn(messages: list[Message], mcq: MCQ) -> list[float]:
            rule = matching(prompt_text(messages))
            probs = (rule or {}).get("probs") or cfg.get("probs_default")
            if not probs:
                probs = [1.0] * len(mcq.choices)
            probs = list(probs)[: len(mcq.choices)]
            probs += [1e-6] * (len(mcq.choices) - len(probs))
            return probs

    return responder, probs_fn
