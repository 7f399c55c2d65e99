"""Build a model backend from a ``provider/model`` string; providers register by name.

A provider is a factory ``(spec, name, **options) -> Model`` registered with ``@provider``; the
built-in ones import their SDK only when a model of theirs is built, so listing providers (or
using one) never imports another's heavy dependencies. What the rest of cdvkit needs to know
about a provider (does it take a base URL, does it compute on this machine) is declared here,
never tested by name elsewhere.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cdvkit.allowed import SettingError, check_value
from cdvkit.models.base import Model
from cdvkit.models.errors import BackendUnavailableError
from cdvkit.models.options import (
    EMBED_OPTIONS,
    HF_OPTIONS,
    HOSTED_OPTIONS,
    MODEL_OPTIONS,
    SCRIPTED_OPTIONS,
    Option,
    Options,
)
from cdvkit.registry import PartError, Registry, describe

ModelFactory = Callable[..., Model]


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    factory: ModelFactory
    example: str = ""
    description: str = ""
    needs_modules: tuple[str, ...] = ()
    key_env: str | None = None
    extra: str | None = None
    takes_base_url: bool = False  # --base-url (an OpenAI-compatible server) applies to it
    local: bool = False  # computes in this process (a Ray worker loads its own copy)
    # The role options its backend takes beyond every backend's (MODEL_OPTIONS).
    options: Options = field(default_factory=dict)

    def known_options(self) -> dict[str, Option]:
        return {**MODEL_OPTIONS, **self.options}


def _provider_part(name: str, value: Any) -> ProviderInfo:
    """What a provider registers as: a ProviderInfo (``@provider``), or a Model subclass named
    by an entry point, built as ``cls(spec, name, **options)`` or ``cls.from_spec(...)``."""
    if isinstance(value, ProviderInfo):
        return value
    expected = (
        "a ProviderInfo (register with cdvkit.models.registry.provider) or a Model subclass "
        "taking (spec, name, **options)"
    )
    if not (isinstance(value, type) and issubclass(value, Model)):
        raise PartError(f"expected {expected}, got {describe(value)}")
    if inspect.isabstract(value):
        raise PartError(f"expected {expected}, got {describe(value)}, which has no _generate()")
    make = getattr(value, "from_spec", value)
    try:
        inspect.signature(make).bind("provider/model", "model")
    except TypeError:
        raise PartError(f"expected {expected}, got {describe(value)}, which does not") from None
    doc = (value.__doc__ or "").strip().splitlines()
    return ProviderInfo(name, make, description=doc[0] if doc else "")


PROVIDERS: Registry[ProviderInfo] = Registry(
    "model provider", "cdvkit.providers", accept=_provider_part
)


def provider(
    name: str,
    *,
    example: str = "",
    description: str = "",
    needs_modules: tuple[str, ...] = (),
    key_env: str | None = None,
    extra: str | None = None,
    takes_base_url: bool = False,
    local: bool = False,
    options: Options | None = None,
) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(spec, name, **options) -> Model`` (a Model subclass will do) as the
    provider ``name``, so ``name/<model>`` strings build it. ``options`` declares the role
    options it takes beyond every backend's (cdvkit.models.options.MODEL_OPTIONS), by name:
    a role option no declaration names is refused before anything is built."""

    def add(factory: ModelFactory) -> ModelFactory:
        PROVIDERS.add(
            name,
            ProviderInfo(
                name,
                factory,
                example or f"{name}/<model>",
                description,
                needs_modules,
                key_env,
                extra,
                takes_base_url,
                local,
                dict(options or {}),
            ),
            help=description,
        )
        return factory

    return add


