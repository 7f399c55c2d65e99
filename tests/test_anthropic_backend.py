"""AnthropicModel against a real HTTP server on loopback, scripted per test."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("anthropic")

from cdvkit.models.anthropic_backend import AnthropicModel, price_for, split_system
from cdvkit.models.base import MCQ, GenerateRequest, Usage
from cdvkit.models.errors import (
    AuthenticationError,
    BadResponseError,
    ModelError,
    TransientModelError,
    UnsupportedError,
)
from cdvkit.models.registry import load_model
from loopback_server import LoopbackServer, Reply, Script, scripted_servers

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-ant-api03-SECRETsecret0123456789SECRET"
SPEC = "anthropic/claude-3-5-haiku-latest"


@pytest.fixture
def serve() -> Iterator[Callable[[Script], LoopbackServer]]:
    with scripted_servers() as start:
        yield start


@pytest.fixture
async def models() -> AsyncIterator[Callable[..., AnthropicModel]]:
    made: list[AnthropicModel] = []

    def make(server: LoopbackServer | None = None, **kw: Any) -> AnthropicModel:
        kw.setdefault("max_retries", 0)
        kw.setdefault("retry_base", 0.01)
        if server is not None:
            kw.setdefault("base_url", server.root)  # the SDK adds /v1/messages
        m = AnthropicModel(SPEC, SPEC.split("/", 1)[1], **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        await m.aclose()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def message(text: str, input_tokens: int = 13, output_tokens: int = 5) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-latest",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def error(kind: str, msg: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": msg}}


def sent_key(headers: dict[str, str]) -> str | None:
    # SDK versions differ: x-api-key, or a bearer token.
    auth = headers.get("authorization", "")
    return headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else None)


REQ = GenerateRequest.make(
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "2+2?"},
        {"role": "user", "content": "A. 4\nB. 5"},
    ],
    temperature=0.3,
    max_tokens=50,
    stop=("\n\n", "END"),
)


async def test_answer_with_usage_and_request_shape(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=message("Answer: A")))
    m = models(srv, api_key=SECRET)
    out = await m.generate(REQ)
    assert out.texts == ["Answer: A"]
    assert out.usage == Usage(13, 5)
    assert m.cost(out.usage) == pytest.approx((13 * 0.80 + 5 * 4.00) / 1e6)
    (req,) = srv.requests
    assert req.path == "/v1/messages"
    assert sent_key(req.headers) == SECRET
    body = req.body
    assert body["model"] == "claude-3-5-haiku-latest"
    assert body["system"] == "be brief"
    # Consecutive user turns merged; the system message is not a turn.
    assert body["messages"] == [{"role": "user", "content": "2+2?\n\nA. 4\nB. 5"}]
    assert body["max_tokens"] == 50 and body["temperature"] == 0.3
    assert body["stop_sequences"] == ["END"]  # whitespace-only stops are refused by the API


async def test_n_samples_are_n_requests(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=message(f"s{i}", 10, 2)))
    m = models(srv)
    out = await m.generate(REQ, 3)
    assert sorted(out.texts) == ["s0", "s1", "s2"]
    assert out.usage == Usage(30, 6)
    assert len(srv.requests) == 3


async def test_one_failed_sample_fails_the_call(serve, models) -> None:
    def script(i: int, body: dict[str, Any]) -> Reply:
        if i == 1:
            return Reply(400, json=error("invalid_request_error", "bad thing"))
        return Reply(json=message("ok"))

    srv = serve(script)
    m = models(srv)
    with pytest.raises(ModelError, match="bad thing"):
        await m.generate(REQ, 3)


async def test_json_mode_asks_in_the_system_prompt(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=message("{}")))
    m = models(srv)
    await m.generate(GenerateRequest.make([{"role": "user", "content": "x"}], json_mode=True))
    assert "JSON" in srv.requests[0].body["system"]


async def test_model_refusing_temperature_falls_back_to_its_default(serve, models) -> None:
    def script(i: int, body: dict[str, Any]) -> Reply:
        if "temperature" in body:
            msg = "`temperature` is deprecated for this model."
            return Reply(400, json=error("invalid_request_error", msg))
        return Reply(json=message("ok"))

    srv = serve(script)
    m = models(srv)
    assert (await m.generate(REQ)).texts == ["ok"]
    assert (await m.generate(REQ)).texts == ["ok"]
    # Learnt once: the second call goes straight through without temperature.
    assert ["temperature" in r.body for r in srv.requests] == [True, False, False]


async def test_429_with_retry_after_then_success(serve, models) -> None:
    def script(i: int, body: dict[str, Any]) -> Reply:
        if i == 0:
            return Reply(
                429, json=error("rate_limit_error", "slow down"), headers={"retry-after": "0.4"}
            )
        return Reply(json=message("fine"))

    srv = serve(script)
    m = models(srv, max_retries=3, retry_base=0.001)
    t0 = time.monotonic()
    assert (await m.generate(REQ)).texts == ["fine"]
    assert len(srv.requests) == 2
    assert time.monotonic() - t0 >= 0.35


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_give_up_after_retries(serve, models, status) -> None:
    srv = serve(lambda i, body: Reply(status, json=error("overloaded_error", "Overloaded")))
    m = models(srv, max_retries=2)
    with pytest.raises(TransientModelError) as info:
        await m.generate(REQ)
    assert len(srv.requests) == 3
    assert info.value.status == status and SPEC in str(info.value)


async def test_hang_times_out_and_is_retried(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=message("late"), hang=3.0))
    m = models(srv, timeout=0.3, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(TransientModelError, match="timed out"):
        await m.generate(REQ)
    assert time.monotonic() - t0 < 2.5
    assert len(srv.requests) == 2


async def test_non_json_body_is_bad_response(serve, models) -> None:
    srv = serve(lambda i, body: Reply(text="upstream connect error"))
    m = models(srv)
    with pytest.raises(BadResponseError, match="not JSON") as info:
        await m.generate(REQ)
    assert SPEC in str(info.value)


async def test_body_without_content_is_bad_response(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json={"id": "msg_1", "type": "message"}))
    m = models(srv)
    with pytest.raises(BadResponseError, match="no message"):
        await m.generate(REQ)


async def test_empty_content_is_an_empty_answer(serve, models) -> None:
    body = message("")
    body["content"] = []
    srv = serve(lambda i, b: Reply(json=body))
    m = models(srv)
    assert (await m.generate(REQ)).texts == [""]


async def test_401_never_leaks_the_key(serve, models, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    srv = serve(
        lambda i, body: Reply(
            401, json=error("authentication_error", f"invalid x-api-key {SECRET}")
        )
    )
    m = models(srv, max_retries=3)
    with pytest.raises(AuthenticationError) as info:
        await m.generate(REQ)
    exc = info.value
    assert sent_key(srv.requests[0].headers) == SECRET  # the env key was sent
    assert len(srv.requests) == 1
    for text in (str(exc), repr(exc), str(exc.args), repr(m)):
        assert SECRET not in text and SECRET[:14] not in text
    assert "ANTHROPIC_API_KEY" in str(exc) and SPEC in str(exc)


async def test_other_4xx_is_final(serve, models) -> None:
    srv = serve(lambda i, body: Reply(400, json=error("invalid_request_error", "credit too low")))
    m = models(srv, max_retries=3)
    with pytest.raises(ModelError, match="credit too low") as info:
        await m.generate(REQ)
    assert not info.value.retryable and len(srv.requests) == 1


async def test_no_choice_probs(serve, models) -> None:
    srv = serve(lambda i, body: Reply(json=message("A")))
    m = models(srv)
    assert not m.supports_choice_probs
    with pytest.raises(UnsupportedError):
        await m.choice_probs([{"role": "user", "content": "q"}], MCQ("q", ("a", "b")))
    assert srv.requests == []


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY") as info:
        AnthropicModel(SPEC, "claude-3-5-haiku-latest")
    assert SPEC in str(info.value)


async def test_through_the_registry(serve, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    srv = serve(lambda i, body: Reply(json=message("hello")))
    m = load_model(SPEC, base_url=srv.root, max_retries=0, price_per_mtok=[1, 2])
    try:
        assert isinstance(m, AnthropicModel)
        assert (await m.generate(REQ)).texts == ["hello"]
        assert m.price_per_mtok == (1.0, 2.0)
    finally:
        await m.aclose()


def test_helpers() -> None:
    assert price_for("claude-3-5-haiku-20241022") == (0.80, 4.00)
    assert price_for("claude-sonnet-4-5-20250929") == (3.00, 15.00)
    assert price_for("claude-sonnet-4-20250514") == (3.00, 15.00)
    assert price_for("someone-elses-model") is None
    system, turns = split_system(
        [
            {"role": "system", "content": "a"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "r"},
            {"role": "system", "content": "b"},
            {"role": "user", "content": "q2"},
        ]
    )
    assert system == "a\n\nb"
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
