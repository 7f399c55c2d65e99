"""A loopback OpenAI-compatible server that simulates every cdvkit role, for the benchmarks.

Run it as a subprocess (``FakeServer`` below does) so its work never competes with the client
for the GIL. It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) over asyncio
streams to serve hundreds of concurrent connections from the standard library alone.

The role of a request is read from its system prompt, so one model name can serve all roles
(the throughput bench relies on that: one backend, one concurrency limit).

The simulated target (``World``) is a seeded noisy model of a real LLM:

- every original question has a latent margin m ~ N(margin_mean, margin_sd) in favour of its
  correct answer and small random logits for the wrong options;
- every distraction sentence has a strength d ~ Exp(strength_mean): it adds d to the logit of
  the wrong option it was written for and removes ``pull`` * d from the correct one, so stacked
  sentences add up;
- a share ``invalid_rate`` of sentences would change the correct answer (the judge says so);
  they are twice as strong, as such contexts are in reality;
- P(choice) = softmax(logits) at temperature 1 (what log-probs report); a sample at temperature T
  is drawn from P ** (1 / T), so T near zero is greedy;
- replies are free text ending in "Answer: X", except a share ``unparsable_rate`` that only
  names the choice's text, which the local parser cannot read and the extractor can.

With ``--per-model`` each target model name is a target of its own: the same questions and
sentences, but its own margins (a share ``model_share`` of a question's margin is common to every
model) and its own response to each sentence (the common strength times a log-normal factor of
spread ``model_sd``), so an example found against one model fools another only partly.

Samples of one prompt are numbered per prompt (the k-th sample asked for is sample k), so a run
is reproducible whatever order its concurrent requests arrive in; ``/fake/reset`` starts the
numbering (and the counters) afresh between two configurations.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _freeworld import FreeProblem, FreeWorld, free_reply, free_role, pick, seed_of

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
FILLER_TEXT = (
    "the question asks about the key fact so we compare each option against what is known "
    "and rule out the ones that do not fit the details given before settling on the best one"
)
OPENERS = (
    "A friend of mine kept mentioning",
    "Earlier today I read a long article about",
    "At the museum last week there was an exhibit on",
    "My cousin, who loves trivia, often talks about",
    "In a podcast I heard recently the host discussed",
    "During a dinner conversation someone brought up",
)


def tokens(text: str) -> int:
    """Rough token count (4 characters a token), for usage accounting."""
    return max(1, len(text) // 4)


@dataclass
class Original:
    qid: int
    question: str
    choices: list[str]
    answer: int


@dataclass
class Sentence:
    strength: float
    option: str
    invalid: bool


# A proposed sentence as the world writes it; its properties are a function of its text alone, so
# a restarted server (the outage tests) judges every sentence exactly as the first one did.
_SENTENCE = re.compile("(?:" + "|".join(re.escape(o) for o in OPENERS) + r") (.+?) \(note \d+\)\.")


@dataclass
class World:
    questions: list[Original]
    seed: int = 0
    margin_mean: float = 3.5
    margin_sd: float = 1.5
    wrong_sd: float = 0.5
    strength_mean: float = 0.7
    pull: float = 0.5
    invalid_rate: float = 0.1
    unparsable_rate: float = 0.1
    reply_words: tuple[int, int] = (80, 360)  # a step-by-step reply's length, in words
    # A target model's own world (--per-model): its name, the share of a question's margin that
    # every model has in common, and the spread of its response to a sentence.
    model: str = ""
    model_share: float = 0.5
    model_sd: float = 0.8

    def __post_init__(self) -> None:
        # Longest first, so a question that contains a shorter one is matched as itself.
        self._by_len = sorted(self.questions, key=lambda q: -len(q.question))
        self._memo: dict[tuple[int, str, str], Sentence | None] = {}

    def identify(self, text: str) -> Original | None:
        for q in self._by_len:
            if q.question in text:
                return q
        return None

    def sentence(self, q: Original, text: str, option: str) -> Sentence | None:
        """The properties of the sentence ``text`` aimed at ``option`` (None: no such choice)."""
        choice = next((c for c in q.choices if c.strip().rstrip(".") == option), None)
        if choice is None:
            return None
        rng = random.Random(seed_of(self.seed, "s", text))
        invalid = rng.random() < self.invalid_rate
        strength = rng.expovariate(1.0 / self.strength_mean) * (2.0 if invalid else 1.0)
        if self.model:  # this model's own response to the sentence, the same on average
            z = random.Random(seed_of(self.seed, "s", text, self.model)).gauss(0.0, 1.0)
            strength *= math.exp(self.model_sd * z - self.model_sd**2 / 2)
        return Sentence(strength, choice, invalid)

    def _present(self, q: Original, text: str) -> list[Sentence]:
        if "(note " not in text:  # most prompts: an original question, no sentence to find
            return []
        found = (self._sentence(q, m.group(0), m.group(1)) for m in _SENTENCE.finditer(text))
        return [s for s in found if s is not None]

    def _sentence(self, q: Original, text: str, option: str) -> Sentence | None:
        # A pure function of its arguments, asked again for every request that carries the
        # sentence: remembered, so the server keeps up with the client it measures.
        key = (q.qid, text, option)
        if key not in self._memo:
            self._memo[key] = self.sentence(q, text, option)
        return self._memo[key]

    def probs(self, q: Original, question_text: str, choices: list[str]) -> list[float]:
        """P(choice) at temperature 1 for a node's text and (shuffled) choices."""
        rng = random.Random(seed_of(self.seed, "q", q.qid))
        margin = rng.gauss(self.margin_mean, self.margin_sd)
        base = {c: rng.gauss(0.0, self.wrong_sd) for c in q.choices}
        if self.model:  # part common to every model, part this model's own
            own = random.Random(seed_of(self.seed, "q", q.qid, self.model))
            common, mine = (margin - self.margin_mean) / self.margin_sd, own.gauss(0.0, 1.0)
            share = self.model_share
            mixed = math.sqrt(share) * common + math.sqrt(1 - share) * mine
            margin = self.margin_mean + self.margin_sd * mixed
            base = {c: own.gauss(0.0, self.wrong_sd) for c in q.choices}
        correct = q.choices[q.answer]
        logits = {c: (margin if c == correct else base[c]) for c in q.choices}
        for s in self._present(q, question_text):
            logits[s.option] = logits.get(s.option, 0.0) + s.strength
            logits[correct] -= self.pull * s.strength
        values = [logits.get(c, -5.0) for c in choices]
        top = max(values)
        weights = [math.exp(v - top) for v in values]
        total = sum(weights)
        return [w / total for w in weights]

    def propose(self, q: Original, node_text: str, option: str, sample: int) -> str:
        rng = random.Random(seed_of(self.seed, "p", q.qid, node_text, option, sample))
        opener = rng.choice(OPENERS)
        return f"{opener} {option.strip().rstrip('.')} (note {rng.randrange(10**6)})."

    def changes_answer(self, q: Original, distracted: str) -> bool:
        return any(s.invalid for s in self._present(q, distracted))

    def answer(
        self,
        q: Original,
        text: str,
        choices: list[str],
        temperature: float,
        sample: int,
        by_text: bool = False,
    ) -> str:
        probs = self.probs(q, text, choices)
        rng = random.Random(seed_of(self.seed, "a", text, tuple(choices), sample))
        chosen = pick(probs, temperature, rng)
        # As long as real step-by-step replies: 116 to 381 tokens on average for six models.
        words = rng.choices(
            FILLER_TEXT.split(), k=rng.randint(self.reply_words[0], self.reply_words[1])
        )
        reasoning = "Let me think step by step: " + " ".join(words) + "."
        if rng.random() < self.unparsable_rate:
            return f"{reasoning} So I would go with {choices[chosen]}, all things considered."
        if by_text:  # the paper's prompt asks for the choice's text
            return f"{reasoning}\nThe final answer is: '{choices[chosen]}'"
        return f"{reasoning}\nAnswer: {LETTERS[chosen]}"