@provider(
    "openai",
    example="openai/gpt-4o-mini",
    description="OpenAI API, or any OpenAI-compatible server with --base-url / OPENAI_BASE_URL",
    needs_modules=("openai",),
    key_env="OPENAI_API_KEY",
    takes_base_url=True,
    options=HOSTED_OPTIONS,
)
def _openai(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.openai_backend import OpenAIModel

    return OpenAIModel(spec, name, **options)


@provider(
    "openai-compatible",
    example="openai-compatible/Qwen2.5-7B-Instruct",
    description="vLLM, Ollama, llama.cpp server, TGI: needs --base-url (key optional)",
    needs_modules=("openai",),
    takes_base_url=True,
    options=HOSTED_OPTIONS,
)
def _openai_compatible(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.openai_backend import OpenAIModel

    return OpenAIModel(spec, name, compatible=True, **options)


@provider(
    "anthropic",
    example="anthropic/claude-3-5-haiku-latest",
    description="Anthropic Messages API",
    needs_modules=("anthropic",),
    key_env="ANTHROPIC_API_KEY",
    extra="anthropic",
    options=HOSTED_OPTIONS,
)
def _anthropic(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.anthropic_backend import AnthropicModel

    return AnthropicModel(spec, name, **options)


@provider(
    "hf",
    example="hf/Qwen/Qwen2.5-0.5B-Instruct",
    description="local transformers causal LM (path or cached hub id); exact choice probabilities",
    needs_modules=("torch", "transformers"),
    extra="local",
    local=True,
    options=HF_OPTIONS,
)
def _hf(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.hf_backend import HFModel

    return HFModel(spec, name, **options)


@provider(
    "embed",
    example="embed/all-MiniLM-L6-v2",
    description="sentence-transformers similarity between question and choices (offline default)",
    needs_modules=("torch", "sentence_transformers"),
    extra="local",
    local=True,
    options=EMBED_OPTIONS,
)
def _embed(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.embed_backend import EmbedModel

    return EmbedModel(spec, name, **options)


@provider(
    "scripted",
    example="scripted/path/to/rules.json",
    description="deterministic replies from a rules file, for tests and dry runs",
    # It stands in for an API model in tests and dry runs, so it is treated as one (not local).
    options=SCRIPTED_OPTIONS,
)
def _scripted(spec: str, name: str, **options: Any) -> Model:
    from cdvkit.models.scripted import ScriptedModel

    return ScriptedModel.from_spec(spec, name, **options)


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
    name, model = spec.split("/", 1)
    if name not in PROVIDERS:
        # A plugin meant to provide it that could not: say which and why, not just "unknown".
        why = PROVIDERS.problem(name)
        raise ValueError(
            why or f"unknown provider {name!r} in {spec!r} (known: {', '.join(PROVIDERS)})"
        )
    if not model:
        raise ValueError(f"model {spec!r} names no model after {name}/")
    return name, model


def is_model(value: str) -> bool:
    """A ``provider/model`` string (a model name may hold ':', e.g. Ollama's llama3.1:8b), as
    opposed to a registered part's ``name:key=value`` spec."""
    return "/" in value.split(":", 1)[0]


def provider_of(spec: str) -> ProviderInfo:
    """The provider a ``provider/model`` string names."""
    return PROVIDERS.get(split_spec(spec)[0])


def load_model(spec: str, **options: Any) -> Model:
    """Create the backend for ``spec``; ``options`` go to the backend (base_url, concurrency...)."""
    name, model = split_spec(spec)
    info = PROVIDERS.get(name)
    known = info.known_options()
    # An option the backend only accepts to ignore (a hosted model's, given to a local one).
    options = {
        k: v for k, v in options.items() if v is not None and not (k in known and known[k].ignored)
    }
    try:
        return info.factory(spec, model, **options)
    except ImportError as exc:
        hint = f"; install it with pip install 'cdvkit[{info.extra}]'" if info.extra else ""
        raise BackendUnavailableError(
            f"provider {name!r} needs {exc.name or exc}{hint}", model=spec
        ) from None


def load_backend(
    spec: str,
    *,
    concurrency: int,
    base_url: str | None = None,
    options: dict[str, Any] | None = None,
) -> Model:
    """The backend a run or an evaluation uses for ``spec``: its concurrency limit, the run's
    ``--base-url`` where the provider takes one (an OpenAI-compatible server; others keep their
    own endpoint), then the role's own options, which win. Nothing is sent."""
    opts: dict[str, Any] = {"concurrency": concurrency}
    if base_url and provider_of(spec).takes_base_url:
        opts["base_url"] = base_url
    return load_model(spec, **{**opts, **(options or {})})


def check_role_options(role: str, options: Any, specs: Iterable[str]) -> None:
    """Check ``[roles.<role>]``'s options against what the providers of ``specs`` (the role's
    models in this run) declare; a role with no model in this run, against any provider's.
    Raises SettingError naming ``roles.ROLE.OPTION`` and the value with what is allowed, or an
    unknown option with the options known."""
    models = sorted(set(specs))
    for key, value in options.items():
        label = f"roles.{role}.{key}"
        if not models:
            # A table kept for a role this run does not use: any provider's option will do.
            every = [PROVIDERS.get(name).known_options() for name in PROVIDERS]
            found = next((o[key] for o in every if key in o), None)
            if found is None:
                known = sorted({k for o in every for k in o})
                raise SettingError(f"{label}: no provider takes it (known: {', '.join(known)})")
            check_value(label, value, found.hint, found.allowed, secret=found.secret)
            continue
        for spec in models:
            known = provider_of(spec).known_options()
            if key not in known:
                raise SettingError(
                    f"{label}: not an option of {spec} (its options: {', '.join(sorted(known))})"
                )
            opt = known[key]
            check_value(label, value, opt.hint, opt.allowed, secret=opt.secret)
