"""`cdv init`: write a commented starter config file for `cdv generate --config`.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
Every value written is read from ``SearchConfig``'s own defaults (and the backends'), so the
file never drifts from what `cdv generate` does without it.
"""

from __future__ import annotations

import inspect
import json
import shlex
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from cdvkit.cli.common import add_command, console
from cdvkit.cli.common import fail as _fail

# Per section: (key, comment, example). The value written is SearchConfig's default; the
# example is shown, commented out, for a setting that is unset (None) by default.
GPT = "openai/gpt-4o-mini"
SECTIONS: list[tuple[str, list[tuple[str, str, Any]]]] = [
    (
        "data",
        [
            ("data", 'a built-in name (`cdv datasets`), "sample", or a JSON/JSONL/CSV file', None),
            ("split", "the split of a built-in dataset (default: its own)", "test"),
            ("limit", "a seeded sample of N questions (default: all)", 100),
            ("seed", "random seed (sampling, shuffled choices, the search's choices)", None),
            ("skip_invalid", "skip and list bad rows instead of stopping at the first", None),
        ],
    ),
    (
        "models: provider/model strings (`cdv models` lists the providers)",
        [
            ("target", "the model under attack", None),
            ("proposer", 'writes the distractions: "template" (offline) or a model', None),
            ("judge", "checks a distraction keeps the answer (default: local checks)", GPT),
            ("extractor", "reads replies the local parser cannot (default: none)", GPT),
            (
                "base_url",
                "an OpenAI-compatible server, e.g. vLLM (default: none)",
                "http://localhost:8000/v1",
            ),
        ],
    ),
    (
        "protocol: how the target is asked, and when it counts as fooled",
        [
            ("protocol", "sample (n answers, fooled when none is right) | exact (argmax)", None),
            ("samples", "answers per question (n)", None),
            ("temperature", "the sampling temperature of those answers", None),
            ("target_prompt", "letter (lettered choices) | paper (the paper's wording)", None),
            ("threshold", "exact: fooled only if P(correct) is also below it (default: none)", 0.5),
        ],
    ),
    (
        "search",
        [
            ("scoring", "the search's cheaper guide: auto | sample | exact", None),
            ("strategy", "best-first | greedy | random (`cdv parts` lists them)", None),
            ("max_expansions", "expansions per question", None),
            ("max_good", "stop a question after this many examples", None),
            ("max_depth", "most distractions stacked on one question", None),
            ("concurrency", "questions searched at once", None),
            ("model_concurrency", "requests in flight per model (see [roles.*])", None),
        ],
    ),
    (
        "budgets: hard ceilings for the whole run (rerun with a higher one to continue)",
        [
            ("max_calls", "paid calls (default: no ceiling)", 1000),
            ("max_cost", "USD, where the price is known (default: no ceiling)", 5.0),
        ],
    ),
    (
        "constraints a distraction must pass",
        [
            ("length_ratio", "at most this many times the parent's length in tokens", None),
            ("similarity_floor", "similarity of original and distracted; 0 turns it off", None),
            ("leak_check", "the distraction must not name the answer nor label options", None),
            ("constraints", 'more checks by name, e.g. ["judge:model=openai/gpt-4o"]', None),
        ],
    ),
]
# A setting a preset also sets is written commented out, so `--preset` still fills it in.
PRESET_KEYS_NOTE = (
    'Lines starting with "# key =" show a value without setting it: remove the "# " to\n'
    "set one. Settings a --preset also sets stay commented, so a preset still applies\n"
    "(precedence: defaults < preset < this file < command line)."
)
COMMENT_AT = 28  # the column comments start at, where the setting is short enough


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _line(key: str, value: Any, comment: str, commented: bool) -> str:
    setting = ("# " if commented else "") + f"{key} = {_toml(value)}"
    return f"{setting.ljust(COMMENT_AT - 1)} # {comment}"


def _role_defaults() -> dict[str, Any]:
    """The per-role options of a hosted / OpenAI-compatible backend, with their defaults."""
    from cdvkit.models.http_api import HostedModel

    params = inspect.signature(HostedModel.__init__).parameters
    return {k: params[k].default for k in ("concurrency", "timeout", "max_retries")}


def starter_config() -> str:
    """The text `cdv init` writes: every main setting with its default, commented."""
    from cdvkit.search.config import SearchConfig
    from cdvkit.search.preset import PRESETS, preset_values
    from cdvkit.version import __version__

    defaults = SearchConfig()
    preset_keys = {k for name in PRESETS for k in preset_values(name)}
    out = [
        f"# cdvkit {__version__} configuration for `cdv generate --config FILE`, written by",
        "# `cdv init`. Each value shown is the default, or an example where a setting is unset by",
        "# default. Options given on the command line win; keys may also sit under [generate].",
        *(f"# {line}" for line in PRESET_KEYS_NOTE.splitlines()),
    ]
    shown = set()
    for title, keys in SECTIONS:
        out += ["", f"# --- {title}"]
        for key, comment, example in keys:
            value = getattr(defaults, key)
            shown.add(key)
            if value is None:
                out.append(_line(key, example, comment, True))
            else:
                out.append(_line(key, value, comment, key in preset_keys))
    roles = _role_defaults()
    roles["concurrency"] = defaults.model_concurrency  # what a role gets unless it sets its own
    out += [
        "",
        "# --- per-role backend options: [roles.target], [roles.proposer], [roles.judge],",
        "# [roles.extractor]. These are a hosted or OpenAI-compatible model's (`cdv models`).",
        "# [roles.target]",
        _line("concurrency", roles["concurrency"], "requests in flight to this model", True),
        _line("timeout", roles["timeout"], "seconds per request", True),
        _line("max_retries", roles["max_retries"], "on 429, 5xx, timeouts, lost connections", True),
        _line("api_key_env", "MY_API_KEY", "the environment variable holding the key", True),
    ]
    rest = [f.name for f in fields(SearchConfig) if f.name not in shown and f.name != "roles"]
    out += ["", "# Also accepted (see `cdv generate --help` and the README):"]
    out += textwrap.wrap(", ".join(rest), width=96, initial_indent="# ", subsequent_indent="# ")
    return "\n".join(out) + "\n"


def init_command(
    path: Annotated[Path, typer.Argument(help="Config file to write.")] = Path("cdv.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file for `cdv generate --config`."""
    from cdvkit.store.outputs import OutputError, write_text

    if path.is_dir():
        raise _fail(f"{path} is a directory; give the config file's name, e.g. {path / 'cdv.toml'}")
    if path.exists() and not force:
        raise _fail(f"{path} already exists; pass --force to overwrite it")
    try:
        # Whole or not at all, and never over a run store (cdvkit.store.outputs).
        write_text(path, starter_config())
    except OutputError as exc:
        raise _fail(str(exc), exc.code) from None
    console.print(f"wrote {path}: edit it, then run:", highlight=False, markup=False)
    # The command whole on its own line, never wrapped, so it pastes as one.
    console.print(
        f"  cdv generate --config {shlex.quote(str(path))}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add `init` to ``app``, replacing any command of that name."""
    add_command(app, "init", init_command)
