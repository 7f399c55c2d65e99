"""An outage stops a run within the outage window plus one request timeout, and every failed
request is recorded as what really happened to it (refused, dropped, timed out, an HTTP status).

The window tests drive the real `cdv generate` in a subprocess against a loopback server that
dies mid-run, either as a killed process does (connections refused, those in flight dropped) or
as a frozen one does (connections accepted, never answered). With the default retry policy each
call in flight used to run its whole retry window before the run noticed (15 s and more here);
the bound asserted is the window plus one timeout, with a margin of a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdvkit.models.anthropic_backend import AnthropicModel
from cdvkit.models.base import Completion, GenerateRequest, Model, Usage
from cdvkit.models.errors import (
    CLOSED,
    RATE_LIMITED,
    REFUSED,
    RESET,
    SERVER_ERROR,
    TIMEOUT,
    OutageError,
    TransientModelError,
)
from cdvkit.models.openai_backend import OpenAIModel
from cdvkit.store import RunStore
from loopback_server import LoopbackServer, Reply, Seen, completion, oracle_letter

pytestmark = pytest.mark.timeout(180)

CDV = [sys.executable, "-m", "cdvkit.cli.app"]
REQ = GenerateRequest.make([{"role": "user", "content": "Say hi."}])


# --- error kinds, from the exception -------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DroppingServer:
    """Accepts a connection, reads the request, and closes it without a byte of reply: what a
    client sees of a server killed while the request was in flight."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    def close(self) -> None:
        self.sock.close()


