"""`cdv train`: fine-tune a local model on exported CDV training data (TRL SFT / DPO, LoRA).

Registered on the main app with ``register(app)``; shares ``cdvkit.cli.common`` with the others.
trl and peft are imported only when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from cdvkit.cli.common import USER_ERRORS, console, err
from cdvkit.cli.common import fail as _fail

# `cdv train --help` in panels, each sized by its own longest option name (none cut at 80 columns).
LORA = "LoRA"
TRAINING = "Training"


def train_command(
    data: Annotated[
        Path,
        typer.Option(help="Training JSONL, or a `cdv export --format sft|dpo` folder."),
    ],
    model: Annotated[str, typer.Option(help="Base model: hf/<path-or-id>.")],
    method: Annotated[str, typer.Option(help="sft | dpo")] = "dpo",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where the adapter / model goes (hf/<output>)."),
    ] = None,
    lora: Annotated[
        bool,
        typer.Option(
            "--lora/--no-lora", help="LoRA adapter, or full fine-tuning.", rich_help_panel=LORA
        ),
    ] = True,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Save the LoRA adapter merged into a standalone model.",
            rich_help_panel=LORA,
        ),
    ] = False,
    epochs: Annotated[
        float, typer.Option(help="Passes over the data.", rich_help_panel=TRAINING)
    ] = 3.0,
    max_steps: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many optimizer steps (wins over epochs).",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate (default: 2e-4 SFT / 5e-5 DPO with LoRA, lower full).",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Rows per device per step.", rich_help_panel=TRAINING)
    ] = 4,
    grad_accum: Annotated[
        int, typer.Option(help="Gradient accumulation steps.", rich_help_panel=TRAINING)
    ] = 1,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.", rich_help_panel=LORA)] = 8,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.", rich_help_panel=LORA)] = 16,
    target_modules: Annotated[
        str,
        typer.Option(
            help="LoRA target modules (peft's 'all-linear' or comma-separated).",
            rich_help_panel=LORA,
        ),
    ] = "all-linear",
    beta: Annotated[float, typer.Option(help="DPO beta.", rich_help_panel=TRAINING)] = 0.1,
    max_length: Annotated[
        int, typer.Option(help="Longest tokenized row (prompt+answer).", rich_help_panel=TRAINING)
    ] = 1024,
    seed: Annotated[int, typer.Option(help="Training seed.", rich_help_panel=TRAINING)] = 0,
    device: Annotated[
        str, typer.Option(help="auto (GPU when present) | cpu | cuda", rich_help_panel=TRAINING)
    ] = "auto",
    gradient_checkpointing: Annotated[
        bool,
        typer.Option(
            "--gradient-checkpointing",
            help="Trade compute for GPU memory.",
            rich_help_panel=TRAINING,
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fine-tune a local model on CDV training data; `hf/<output>` then loads the result."""
    from cdvkit.mitigation.train import TrainOptions, train

    name = model.split("/", 1)[1].strip() if model.startswith("hf/") else ""
    if not name:
        raise _fail(
            f"--model {model!r}: cdv train fine-tunes a local transformers model, given as "
            "hf/<path-or-hub-id> (e.g. hf/Qwen/Qwen2.5-0.5B-Instruct or hf/./my-model)"
        )
    modules: Any = target_modules
    if target_modules != "all-linear":
        modules = [m.strip() for m in target_modules.split(",") if m.strip()]
    try:
        opts = TrainOptions(
            data=data,
            model=model,
            method=method,
            output=output,
            lora=lora,
            merge=merge,
            epochs=epochs,
            max_steps=max_steps,
            lr=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            target_modules=modules,
            beta=beta,
            max_length=max_length,
            seed=seed,
            device=device,
            gradient_checkpointing=gradient_checkpointing,
            quiet=quiet or as_json,
        )
        res = train(opts, warn=lambda m: err.print(f"[yellow]warning:[/] {escape(m)}"))
    except (*USER_ERRORS, OSError) as exc:
        # Library errors (a model folder without weights, a hub id not in the offline cache)
        # may run over several lines; the error is one.
        raise _fail(" ".join(str(exc).split()) or type(exc).__name__) from None
    if as_json:
        print(json.dumps(res.to_dict(), indent=2))
        return
    kind = "LoRA adapter" if res.adapter else "model"
    loss = "–" if res.train_loss is None else f"{res.train_loss:.4f}"
    console.print(
        f"{res.method.upper()}: {res.steps} steps on {res.rows} rows ({res.device}, "
        f"{res.seconds:.1f}s), train loss {loss}; {kind} saved to {res.output}",
        highlight=False,
    )
    console.print("load it as:", highlight=False)
    console.print(f"  hf/{res.output}", highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `train` to ``app``."""
    app.command("train")(train_command)
