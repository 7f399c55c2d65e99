"""`Model.check()`: one request that tells a usable model from a bad key, a dead server or a
model name the server does not serve, against a real HTTP server on loopback."""

from __future__ import annotations

import pytest

from cdvkit.models.anthropic_backend import AnthropicModel
from cdvkit.models.errors import AuthenticationError, ModelError
from cdvkit.models.openai_backend import OpenAIModel
from cdvkit.models.preflight import PreflightError, Wanted, preflight
from loopback_server import Reply, Seen, serving

pytestmark = pytest.mark.timeout(30)

KEY = "sk-preflight-0123456789abcdef"


def no_post(req: Seen) -> Reply:
    raise AssertionError("a check must not pay for a completion")


def openai_model(url: str, name: str = "served") -> OpenAIModel:
    return OpenAIModel(f"openai-compatible/{name}", name, compatible=True, base_url=url)


async def test_a_served_model_passes_and_only_the_model_list_is_asked() -> None:
    listed = Reply(json={"object": "list", "data": [{"id": "served"}, {"id": "other"}]})
    with serving(no_post, get_route=lambda r: listed) as server:
        model = openai_model(server.url)
        await model.check()
        await model.aclose()
        assert [g.path for g in server.gets] == ["/v1/models"] and server.seen() == []


@pytest.mark.parametrize(
    ("get", "error", "needle"),
    [
        (Reply(401, {"error": {"message": f"bad key {KEY}"}}), AuthenticationError, "HTTP 401"),
        (Reply(json={"data": [{"id": "other"}]}), ModelError, "does not serve a model named"),
    ],
)
async def test_a_refused_key_or_an_unknown_model_fails_the_check(
    get: Reply, error: type[Exception], needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with serving(no_post, get_route=lambda r: get) as server:
        model = openai_model(server.url)
        with pytest.raises(error, match=needle) as info:
            await model.check()
        await model.aclose()
    assert KEY not in str(info.value)


@pytest.mark.parametrize("status", [404, 405, 501])
async def test_a_server_without_a_model_list_passes(status: int) -> None:
    # Some proxies have no /models route: that says nothing about the key or the model.
    with serving(no_post, get_route=lambda r: Reply(status, {"error": "no route"})) as server:
        model = openai_model(server.url)
        await model.check()
        await model.aclose()


async def test_the_anthropic_check_names_an_unknown_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    missing = Reply(
        404,
        {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-x"}},
    )
    with serving(no_post, get_route=lambda r: missing) as server:
        model = AnthropicModel("anthropic/claude-x", "claude-x", base_url=server.root)
        with pytest.raises(ModelError, match="knows no model named 'claude-x'"):
            await model.check()
        await model.aclose()
        assert server.gets[0].path == "/v1/models/claude-x"
    with serving(no_post, get_route=lambda r: Reply(json={"id": "claude-x"})) as server:
        model = AnthropicModel("anthropic/claude-x", "claude-x", base_url=server.root)
        await model.check()
        await model.aclose()


async def test_preflight_checks_a_shared_backend_once_and_names_the_role() -> None:
    built: list[str] = []
    listed = Reply(json={"data": [{"id": "served"}]})
    with serving(no_post, get_route=lambda r: listed) as server:

        def build(name: str) -> OpenAIModel:
            built.append(name)
            return openai_model(server.url, name)

        models = await preflight(
            [
                Wanted(
                    "target", "target", "openai-compatible/served", "s", lambda: build("served")
                ),
                Wanted("judge", "judge", "openai-compatible/served", "s", lambda: build("served")),
            ]
        )
        assert models["target"] is models["judge"] and built == ["served"]
        assert len(server.gets) == 1
        with pytest.raises(PreflightError) as info:
            await preflight(
                [Wanted("judge", "judge", "openai-compatible/gpt", "g", lambda: build("gpt"))]
            )
    assert str(info.value).startswith("judge model openai-compatible/gpt: ")
    assert "does not serve a model named 'gpt'" in str(info.value)
