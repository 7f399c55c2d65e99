"""OpenAIModel against a real HTTP server on loopback, scripted per test.

Every test goes through the official SDK and a socket, so the error mapping is checked on what
the SDK really raises, not on hand-built exceptions.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from cdvkit.models.base import MCQ, GenerateRequest, Usage
from cdvkit.models.errors import (
    AuthenticationError,
    BadResponseError,
    ModelError,
    TransientModelError,
    UnsupportedError,
)
from cdvkit.models.http_api import retry_after_seconds
from cdvkit.models.openai_backend import (
    LOGPROB_FLOOR_MARGIN,
    OpenAIModel,
    label_probs,
    price_for,
)
from cdvkit.models.registry import load_model
from loopback_server import LoopbackServer, Reply, Script, scripted_servers

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-proj-SECRETabc123XYZ987secretSECRET"


# --- a scripted server ---------------------------------------------------------------------------
@pytest.fixture
def serve() -> Iterator[Callable[[Script], LoopbackServer]]:
    with scripted_servers() as start:
        yield start


@pytest.fixture
async def models() -> AsyncIterator[Callable[..., OpenAIModel]]:
    made: list[OpenAIModel] = []

    def make(
        server: LoopbackServer | None = None, name: str = "gpt-test", **kw: Any
    ) -> OpenAIModel:
        kw.setdefault("max_retries", 0)
        kw.setdefault("retry_base", 0.01)
        if server is not None:
            kw.setdefault("base_url", server.url)
        m = OpenAIModel(f"openai/{name}", name, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        await m.aclose()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(var, raising=False)


def completion(*texts: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-test",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": t},
                "finish_reason": "stop",
            }
            for i, t in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


REQ = GenerateRequest.make(
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}],
    temperature=0.7,
    max_tokens=64,
    stop=("\n\n",),
    seed=42,
)


# --- generation ----------------------------------------------------------------------------------
async def test_answer_with_usage_and_request_fields(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=completion("Answer: B")))
    m = models(srv, api_key=SECRET, price_per_mtok=(1.0, 2.0))
    out = await m.generate(REQ, 1)
    assert out.texts == ["Answer: B"]
    assert out.usage == Usage(11, 7)
    assert m.cost(out.usage) == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)
    (req,) = srv.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    body = req.body
    assert body["model"] == "gpt-test"
    assert body["messages"] == REQ.message_dicts
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 64
    assert body["stop"] == ["\n\n"]
    assert body["seed"] == 42
    assert "n" not in body and "response_format" not in body


async def test_json_mode_sets_response_format(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=completion('{"ok": true}')))
    m = models(srv)
    req = GenerateRequest.make([{"role": "user", "content": "json"}], json_mode=True)
    assert (await m.generate(req)).texts == ['{"ok": true}']
    assert srv.requests[0].body["response_format"] == {"type": "json_object"}


async def test_n_samples_in_one_request(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=completion(*[f"s{k}" for k in range(body["n"])])))
    m = models(srv)
    out = await m.generate(REQ, 3)
    assert out.texts == ["s0", "s1", "s2"]
    assert len(srv.requests) == 1 and srv.requests[0].body["n"] == 3


async def test_server_ignoring_n_is_asked_again_for_the_rest(serve, models) -> None:
    # llama.cpp-style: one choice whatever n says.
    srv = serve(
        lambda i, body: Reply(json=completion(f"s{i}", prompt_tokens=5, completion_tokens=2))
    )
    m = models(srv)
    out = await m.generate(REQ, 3)
    assert out.texts == ["s0", "s1", "s2"]
    assert out.usage == Usage(15, 6)
    bodies = [r.body for r in srv.requests]
    assert [b.get("n", 1) for b in bodies] == [3, 2, 1]
    # A repeated seed would repeat the sample; follow-ups shift it.
    assert [b["seed"] for b in bodies] == [42, 43, 44]


async def test_max_completion_tokens_fallback(serve, models) -> None:
    def script(i: int, body: dict[str, Any]) -> Reply:
        if "max_tokens" in body:
            msg = "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
            return Reply(400, json={"error": {"message": msg, "type": "invalid_request_error"}})
        return Reply(json=completion("ok"))

    srv = serve(script)
    m = models(srv)
    assert (await m.generate(REQ)).texts == ["ok"]
    assert (await m.generate(REQ)).texts == ["ok"]
    # The switch is remembered: the second call needs no failed attempt.
    assert len(srv.requests) == 3
    assert srv.requests[2].body["max_completion_tokens"] == 64


# --- errors --------------------------------------------------------------------------------------
async def test_429_with_retry_after_then_success(serve, models) -> None:
    def script(i: int, body: dict[str, Any]) -> Reply:
        if i == 0:
            err = {"error": {"message": "Rate limit reached", "type": "requests"}}
            return Reply(429, json=err, headers={"Retry-After": "0.4"})
        return Reply(json=completion("fine"))

    srv = serve(script)
    m = models(srv, max_retries=3, retry_base=0.001)
    t0 = time.monotonic()
    out = await m.generate(REQ)
    assert out.texts == ["fine"]
    assert len(srv.requests) == 2
    # The wait came from Retry-After, not the (tiny) exponential back-off.
    assert time.monotonic() - t0 >= 0.35


async def test_500_every_time_gives_up_after_retries(serve, models) -> None:
    srv = serve(lambda i, body: Reply(500, json={"error": {"message": "boom"}}))
    m = models(srv, max_retries=2)
    with pytest.raises(TransientModelError) as info:
        await m.generate(REQ)
    assert len(srv.requests) == 3
    assert info.value.status == 500
    assert "openai/gpt-test" in str(info.value) and "500" in str(info.value)


async def test_hang_times_out_and_is_retried(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=completion("late"), hang=3.0))
    m = models(srv, timeout=0.3, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(TransientModelError, match="timed out") as info:
        await m.generate(REQ)
    assert time.monotonic() - t0 < 2.5
    assert len(srv.requests) == 2
    assert "openai/gpt-test" in str(info.value)


async def test_connection_refused_is_transient(models) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = models(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(TransientModelError, match="cannot reach"):
        await m.generate(REQ)


async def test_non_json_body_is_bad_response(serve, models) -> None:
    srv = serve(lambda i, body: Reply(text="<html>502 Bad Gateway from proxy</html>"))
    m = models(srv, max_retries=1)
    with pytest.raises(BadResponseError, match="not JSON") as info:
        await m.generate(REQ)
    assert "openai/gpt-test" in str(info.value)
    assert len(srv.requests) == 2  # a garbled body may be a passing proxy fault: retried


@pytest.mark.parametrize("payload", [{"choices": []}, {"id": "x", "object": "chat.completion"}])
async def test_empty_or_missing_choices_is_bad_response(serve, models, payload) -> None:
    srv = serve(lambda i, body: Reply(json=payload))
    m = models(srv)
    with pytest.raises(BadResponseError, match="choices"):
        await m.generate(REQ)


async def test_401_never_leaks_the_key(serve, models, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    # Real servers echo (part of) the key back; it must not reach our message.
    echo = {
        "error": {"message": f"Incorrect API key provided: {SECRET}.", "code": "invalid_api_key"}
    }
    srv = serve(lambda i, body: Reply(401, json=echo))
    m = models(srv, max_retries=3)
    with pytest.raises(AuthenticationError) as info:
        await m.generate(REQ)
    exc = info.value
    assert srv.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # key was used
    assert len(srv.requests) == 1  # never retried
    for text in (str(exc), repr(exc), str(exc.args), repr(m)):
        assert SECRET not in text
        assert SECRET[:12] not in text
    assert "OPENAI_API_KEY" in str(exc) and "openai/gpt-test" in str(exc)


async def test_403_is_authentication_error(serve, models) -> None:
    srv = serve(lambda i, body: Reply(403, json={"error": {"message": "project lacks access"}}))
    m = models(srv, api_key=SECRET, api_key_env="MY_KEY")
    with pytest.raises(AuthenticationError, match="MY_KEY"):
        await m.generate(REQ)


async def test_other_4xx_is_final(serve, models) -> None:
    srv = serve(lambda i, body: Reply(404, json={"error": {"message": "model not found"}}))
    m = models(srv, max_retries=3)
    with pytest.raises(ModelError, match="model not found") as info:
        await m.generate(REQ)
    assert not info.value.retryable and info.value.status == 404
    assert len(srv.requests) == 1


async def test_insufficient_quota_429_is_not_retried(serve, models) -> None:
    err = {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}
    srv = serve(lambda i, body: Reply(429, json=err))
    m = models(srv, max_retries=3)
    with pytest.raises(ModelError, match="quota") as info:
        await m.generate(REQ)
    assert not info.value.retryable
    assert len(srv.requests) == 1


# --- choice probabilities ------------------------------------------------------------------------
def logprob_reply(top: list[tuple[str, float]]) -> dict[str, Any]:
    body = completion(top[0][0], completion_tokens=1)
    entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
    body["choices"][0]["logprobs"] = {"content": [{**entries[0], "top_logprobs": entries}]}
    return body


MCQ4 = MCQ("Which is prime?", ("4", "6", "7", "9"))
MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Which is prime?\nA. 4"}]


async def test_choice_probs_from_logprobs(serve, models) -> None:
    top = [("C", -0.2), (" A", -2.0), ("A", -3.0), ("(B", -4.0), ("The", -5.0), ("c", -5.5)]
    srv = serve(lambda i, body: Reply(json=logprob_reply(top)))
    m = models(srv)
    assert m.supports_choice_probs
    scores = await m.choice_probs(MSGS, MCQ4)

    # By hand: A has two spellings, D is absent and gets the floor below the smallest shown.
    log_a = math.log(math.exp(-2.0) + math.exp(-3.0))
    floor = -5.5 - LOGPROB_FLOOR_MARGIN
    raw = [math.exp(log_a), math.exp(-4.0), math.exp(-0.2), math.exp(floor)]
    expected = [r / sum(raw) for r in raw]
    assert scores.probs == pytest.approx(expected, rel=1e-9)
    assert scores.usage == Usage(11, 1)

    body = srv.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["max_tokens"] == 1 and body["temperature"] == 0
    assert body["messages"][0] == MSGS[0]
    last = body["messages"][-1]["content"]
    assert last.startswith(MSGS[1]["content"]) and "only the letter" in last
    assert "A, B, C, D" in last


def test_label_probs_without_any_label_is_uniform() -> None:
    assert label_probs([("The", -0.1), ("I", -3.0)], ["A", "B", "C"]) == pytest.approx([1 / 3] * 3)


async def test_no_logprobs_is_unsupported_and_remembered(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=completion("C")))
    m = models(srv, max_retries=2)
    with pytest.raises(UnsupportedError, match="no log-probs") as info:
        await m.choice_probs(MSGS, MCQ4)
    assert "openai/gpt-test" in str(info.value)
    assert m.supports_choice_probs is False
    assert len(srv.requests) == 1  # unsupported is not retried
    with pytest.raises(UnsupportedError):
        await m.choice_probs(MSGS, MCQ4)
    assert len(srv.requests) == 1  # nor asked again


async def test_server_rejecting_logprobs_is_unsupported(serve, models) -> None:
    err = {"error": {"message": "logprobs are not supported for this model"}}
    srv = serve(lambda i, body: Reply(400, json=err))
    m = models(srv)
    with pytest.raises(UnsupportedError):
        await m.choice_probs(MSGS, MCQ4)
    assert m.supports_choice_probs is False


# --- construction --------------------------------------------------------------------------------
def test_openai_without_key_or_base_url_names_the_env_var() -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as info:
        OpenAIModel("openai/gpt-4o-mini", "gpt-4o-mini")
    assert "openai/gpt-4o-mini" in str(info.value)


def test_compatible_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base URL"):
        OpenAIModel("openai-compatible/qwen", "qwen", compatible=True)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="temprature"):
        OpenAIModel("openai/x", "x", api_key="k", temprature=0.1)


async def test_compatible_keyless_via_env_base_url(serve, monkeypatch) -> None:
    srv = serve(lambda i, body: Reply(json=completion("hi")))
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    m = load_model("openai-compatible/qwen2.5", max_retries=0)
    try:
        assert isinstance(m, OpenAIModel)
        assert (await m.generate(REQ)).texts == ["hi"]
    finally:
        await m.aclose()
    assert srv.requests[0].headers["authorization"] == "Bearer not-needed"
    assert srv.requests[0].body["model"] == "qwen2.5"
    assert m.price_per_mtok is None  # a local server costs nothing by default


def test_prices() -> None:
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_for("my-finetune") is None
    m = OpenAIModel("openai/gpt-4o-mini", "gpt-4o-mini", api_key="k")
    assert m.price_per_mtok == (0.15, 0.60)
    m = OpenAIModel("openai/gpt-4o-mini", "gpt-4o-mini", api_key="k", price_per_mtok="1,3")
    assert m.price_per_mtok == (1.0, 3.0)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (retry_after_seconds({"retry-after": future}) or 0) <= 31
