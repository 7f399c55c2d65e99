"""`cdv prompts`: the templates a run asks every role with, as a prompts file to edit.

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cdvkit.cli.common import USER_ERRORS, add_command, fail
from cdvkit.prompts.spec import PLACEHOLDERS
from cdvkit.prompts.templates import PromptSet, role_of


def templates_in_use(cfg: Any, task: str = "multiple_choice") -> list[str]:
    """The templates a search with settings ``cfg`` renders for questions of shape ``task``."""
    from cdvkit.search.build import proposer_style
    from cdvkit.search.proposers import rewrites
    from cdvkit.tasks import shape_of

    shape = shape_of(task)
    names = [shape.template(role, cfg.target_prompt) for role in ("target", "extractor")]
    if rewrites(cfg.proposer):
        from cdvkit.registry import parse_spec

        names.append(f"rewrite.{parse_spec(cfg.proposer)[0].replace('-', '_')}")
    else:
        batch, prompt = proposer_style(cfg)
        variant = "paper" if prompt == "paper" else "batch" if batch else "one"
        names.append(shape.template("proposer", variant))
        if not shape.has_choices:
            names.append(shape.template("wrong_answers"))
    names.append(shape.template("judge", cfg.judge_prompt))
    if not shape.has_choices:
        names.append(shape.template("grader"))
    return names


def prompts(
    prompts_file: Annotated[
        Path | None,
        typer.Option("--prompts", help="A prompts file (TOML) replacing any template."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="A `cdv generate` config file.")] = None,
    preset: Annotated[
        str | None, typer.Option(help="A preset: efficient | paper | reference.")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="Show the templates a stored run was made with.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any other setting, KEY=VALUE (e.g. target-prompt=paper)."),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            help="The question shape: multiple_choice | numeric | short_answer | a plugin's."
        ),
    ] = "multiple_choice",
    all_: Annotated[
        bool, typer.Option("--all", help="Every template, not only those the settings use.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the templates as JSON.")] = False,
) -> None:
    """Print the templates in effect as a prompts file, to edit and pass to --prompts.

    Copy it, edit any text or how a reply is read, and pass it back with
    `cdv generate --prompts FILE`.
    """
    from cdvkit.protocol import prompts_from_config
    from cdvkit.search.config import SearchConfig, parse_settings

    try:
        if run is not None:
            from cdvkit.store import RunStore

            with RunStore(run, readonly=True, lock=False) as store:
                stored = store.get_config() or {}
            cfg: Any = SearchConfig(
                **{k: v for k, v in stored.items() if k in SearchConfig.__dataclass_fields__}
            )
            found: PromptSet = prompts_from_config(stored)
        else:
            overrides: dict[str, Any] = parse_settings(set_ or [])
            if prompts_file is not None:
                overrides["prompts"] = prompts_file
            if preset is not None:
                overrides["preset"] = preset
            if overrides.get("preset") == "paper":
                # Only the templates are wanted here, not a runnable configuration.
                overrides.setdefault("extractor", "scripted/none")
            cfg = SearchConfig.from_sources(config, **overrides)
            found = cfg.prompt_set()
        from cdvkit.search.setting import task_key
        from cdvkit.tasks import shape_names

        task = task_key(task)
        if task not in shape_names():
            raise ValueError(f"--task must be one of {', '.join(shape_names())}")
    except (*USER_ERRORS, OSError) as exc:
        raise fail(str(exc)) from None
    names = found.names() if all_ else templates_in_use(cfg, task)
    if as_json:
        out = {
            n: {**found[n].to_dict(), "placeholders": list(PLACEHOLDERS[role_of(n)])} for n in names
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return
    # Plain print: the text is a file to paste, so no markup may be read into it.
    print(found.to_toml(names), end="")


def register(app: typer.Typer) -> None:
    """Add `prompts` to ``app``, replacing any command of that name."""
    add_command(app, "prompts", prompts)