# --- reading the prompts cdvkit sends ----------------------------------------------------------

_CHOICE_LINE = re.compile(r"^([A-Z])\. (.*)$")


def parse_mcq(block: str) -> tuple[str, list[str]]:
    """(question, choices) from cdvkit's rendering: question, blank line, 'A. ...' lines."""
    lines = block.split("\n")
    choices: list[str] = []
    start = None
    for i, line in enumerate(lines):
        m = _CHOICE_LINE.match(line)
        if m and m.group(1) == LETTERS[len(choices)]:
            if start is None:
                start = i
            choices.append(m.group(2))
        elif start is not None:
            break
    question = "\n".join(lines[: start if start is not None else len(lines)]).strip()
    return question, choices


def parse_paper(user: str) -> tuple[str, list[str]] | None:
    """(question, choices) from the paper's rendering ("Question: ...", "Choices: [...]")."""
    m = re.search(r"^Question: (.*)\nChoices: (\[.*\])$", user, re.S | re.M)
    if m is None:
        return None
    try:
        choices = ast.literal_eval(m.group(2))
    except (ValueError, SyntaxError):
        return None
    return m.group(1).strip(), [str(c) for c in choices]


def role_of(messages: list[dict[str, str]]) -> str:
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    if "map free-text answers" in system:
        return "extractor"
    if "benchmark of contextual distraction" in system:
        return "proposer"
    if "distracted multiple-choice questions" in system:
        return "judge"
    return "target"


