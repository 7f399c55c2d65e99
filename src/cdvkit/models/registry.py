"""Build a model backend from a ``provider/model`` string."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from cdvkit.models.base import Model
from cdvkit.models.errors import BackendUnavailableError


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    example: str
    description: str
    needs_modules: tuple[str, ...] = ()
    key_env: str | None = None
    extra: str | None = None


PROVIDERS: dict[str, ProviderInfo] = {
    p.name: p
    for p in [
        ProviderInfo(
            "openai",
            "openai/gpt-4o-mini",
            "OpenAI API, or any OpenAI-compatible server with --base-url / OPENAI_BASE_URL",
            ("openai",),
            "OPENAI_API_KEY",
        ),
        ProviderInfo(
            "openai-compatible",
            "openai-compatible/Qwen2.5-7B-Instruct",
            "vLLM, Ollama, llama.cpp server, TGI: needs --base-url (key optional)",
            ("openai",),
        ),
        ProviderInfo(
            "anthropic",
            "anthropic/claude-3-5-haiku-latest",
            "Anthropic Messages API",
            ("anthropic",),
            "ANTHROPIC_API_KEY",
            "anthropic",
        ),
        ProviderInfo(
            "hf",
            "hf/Qwen/Qwen2.5-0.5B-Instruct",
            "local transformers causal LM (path or cached hub id); exact choice probabilities",
            ("torch", "transformers"),
            extra="local",
        ),
        ProviderInfo(
            "embed",
            "embed/all-MiniLM-L6-v2",
            "sentence-transformers similarity between question and choices (offline default)",
            ("torch", "sentence_transformers"),
            extra="local",
        ),
        ProviderInfo(
            "scripted",
            "scripted/path/to/rules.json",
            "deterministic replies from a rules file, for tests and dry runs",
        ),
    ]
}


def provider_status(info: ProviderInfo) -> tuple[bool, str]:
    """Whether a provider can be used here, and why not. Never reveals a key's value."""
    missing = [m for m in info.needs_modules if importlib.util.find_spec(m) is None]
    if missing:
        hint = f" (pip install 'cdvkit[{info.extra}]')" if info.extra else ""
        return False, f"missing {', '.join(missing)}{hint}"
    if info.key_env and not os.environ.get(info.key_env):
        return False, f"{info.key_env} not set"
    return True, "ready"


def split_spec(spec: str) -> tuple[str, str]:
    if "/" not in spec:
        raise ValueError(
            f"model {spec!r} is not of the form provider/model (providers: {', '.join(PROVIDERS)})"
        )
    provider, name = spec.split("/", 1)
    if provider not in PROVIDERS:
        raise ValueError(
            f"unknown provider {provider!r} in {spec!r} (known: {', '.join(PROVIDERS)})"
        )
    if not name:
        raise ValueError(f"model {spec!r} names no model after {provider}/")
    return provider, name


def load_model(spec: str, **options: Any) -> Model:
    """Create the backend for ``spec``; ``options`` go to the backend (base_url, concurrency...)."""
    provider, name = split_spec(spec)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        if provider in ("openai", "openai-compatible"):
            from cdvkit.models.openai_backend import OpenAIModel

            return OpenAIModel(spec, name, compatible=provider == "openai-compatible", **options)
        if provider == "anthropic":
            from cdvkit.models.anthropic_backend import AnthropicModel

            return AnthropicModel(spec, name, **options)
        if provider == "hf":
            from cdvkit.models.hf_backend import HFModel

            return HFModel(spec, name, **options)
        if provider == "embed":
            from cdvkit.models.embed_backend import EmbedModel

            return EmbedModel(spec, name, **options)
        from cdvkit.models.scripted import ScriptedModel

        return ScriptedModel.from_spec(spec, name, **options)
    except ImportError as exc:
        extra = PROVIDERS[provider].extra
        hint = f"; install it with pip install 'cdvkit[{extra}]'" if extra else ""
        raise BackendUnavailableError(
            f"provider {provider!r} needs {exc.name or exc}{hint}", model=spec
        ) from None
