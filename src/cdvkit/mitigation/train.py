"""Fine-tune a local causal LM on exported CDV training data with TRL (SFT or DPO), LoRA by default.

The output directory loads back with ``hf/<output>``:

- LoRA (default): a PEFT adapter (``adapter_config.json`` + weights) and the tokenizer. The
  ``hf/`` backend sees ``adapter_config.json``, loads the base model it names (recorded as an
  absolute path when the base was a local directory) and applies the adapter.
- LoRA with ``merge=True``: the adapter merged into the base weights, saved as a standalone
  model with its tokenizer (the adapter alone is kept under ``adapter/``). Nothing else has to
  exist at load time, which makes it the form to copy to another machine.
- ``lora=False``: full fine-tuning, a standalone model.

trl and peft are heavy optional dependencies (the ``train`` extra): they are imported only when
training starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdvkit.mitigation.training_data import TRAIN_FILE
from cdvkit.store.outputs import check_output, run_dir_of

METHODS = ("sft", "dpo")
TRAIN_INFO_FILE = "cdv_train.json"
ADAPTER_CONFIG = "adapter_config.json"
EXTRA_HINT = "pip install 'cdvkit[train]'"

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    data: str | Path
    model: str
    method: str = "dpo"
    output: str | Path | None = None
    lora: bool = True
    merge: bool = False
    epochs: float = 3.0
    max_steps: int | None = None
    lr: float | None = None  # None: a default per method and LoRA / full fine-tuning
    batch_size: int = 4
    grad_accum: int = 1
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    beta: float = 0.1  # DPO: how far the policy may move from the reference
    max_length: int | None = 1024
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.merge and not self.lora:
            raise ValueError("--merge merges a LoRA adapter; it needs --lora")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("--max-steps must be at least 1")
        if self.epochs <= 0:
            raise ValueError("--epochs must be positive")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("--device must be auto, cpu or cuda")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        # LoRA updates few weights and tolerates (needs) larger steps than full fine-tuning;
        # DPO moves a model further per step than SFT at the same rate.
        if self.lora:
            return 2e-4 if self.method == "sft" else 5e-5
        return 2e-5 if self.method == "sft" else 1e-6


@dataclass
class TrainResult:
    output: Path
    method: str
    rows: int
    steps: int
    train_loss: float | None
    seconds: float
    adapter: bool  # the output is a PEFT adapter (hf/ loads its base, then the adapter)
    device: str

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "output": str(self.output)}


def model_path(spec: str) -> str:
    """``hf/<path-or-id>`` or a bare path / hub id; a local directory becomes absolute, so the
    adapter's record of its base model still resolves from another working directory."""
    name = spec.split("/", 1)[1] if spec.startswith("hf/") else spec
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ValueError(f"{p} is a file; the model must be a directory or a hub id")
        return str(p.resolve())
    if name.startswith(("/", "./", "../", "~")):
        raise FileNotFoundError(f"no model directory at {p}")
    return name


def _require_train_extra() -> tuple[Any, Any, Any]:
    try:
        import peft
        import torch
        import trl
    except ImportError as exc:
        raise ImportError(
            f"cdv train needs {exc.name or 'trl and peft'} (the 'train' extra): {EXTRA_HINT}"
        ) from None
    return torch, trl, peft


def read_rows(data: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """Rows of a JSONL file, or of ``train.jsonl`` in an export directory."""
    p = Path(data)
    if p.is_dir():
        p = p / TRAIN_FILE
    if not p.is_file():
        raise FileNotFoundError(f"training data {p} not found (give a JSONL file or an export dir)")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} line {n} is not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{p} line {n} is not a JSON object")
        rows.append(row)
    if not rows:
        raise ValueError(f"{p} holds no training rows")
    return rows, p


def check_columns(rows: list[dict[str, Any]], method: str, where: Path | str) -> None:
    first = rows[0]
    if method == "dpo":
        needed = {"prompt", "chosen", "rejected"}
        if not needed <= set(first):
            raise ValueError(
                f"{where} is not DPO data (rows need prompt, chosen, rejected; found "
                f"{', '.join(sorted(first))}): export it with `cdv export RUN --format dpo`"
            )
    elif not ({"prompt", "completion"} <= set(first) or "messages" in first):
        raise ValueError(
            f"{where} is not SFT data (rows need prompt and completion, or messages; found "
            f"{', '.join(sorted(first))}): export it with `cdv export RUN --format sft`"
        )