class FakeAPI:
    def __init__(
        self,
        world: World,
        *,
        latency: float,
        logprobs: bool,
        free: FreeWorld | None = None,
        per_model: bool = False,
    ) -> None:
        self.world = world
        self.per_model = per_model
        self._worlds: dict[str, World] = {}
        self.free = free
        self.latency = latency
        self.logprobs = logprobs
        self.reset()

    def target_world(self, model: str | None) -> World:
        """The world a target request is answered from: its model's own with ``per_model``."""
        if not self.per_model or not model:
            return self.world
        if model not in self._worlds:
            self._worlds[model] = replace(self.world, model=model)
        return self._worlds[model]

    def reset(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.samples: Counter[str] = Counter()
        self.next_sample: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.first: float | None = None
        self.last: float | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "requests": sum(self.counts.values()),
            "by_role": dict(self.counts),
            "by_model": dict(self.by_model),
            "samples_by_role": dict(self.samples),
            "max_in_flight": self.max_in_flight,
            "span_s": (self.last - self.first) if self.first and self.last else 0.0,
        }

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/fake/stats":
            return 200, self.stats()
        if path == "/fake/reset":
            self.reset()
            return 200, {"ok": True}
        if path == "/fake/score":
            req = json.loads(body)
            world = self.target_world(req.get("model"))
            q = world.identify(req["question"])
            if q is None:
                return 404, {"error": {"message": "unknown question"}}
            return 200, {"probs": world.probs(q, req["question"], req["choices"])}
        if path == "/fake/free_score":
            # The free-form world's true P(answer) for a node's text, and its correct answer.
            req = json.loads(body)
            p = self.free.identify(req["question"]) if self.free else None
            if p is None:
                return 404, {"error": {"message": "unknown problem"}}
            probs = self.free.probs(p, req["question"])
            return 200, {"answer": p.answer, "probs": [[v, q] for v, q in probs.items()]}
        if path.rstrip("/").endswith("/models") and method == "GET":
            # The preflight's check: an empty list names no model, so any model name passes.
            return 200, {"object": "list", "data": []}
        if path.rstrip("/").endswith("/chat/completions") and method == "POST":
            now = time.perf_counter()
            self.first = self.first or now
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                return self.complete(json.loads(body))
            finally:
                self.in_flight -= 1
                self.last = time.perf_counter()
        return 404, {"error": {"message": f"no route {method} {path}"}}

    def complete(self, req: dict[str, Any]) -> tuple[int, Any]:
        messages = req["messages"]
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        free = free_role(system) if self.free is not None else None
        role = free or role_of(messages)
        self.counts[role] += 1
        self.by_model[str(req.get("model"))] += 1
        n = int(req.get("n") or 1)
        self.samples[role] += n
        user = messages[-1]["content"]
        prompt_tokens = sum(tokens(m["content"]) for m in messages)
        if req.get("logprobs"):
            if not self.logprobs:
                return 400, {"error": {"message": "logprobs are not supported by this server"}}
            return 200, self._logprobs(
                req, user, prompt_tokens, self.target_world(req.get("model"))
            )
        key = json.dumps([messages, req.get("temperature")], sort_keys=True)
        if self.per_model:  # each target numbers its own samples of a prompt both are asked
            key += str(req.get("model"))
        first = self.next_sample[key]
        self.next_sample[key] += n
        temperature = float(req.get("temperature") or 0.0)
        if free is not None:
            assert self.free is not None
            texts = [free_reply(self.free, free, user, temperature, first + i) for i in range(n)]
        else:
            world = self.target_world(req.get("model")) if role == "target" else self.world
            texts = [self._text(role, user, temperature, first + i, world) for i in range(n)]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ]
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(tokens(t) for t in texts),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {"id": "fake", "object": "chat.completion", "choices": choices, "usage": usage}

    def _text(
        self, role: str, user: str, temperature: float, sample: int, world: World | None = None
    ) -> str:
        w = world or self.world
        if role == "target":
            paper = parse_paper(user)
            question, choices = paper or parse_mcq(user)
            q = w.identify(question)
            if q is None:
                return "I do not know this one."
            return w.answer(q, question, choices, temperature, sample, by_text=bool(paper))
        if role == "proposer":
            block = user.split("Question and choices:\n", 1)[1].split("\n\nCorrect answer:")[0]
            question, _ = parse_mcq(block)
            q = w.identify(question)
            if "Wrong options to make plausible:\n" in user:
                # The batched proposer: one sentence per listed wrong option, as JSON.
                listed = user.split("Wrong options to make plausible:\n", 1)[1].split("\n\n")[0]
                options = [_CHOICE_LINE.match(line) for line in listed.split("\n")]
                return json.dumps(
                    {
                        m.group(1): w.propose(q, question, m.group(2), sample)
                        if q
                        else "Nothing comes to mind."
                        for m in options
                        if m
                    }
                )
            option = user.split("Wrong option to make plausible: ", 1)[1].split("\n")[0]
            return w.propose(q, question, option, sample) if q else "Nothing comes to mind."
        if role == "judge":
            distracted = user.split("Question with added context:\n", 1)[1].split("\n\nDoes")[0]
            q = w.identify(distracted)
            changes = bool(q and w.changes_answer(q, distracted))
            reason = "it changes the answer" if changes else "the answer is unchanged"
            return json.dumps({"changes_answer": changes, "reason": reason})
        # extractor
        _, choices = parse_mcq(user)
        reply = user.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        m = re.findall(r"Answer: ([A-Z])", reply)
        if m:
            return m[-1]
        named = [i for i, c in enumerate(choices) if c and c in reply]
        if named:
            return LETTERS[max(named, key=lambda i: len(choices[i]))]
        return "NONE"

    def _logprobs(
        self, req: dict[str, Any], user: str, prompt_tokens: int, world: World | None = None
    ) -> dict[str, Any]:
        world = world or self.world
        question, choices = parse_mcq(user)
        q = world.identify(question)
        probs = world.probs(q, question, choices) if q else [1.0 / len(choices)] * len(choices)
        top = [
            {"token": LETTERS[i], "logprob": math.log(max(p, 1e-12))} for i, p in enumerate(probs)
        ]
        top.sort(key=lambda t: -t["logprob"])
        best = top[0]
        content = [{**best, "top_logprobs": top}]
        return {
            "id": "fake",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": best["token"]},
                    "logprobs": {"content": content},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1},
        }