class SilentServer:
    """Accepts connections and never answers (a frozen server)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    dropping, silent = DroppingServer(), SilentServer()
    yield {"dropping": dropping, "silent": silent}
    dropping.close()
    silent.close()


def hosted(provider: str, port: int, timeout: float) -> Model:
    options: dict[str, Any] = {"max_retries": 0, "timeout": timeout, "api_key": "sk-test-kinds"}
    if provider == "openai":
        return OpenAIModel(
            "openai-compatible/m", "m", compatible=True, base_url=f"http://127.0.0.1:{port}/v1",
            **options,
        )  # fmt: skip
    return AnthropicModel("anthropic/m", "m", base_url=f"http://127.0.0.1:{port}", **options)


async def failure_of(model: Model) -> tuple[TransientModelError, float]:
    t0 = time.monotonic()
    try:
        with pytest.raises(TransientModelError) as info:
            await model.generate(REQ)
    finally:
        await model.aclose()
    return info.value, time.monotonic() - t0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_refused_connection_is_recorded_as_refused(provider: str) -> None:
    err, took = await failure_of(hosted(provider, free_port(), timeout=60))
    assert err.kind == REFUSED
    assert "cannot reach" in str(err) and "connection refused" in str(err)
    assert "timed out" not in str(err)
    assert took < 5  # no timeout was waited for


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_connection_dropped_without_reply_is_not_a_timeout(provider, servers) -> None:
    # The case: the server died under a request, and the OpenAI SDK's transport called
    # it "Request timed out." milliseconds later; it was recorded as "timed out after 60s".
    err, took = await failure_of(hosted(provider, servers["dropping"].port, timeout=60))
    # The kernel reports the drop as a close or a reset depending on timing: both say the
    # server went away, neither is a timeout.
    assert err.kind in (CLOSED, RESET), err
    assert "closed the connection" in str(err) or "connection reset" in str(err), err
    assert "timed out" not in str(err)
    assert took < 5


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_server_that_never_answers_is_a_timeout(provider, servers) -> None:
    err, took = await failure_of(hosted(provider, servers["silent"].port, timeout=0.5))
    assert err.kind == TIMEOUT
    assert "request timed out after 0.5s" in str(err)
    assert took >= 0.45


async def test_http_statuses_keep_their_kinds() -> None:
    from loopback_server import scripted_servers

    replies = {429: RATE_LIMITED, 500: SERVER_ERROR, 503: SERVER_ERROR}
    with scripted_servers() as start:
        for status, kind in replies.items():
            srv = start(
                lambda i, body, status=status: Reply(status, json={"error": {"message": "x"}})
            )
            m = hosted("openai", srv.httpd.server_address[1], timeout=5)
            err, _ = await failure_of(m)
            assert err.kind == kind and err.status == status, err


# --- the outage rule, on a model with scripted failures ------------------------------------------
class Failing(Model):
    """Fails every attempt with ``error`` (after ``delay``), or answers when ``error`` is None."""

    provider = "test"

    def __init__(self, error: TransientModelError | None, delay: float = 0.0, **kw: Any) -> None:
        super().__init__("test/failing", **kw)
        self.error = error
        self.delay = delay
        self.attempts = 0

    async def _generate(self, request: GenerateRequest, n: int) -> Completion:
        self.attempts += 1
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return Completion(["ok"] * n, Usage())


def refused() -> TransientModelError:
    return TransientModelError("cannot reach x: connection refused", model="m", kind=REFUSED)


async def test_once_declared_every_call_in_flight_asleep_or_queued_fails_at_once() -> None:
    # The default back-off (0.5 s, doubling, 5 retries) would hold each call ~15 s.
    model = Failing(refused(), concurrency=4, outage_after=0.3)
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(model.generate(REQ) for _ in range(20)), return_exceptions=True
    )
    took = time.monotonic() - t0
    assert all(isinstance(r, OutageError) for r in results), results
    assert took < 1.5, took
    assert "server not answering since" in str(results[0])
    # The calls still queued for a slot were never sent, and say so.
    unsent = [r for r in results if not r.sent]
    assert len(unsent) == 16 and model.attempts <= 4 * 3
    # A call made once the window has passed again (another run) is sent, and clears it.
    await asyncio.sleep(1.0)
    model.error = None
    assert (await model.generate(REQ)).texts == ["ok"]


async def test_an_attempt_hanging_in_flight_is_cancelled_by_the_outage() -> None:
    model = Failing(None, delay=30, concurrency=2, outage_after=0.2)
    hanging = asyncio.ensure_future(model.generate(REQ))
    await asyncio.sleep(0.05)
    # Two refused attempts on the same server (another call's) declare the outage: the call
    # hanging in flight is not left to run out its timeout.
    health = model._health_now()
    health.failed(refused())
    await asyncio.sleep(0.25)
    health.failed(refused())
    t0 = time.monotonic()
    with pytest.raises(OutageError):
        await hanging
    assert time.monotonic() - t0 < 0.5


async def test_rate_limits_alone_never_declare_an_outage_quickly() -> None:
    limited = TransientModelError(
        "rate limited (HTTP 429)", model="m", status=429, kind=RATE_LIMITED
    )
    model = Failing(limited, concurrency=2, outage_after=0.05, max_retries=2, retry_base=0.1)
    t0 = time.monotonic()
    results = await asyncio.gather(*(model.generate(REQ) for _ in range(2)), return_exceptions=True)
    # 429s are answers: only the slow rule applies, once a call ran its whole retry window
    # (back-off 0.1 s, then 0.2 s) with nothing answered; then the other stops at once too.
    assert time.monotonic() - t0 >= 0.3
    assert model.attempts >= 3 + 1
    assert all(isinstance(r, OutageError) for r in results), results


async def test_one_dropped_connection_among_slow_answers_is_no_outage() -> None:
    # A blip, then answers slower than the window: the server is there, so the run goes on.
    model = Failing(None, delay=0.4, concurrency=4, outage_after=0.1)
    model._health_now().failed(refused())
    texts = await asyncio.gather(*(model.generate(REQ) for _ in range(4)))
    assert [t.texts for t in texts] == [["ok"]] * 4


# --- a server that dies under a real run ---------------------------------------------------------
LATENCY = 0.15  # per request, so the run is still going when the server dies
REQUEST_TIMEOUT = 2.0
OUTAGE_AFTER = 1.0
MARGIN = 3.0  # process exit, a loaded machine; the old behaviour took 15 s and more here
SUBJECTS = [
    ("What do bees make?", ["honey", "milk", "silk", "wool"], "honey"),
    ("What is frozen water called?", ["steam", "ice", "fog", "dew"], "ice"),
    ("Which planet do we live on?", ["Mars", "Earth", "Venus", "Jupiter"], "Earth"),
    ("How many legs does a spider have?", ["six", "eight", "ten", "four"], "eight"),
]


class DyingRoute:
    """Answers like a model that knows the answers, until ``die``: then, like a killed server,
    drops what is in flight and refuses the rest (``frozen``: accepts and never answers)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.originals = {r["question"]: r["answer"] for r in rows}
        self.dead = threading.Event()
        self.thaw = threading.Event()  # ends a frozen server's hanging handlers at teardown
        self.frozen = False
        self.answered = 0
        self._lock = threading.Lock()

    def __call__(self, req: Seen) -> Reply:
        if not self.dead.wait(LATENCY):
            with self._lock:
                if not self.dead.is_set():
                    self.answered += 1
                    letter = oracle_letter(req.user, self.originals)
                    return Reply(json=completion([f"Answer: {letter}"] * req.n))
        if self.frozen:
            self.thaw.wait(120)
        return Reply(json={}, cut_after=0)  # headers, then the connection closes


