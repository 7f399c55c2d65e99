"""The options a role's backend takes (``[roles.<role>]`` in a config file, ``--set
roles.ROLE.OPTION=VALUE``), each declared once with its type and range.

A provider declares its own with ``@provider(..., options=...)``; the options every backend takes
(the base ``Model``'s concurrency and retry policy) are declared here for all. A run checks each
role's options against its model's provider before any backend is built or anything written
(``cdvkit.models.registry.check_role_options``), so a bad or unknown option is one line naming
``roles.ROLE.OPTION``, never a TypeError inside a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cdvkit.allowed import Allowed


@dataclass(frozen=True)
class Option:
    """One backend option: its type (an annotation), the values it takes, whether its value is
    never shown (``secret``: not even in the message refusing it), and whether the backend takes
    it only to ignore it."""

    hint: Any
    allowed: Allowed | None = None
    secret: bool = False
    ignored: bool = False  # checked, then not handed to the backend (it has no use for it)


Options = Mapping[str, Option]


def _price(value: Any) -> None:
    # Imported here: the hosted backends' module is not needed to declare their options.
    from cdvkit.models.http_api import parse_price

    pin, pout = parse_price(value)
    if min(pin, pout) < 0 or pin != pin or pout != pout:
        raise ValueError(f"price_per_mtok must be two prices of at least 0, got {value!r}")


# Every backend: the base Model's concurrency limit and retry policy.
MODEL_OPTIONS: Options = {
    "concurrency": Option(int, Allowed(min=1)),
    "max_retries": Option(int, Allowed(min=0)),
    "retry_base": Option(float, Allowed(min=0)),
    "retry_max": Option(float, Allowed(min=0)),
    "outage_after": Option(float, Allowed(min=0)),
}
# The hosted-API backends (cdvkit.models.http_api.HostedModel).
HOSTED_OPTIONS: Options = {
    "base_url": Option(str),
    "api_key": Option(str, secret=True),
    "api_key_env": Option(str),
    "timeout": Option(float, Allowed(above=0)),
    # Two numbers, USD per million tokens in and out: [0.15, 0.6] or "0.15,0.6".
    "price_per_mtok": Option(str | list, Allowed(check=_price)),
}
# The local and scripted backends take the hosted ones' options too and ignore them (load_model
# leaves them out), so a role table written for a hosted model still works when the role's
# model is swapped for a local one; their values are still checked.
IGNORED_HOSTED: Options = {k: replace(o, ignored=True) for k, o in HOSTED_OPTIONS.items()}
# A local transformers model (cdvkit.models.hf_backend.HFModel).
HF_OPTIONS: Options = {
    **IGNORED_HOSTED,
    "device": Option(str),
    "dtype": Option(str | None),
    "answer_prefix": Option(str),
    "local_files_only": Option(bool | None),
    "trust_remote_code": Option(bool),
    "temperature": Option(float | None, Allowed(min=0)),
}
# A sentence-transformers similarity model (cdvkit.models.embed_backend.EmbedModel).
EMBED_OPTIONS: Options = {
    **IGNORED_HOSTED,
    "device": Option(str | None),
    "temperature": Option(float, Allowed(above=0)),
}
# Replies from a rules file (cdvkit.models.scripted.ScriptedModel).
SCRIPTED_OPTIONS: Options = {
    **IGNORED_HOSTED,
    "delay": Option(float | None, Allowed(min=0)),
    "log_path": Option(str | None),
}
