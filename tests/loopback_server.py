"""An OpenAI-compatible /v1/chat/completions server on 127.0.0.1 whose replies tests script.

The reliability tests drive the real `cdv` CLI and the official SDK against it, so every fault
(status codes, stalls, broken connections, bad bodies) is what a socket really delivers, not a
hand-built exception. A route function picks the reply per request, usually from a keyword in
the prompt, so one run can mix healthy and faulty questions.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    raw: bytes | None = None  # sent as is instead of ``json`` (non-JSON or truncated bodies)
    text: str | None = None  # a text/plain body instead of ``json`` (a proxy's error page)
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to stall before answering (ends early when the server closes)
    cut_after: int | None = None  # close the socket after this many body bytes


@dataclass
class Seen:
    """One request as the server received it."""

    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    index: int = 0  # arrival order, from 0

    @property
    def user(self) -> str:
        return str(self.body["messages"][-1]["content"])

    @property
    def n(self) -> int:
        return int(self.body.get("n") or 1)


Route = Callable[[Seen], Reply]


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when a run opens many at once, which the
    # client would see as a timeout the test did not inject.
    request_queue_size = 128


def model_list(seen: Seen) -> Reply:
    """``GET /v1/models``: an empty list, which names no model, so any model name passes."""
    return Reply(json={"object": "list", "data": []})


class LoopbackServer:
    def __init__(self, route: Route, get_route: Route = model_list) -> None:
        self.route = route
        self.get_route = get_route  # answers GET requests (the preflight's model list)
        self.requests: list[Seen] = []
        self.gets: list[Seen] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(
                    time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, {}
                )
                with owner._lock:
                    owner.gets.append(seen)
                self._answer(owner.get_route(seen))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                seen = Seen(
                    time.monotonic(),
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw),
                )
                with owner._lock:  # requests (e.g. n samples) may arrive concurrently
                    seen.index = len(owner.requests)
                    owner.requests.append(seen)
                self._answer(owner.route(seen))

            def _answer(self, reply: Reply) -> None:
                if reply.hang:
                    owner.stop.wait(reply.hang)
                if reply.text is not None:
                    data, ctype = reply.text.encode(), "text/plain"
                else:
                    raw = reply.raw if reply.raw is not None else json.dumps(reply.json).encode()
                    data, ctype = raw, "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if reply.cut_after is None:
                        self.wfile.write(data)
                    else:
                        self.wfile.write(data[: reply.cut_after])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the client gave up first (timeouts)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (the Anthropic SDK takes ``root``)."""
        return f"{self.root}/v1"

    def seen(self, keyword: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if keyword is None or keyword in r.user]

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


Script = Callable[[int, dict[str, Any]], Reply]


@contextmanager
def scripted_servers() -> Iterator[Callable[[Script], LoopbackServer]]:
    """Start servers that answer the i-th request with ``script(i, body)``; all closed at exit."""
    servers: list[LoopbackServer] = []

    def start(script: Script) -> LoopbackServer:
        servers.append(LoopbackServer(lambda seen: script(seen.index, seen.body)))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@contextmanager
def serving(route: Route, get_route: Route = model_list) -> Iterator[LoopbackServer]:
    server = LoopbackServer(route, get_route)
    try:
        yield server
    finally:
        server.close()


def completion(texts: list[str], *, refusal: bool = False) -> dict[str, Any]:
    """A chat.completion body; ``refusal`` sends the texts the way OpenAI sends a refusal."""

    def message(text: str) -> dict[str, Any]:
        if refusal:
            return {"role": "assistant", "content": None, "refusal": text}
        return {"role": "assistant", "content": text}

    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "x",
        "choices": [
            {"index": i, "message": message(t), "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


_CHOICE_LINE = re.compile(r"^([A-Z])\. (.*)$")


def oracle_letter(user: str, originals: dict[str, str]) -> str:
    """The letter a model that knows ``originals`` (question -> answer text) would pick.

    It answers right when the prompt holds the original question unchanged and is fooled (picks
    a wrong choice) as soon as any distraction was added, so every searched question yields an
    example at depth 1 and the expected store contents are known in advance.
    """
    # Log-prob requests end with an extra instruction after the choices; it is not a choice.
    user = user.split("\n\nRespond with only the letter")[0]
    question, _, rest = user.rpartition("\n\n")
    choices = {}
    for line in rest.splitlines():
        m = _CHOICE_LINE.match(line)
        if m:
            choices[m.group(2)] = m.group(1)
    original = next(q for q in originals if q in question)
    right = originals[original]
    if question == original:
        return choices[right]
    return next(letter for text, letter in choices.items() if text != right)