# --- a small HTTP/1.1 server on asyncio streams ------------------------------------------------


async def serve_connection(
    api: FakeAPI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            method, path, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            try:
                status, payload = await api.handle(method, path.split("?")[0], body)
            except Exception as exc:  # a bench bug should show up as a 500, not a hang
                status, payload = 500, {"error": {"message": f"{type(exc).__name__}: {exc}"}}
            data = json.dumps(payload).encode()
            head = (
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n"
                "Connection: keep-alive\r\n\r\n"
            )
            writer.write(head.encode() + data)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    rows = json.loads(Path(args.questions).read_text(encoding="utf-8"))
    params = json.loads(args.world)
    world = World(
        [
            Original(i, r["question"], list(r["choices"]), int(r["answer"]))
            for i, r in enumerate(rows)
            if "choices" in r
        ],
        seed=args.seed,
        **params,
    )
    problems = [
        FreeProblem(i, r["question"], float(r["answer"]))
        for i, r in enumerate(rows)
        if "choices" not in r
    ]
    free = FreeWorld(problems, OPENERS, seed=args.seed, **params) if problems else None
    api = FakeAPI(
        world,
        latency=args.latency,
        logprobs=not args.no_logprobs,
        free=free,
        per_model=args.per_model,
    )
    server = await asyncio.start_server(
        lambda r, w: serve_connection(api, r, w), "127.0.0.1", args.port, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


# --- the client side: start, query and stop a server --------------------------------------------


class FakeServer:
    """``with FakeServer(questions) as fs: ... fs.base_url ...``; questions are cdvkit Questions."""

    def __init__(
        self,
        questions: list[Any],
        *,
        seed: int = 0,
        latency: float = 0.0,
        logprobs: bool = True,
        world: dict[str, Any] | None = None,
        per_model: bool = False,
    ) -> None:
        self.questions = questions
        self.per_model = per_model
        self.seed = seed
        self.latency = latency
        self.logprobs = logprobs
        self.world = world or {}
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.base_url = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="cdv-fake-")

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def start(self, port: int = 0) -> None:
        """Start the server process (``port`` 0: any free one)."""
        qfile = Path(self._tmp.name) / "questions.json"
        rows = [
            {"question": q.question, "answer": q.references[0]}
            if getattr(q, "free_form", False)
            else {"question": q.question, "choices": list(q.choices), "answer": q.answer}
            for q in self.questions
        ]
        qfile.write_text(json.dumps(rows), encoding="utf-8")
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--questions",
            str(qfile),
            "--seed",
            str(self.seed),
            "--latency",
            str(self.latency),
            "--world",
            json.dumps(self.world),
            "--port",
            str(port),
        ]
        if not self.logprobs:
            cmd.append("--no-logprobs")
        if self.per_model:
            cmd.append("--per-model")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.__exit__()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def kill(self) -> None:
        """Stop the server at once, mid-request (an outage)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        """Start again on the same port, so clients reach it at the same base URL."""
        self.kill()
        self.start(self.port)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        self._tmp.cleanup()

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        root = self.base_url.rsplit("/v1", 1)[0]
        data = json.dumps(payload or {}).encode()
        req = urllib.request.Request(root + path, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/fake/stats")

    def reset(self) -> None:
        self._call("/fake/reset")

    def probs(self, question: str, choices: list[str], model: str = "") -> list[float]:
        """The simulated target's true P(choice) for a node (what exact scoring would report);
        ``model``: that target model's own (a server started with ``per_model``)."""
        payload = {"question": question, "choices": list(choices), "model": model}
        return self._call("/fake/score", payload)["probs"]

    def free_probs(self, question: str) -> tuple[float, dict[float, float]]:
        """A free-form node's correct answer and the simulated target's true P(answer)."""
        got = self._call("/fake/free_score", {"question": question})
        return got["answer"], {v: q for v, q in got["probs"]}