def rows_for(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        question, choices, answer = SUBJECTS[i % len(SUBJECTS)]
        rows.append({"question": f"[q{i}] {question}", "choices": choices, "answer": answer})
    return rows


def cdv_args(data: Path, config: Path, url: str, run_dir: Path) -> list[str]:
    return [
        *CDV, "generate", "--data", str(data), "--target", "openai-compatible/x", "--base-url", url,
        "--proposer", "template", "--similarity-floor", "0", "--samples", "2",
        "--scoring", "sample", "--max-expansions", "2", "--max-good", "1", "--config", str(config),
        "--run-dir", str(run_dir), "--json",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("outage")
    rows = rows_for(24)
    data = base / "q.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = base / "cdv.toml"
    # The default retry policy (5 retries, 0.5 s back-off doubling): what made runs slow to stop.
    config.write_text(
        f"[roles.target]\ntimeout = {REQUEST_TIMEOUT}\noutage_after = {OUTAGE_AFTER}\n"
    )
    env = {**os.environ, "OPENAI_API_KEY": "sk-outage-window"}
    env.pop("OPENAI_BASE_URL", None)
    route = DyingRoute(rows)
    server = LoopbackServer(route)
    try:
        ref = subprocess.run(
            cdv_args(data, config, server.url, base / "ref"), env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.close()
    assert ref.returncode == 0, ref.stderr
    return {
        "rows": rows, "data": data, "config": config, "env": env, "requests": route.answered,
        "examples": examples(base / "ref"),
    }  # fmt: skip


def examples(run_dir: Path) -> set[tuple[str, str, str]]:
    with RunStore(run_dir, readonly=True, lock=False) as store:
        return {(e["question_id"], e["path"], e["question"]) for e in store.examples()}


@pytest.mark.slow
@pytest.mark.parametrize("death", ["killed", "frozen"])
def test_a_dead_server_stops_the_run_within_the_window_plus_one_timeout(
    setup: dict[str, Any], tmp_path: Path, death: str
) -> None:
    route = DyingRoute(setup["rows"])
    route.frozen = death == "frozen"
    server = LoopbackServer(route)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        cdv_args(setup["data"], setup["config"], server.url, run_dir), env=setup["env"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while route.answered < setup["requests"] // 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        route.dead.set()
        died = time.monotonic()
        if death == "killed":
            server.httpd.shutdown()
            server.httpd.server_close()  # nothing listens: new connections are refused
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the run was still going 30 s after the server died")
        stopped_after = time.monotonic() - died
    finally:
        if proc.poll() is None:
            proc.kill()
        route.thaw.set()
        server.close()
    assert proc.returncode == 1, (out, err)
    assert "server not answering since" in err and "rerun the same command" in err, err
    assert "Traceback" not in err
    # A killed server is seen within the window; a frozen one after one timeout more.
    print(f"{death}: stopped {stopped_after:.2f} s after the server died")
    assert stopped_after < OUTAGE_AFTER + REQUEST_TIMEOUT + MARGIN, stopped_after
    summary = json.loads(out)
    assert summary["fatal"] and summary["unfinished"] > 0
    with RunStore(run_dir, readonly=True, lock=False) as store:
        # Nothing paid is lost: every reply the server sent was stored.
        assert store.paid_calls() == route.answered
        lost = [f["error"] for f in store.failures() if f["kind"] in ("lost", "retried")]
    # Each failure says what happened: refused or dropped when killed, timed out when frozen.
    if death == "killed":
        said = ("connection refused", "connection reset", "closed the connection", "not answering")
        assert all(any(w in e for w in said) and "timed out" not in e for e in lost), lost
    else:
        assert any("request timed out after 2s" in e for e in lost), lost

    # The server back, a rerun ends as an uninterrupted run, asking only what was not answered.
    again = DyingRoute(setup["rows"])
    server = LoopbackServer(again)
    try:
        rerun = subprocess.run(
            cdv_args(setup["data"], setup["config"], server.url, run_dir), env=setup["env"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.close()
    assert rerun.returncode == 0, rerun.stderr
    assert examples(run_dir) == setup["examples"]
    assert route.answered + again.answered == setup["requests"]