def _is_chat(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


def _merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    from cdvkit.models.hf_text import merge_system as merge

    return merge(messages)


def _reply(value: Any) -> str:
    """The text of a completion given as a string or as a list of assistant messages."""
    if _is_chat(value):
        return "".join(str(m.get("content", "")) for m in value)
    return str(value)


def fit_rows_to_tokenizer(
    rows: list[dict[str, Any]], method: str, tokenizer: Any, warn: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Rows rendered the way the ``hf/`` backend will prompt this model at evaluation.

    The backend applies the tokenizer's chat template when it has one, else its plain
    "role: content" rendering. Conversational rows therefore stay conversational for a chat
    model (TRL applies the same template), and are rendered plain for a model without one. A
    template that refuses a system turn gets it folded into the user turn, as the backend does.
    SFT ``messages`` rows become prompt/completion, so the loss covers the answer only.
    """
    from cdvkit.models.hf_text import render_plain

    templated = bool(getattr(tokenizer, "chat_template", None))
    prompt_key = "messages" if method == "sft" and "messages" in rows[0] else "prompt"
    chat = _is_chat(rows[0][prompt_key])
    if not chat:
        if templated:
            warn(
                "the data's prompts are plain text but this model has a chat template, which "
                "hf/ uses when it evaluates; export with --chat so training matches evaluation"
            )
        return rows
    fold = False
    if templated:
        probe = [dict(m) for m in rows[0][prompt_key]]
        try:
            tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
        except Exception:
            fold = True  # e.g. a template that rejects the system role
    out = []
    for row in rows:
        row = dict(row)
        if prompt_key == "messages":
            msgs = [dict(m) for m in row.pop("messages")]
            if not msgs or msgs[-1].get("role") != "assistant":
                raise ValueError("SFT messages must end with the assistant's answer")
            row["prompt"], row["completion"] = msgs[:-1], msgs[-1:]
        if templated:
            if fold:
                row["prompt"] = _merge_system(row["prompt"])
        else:
            row["prompt"] = render_plain(row["prompt"])
            for key in ("completion", "chosen", "rejected"):
                if key in row:
                    row[key] = " " + _reply(row[key])
        out.append(row)
    return out


def _config_kwargs(cls: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """Only the fields this TRL release knows: names differ a little between releases."""
    known = {f.name for f in dataclasses.fields(cls)}
    wanted = dict(wanted)
    if "activation_checkpointing" not in known and "activation_checkpointing" in wanted:
        wanted["gradient_checkpointing"] = wanted.pop("activation_checkpointing")
    return {k: v for k, v in wanted.items() if k in known}


@contextlib.contextmanager
def _quiet_libraries(quiet: bool) -> Iterator[None]:
    """Silence datasets' and transformers' progress bars and warnings while training quietly."""
    if not quiet:
        yield
        return
    import datasets
    import transformers

    bars = datasets.is_progress_bar_enabled()
    verbosity = transformers.logging.get_verbosity()
    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if bars:
            datasets.enable_progress_bars()
        transformers.logging.enable_progress_bar()
        transformers.logging.set_verbosity(verbosity)


def train(opts: TrainOptions, *, warn: Callable[[str], None] | None = None) -> TrainResult:
    """Train and save; see the module docstring for what the output directory holds."""
    # The data first: a wrong path or format is reported before the slow import of TRL.
    rows, data_file = read_rows(opts.data)
    check_columns(rows, opts.method, data_file)
    # Never over a run store, nor inside a run other than the one the data was exported from.
    output = opts.output or Path("runs") / f"trained-{opts.method}"
    check_output(output, run=run_dir_of(data_file), folder=True)
    _require_train_extra()
    with _quiet_libraries(opts.quiet), warnings.catch_warnings():
        # Library notices about their own internals, not about the user's data or settings.
        for pattern in (".*fan_in_fan_out.*", ".*is_gradient_checkpointing.*"):
            warnings.filterwarnings("ignore", message=pattern)
        return _train(opts, rows, data_file, warn or log.warning)


def _load(spec: str, load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``load(*args, **kwargs)``; a model or tokenizer that cannot be loaded is a ValueError
    naming the model, in one line (transformers' own messages run over several)."""
    try:
        return load(*args, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load {spec}: {' '.join(str(exc).split())}") from None


def _train(
    opts: TrainOptions, rows: list[dict[str, Any]], data_file: Path, warn: Callable[[str], None]
) -> TrainResult:
    torch, trl, peft = _require_train_extra()
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cdvkit.models.hf_loading import dtype_kwarg

    base = model_path(opts.model)
    output = Path(opts.output) if opts.output else Path("runs") / f"trained-{opts.method}"
    if output.exists() and any(output.iterdir()) and not (output / TRAIN_INFO_FILE).exists():
        raise ValueError(f"{output} exists and is not a cdv train output; choose another --output")
    cuda = torch.cuda.is_available()
    if opts.device == "cuda" and not cuda:
        raise RuntimeError("--device cuda asked for but CUDA is not available")
    use_cpu = opts.device == "cpu" or not cuda
    bf16 = (not use_cpu) and torch.cuda.is_bf16_supported()
    tokenizer = _load(opts.model, AutoTokenizer.from_pretrained, base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Float32 on CPU (half precision is slow there); the checkpoint's own dtype on GPU, where
    # mixed precision does the rest.
    dtype = torch.float32 if use_cpu else "auto"
    model = _load(opts.model, AutoModelForCausalLM.from_pretrained, base, **{dtype_kwarg(): dtype})
    rows = fit_rows_to_tokenizer(rows, opts.method, tokenizer, warn)
    dataset = datasets.Dataset.from_list(rows)

    common = {
        "output_dir": str(output),
        "num_train_epochs": opts.epochs,
        "max_steps": opts.max_steps if opts.max_steps is not None else -1,
        "learning_rate": opts.learning_rate,
        "per_device_train_batch_size": opts.batch_size,
        "gradient_accumulation_steps": opts.grad_accum,
        "logging_steps": opts.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "seed": opts.seed,
        "use_cpu": use_cpu,
        "bf16": bf16,
        "fp16": False,
        # transformers 5 renamed gradient_checkpointing (TRL defaults it to on) and warns on
        # the old name; whichever this release has is set, so the choice is ours.
        "activation_checkpointing": opts.gradient_checkpointing,
        "disable_tqdm": opts.quiet,
        "max_length": opts.max_length,
        "dataloader_pin_memory": not use_cpu,
    }
    peft_config = None
    if opts.lora:
        peft_config = peft.LoraConfig(
            r=opts.lora_r,
            lora_alpha=opts.lora_alpha,
            lora_dropout=opts.lora_dropout,
            target_modules=opts.target_modules,
            task_type="CAUSAL_LM",
        )
    if opts.method == "dpo":
        args = trl.DPOConfig(**_config_kwargs(trl.DPOConfig, {**common, "beta": opts.beta}))
        trainer = trl.DPOTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    else:
        wanted = {**common, "completion_only_loss": True}
        args = trl.SFTConfig(**_config_kwargs(trl.SFTConfig, wanted))
        trainer = trl.SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    if opts.quiet:
        # With tqdm off, transformers prints every log dict to stdout, which would break
        # `cdv train --json`.
        from transformers import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    start = time.monotonic()
    result = trainer.train()
    seconds = time.monotonic() - start
    output.mkdir(parents=True, exist_ok=True)
    trained = trainer.model
    if opts.lora and opts.merge:
        trained.save_pretrained(str(output / "adapter"))
        merged = trained.merge_and_unload()
        merged.save_pretrained(str(output))
    else:
        trained.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    adapter = (output / ADAPTER_CONFIG).is_file()
    res = TrainResult(
        output=output,
        method=opts.method,
        rows=len(rows),
        steps=int(trainer.state.global_step),
        train_loss=float(result.training_loss) if result.training_loss is not None else None,
        seconds=round(seconds, 2),
        adapter=adapter,
        device="cpu" if use_cpu else "cuda",
    )
    info = {
        **res.to_dict(),
        "base_model": base,
        "data": str(data_file.resolve()),
        "lora": opts.lora,
        "merged": opts.merge,
        "learning_rate": opts.learning_rate,
        "epochs": opts.epochs,
        "max_steps": opts.max_steps,
        "lora_r": opts.lora_r if opts.lora else None,
        "lora_alpha": opts.lora_alpha if opts.lora else None,
        "beta": opts.beta if opts.method == "dpo" else None,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "created": time.time(),
    }
    (output / TRAIN_INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return res