DESCRIPTION = (
    "A loopback OpenAI-compatible chat-completions server for the benchmarks: one seeded, "
    "simulated LLM plays every cdvkit role (target, proposer, judge, extractor), its role read "
    "from each request's system prompt. It prints 'PORT <n>' once it listens, then serves until "
    "interrupted."
)
WORLD_KEYS = ", ".join(
    f"{f.name} ({f.default})" for f in fields(World) if f.name not in ("questions", "seed", "model")
)


def main() -> None:
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    ap.add_argument(
        "--questions",
        required=True,
        metavar="FILE",
        help="the original questions the simulated target knows: a JSON file holding a list of "
        'objects {"question": text, "choices": [text, ...], "answer": the correct choice\'s '
        '0-based index}, or, for a numeric free-form problem, {"question": text, "answer": '
        "number} (no choices)",
    )
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated world")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per completion request")
    ap.add_argument(
        "--no-logprobs",
        action="store_true",
        help="refuse log-prob requests (400), like a server without them",
    )
    ap.add_argument(
        "--per-model",
        action="store_true",
        help="answer each target model name from a world of its own (its own margins and "
        "response to each sentence), so several targets differ",
    )
    ap.add_argument(
        "--world",
        default="{}",
        metavar="JSON",
        help=f"JSON object of World parameters to override; defaults: {WORLD_KEYS}",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
