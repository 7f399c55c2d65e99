"""Loading a local causal LM and its tokenizer: device, dtype, PEFT adapters, clear errors.

Everything that depends on the installed torch / transformers / peft versions is here, so the
model (``hf_backend``) runs inference on whatever this returns without knowing how it was found.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from cdvkit.models.errors import BackendUnavailableError

# Loading is not thread-safe: transformers' lazy first import fails in a second thread while the
# first is still importing, and from_pretrained builds models under a process-wide "meta" default
# device, so two models loading at once in worker threads (hf/base and hf/trained evaluated in
# one command) catch each other's meta tensors. Loads take turns; inference does not.
LOAD_LOCK = threading.Lock()


def load_weights(
    source: str,
    *,
    name: str,
    device: str | None,
    dtype: str | None,
    local_files_only: bool,
    trust_remote_code: bool,
) -> tuple[Any, Any, Any]:
    """The model (in eval mode, on its device), its tokenizer and the device, from ``source``:
    a model directory, a PEFT adapter directory or a hub id in the local cache. Hold LOAD_LOCK.

    Raises BackendUnavailableError naming the model ``name`` when anything is missing.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailableError(
            f"hf/ needs {exc.name or exc}; pip install 'cdvkit[local]'", model=name
        ) from None
    picked = _pick_device(torch, device, name)
    common = {
        "local_files_only": local_files_only,
        "trust_remote_code": trust_remote_code,
    }
    adapter = adapter_base(source)
    try:
        tok_source = source if _has_tokenizer(source) or not adapter else adapter
        tokenizer = AutoTokenizer.from_pretrained(tok_source, **common)
        model = AutoModelForCausalLM.from_pretrained(
            adapter or source,
            **{dtype_kwarg(): _pick_dtype(torch, picked, dtype, name)},
            **common,
        )
        if adapter:
            model = _apply_adapter(model, source)
    except BackendUnavailableError:
        raise
    except Exception as exc:
        if adapter:
            where = f" (a PEFT adapter on the base model {adapter!r})"
        elif Path(source).exists():
            where = ""
        elif local_files_only:
            where = " (not a local directory, and not in the local Hugging Face cache)"
        else:
            where = " (not a local directory, the local cache or the hub)"
        raise BackendUnavailableError(
            f"cannot load {source!r}{where}: {type(exc).__name__}: {exc}",
            model=name,
        ) from exc
    model.to(picked)
    model.eval()
    return model, tokenizer, picked


def _pick_device(torch: Any, option: str | None, name: str) -> Any:
    if option in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(option)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"device {option!r} asked for but CUDA is not available",
            model=name,
        )
    return device


def _pick_dtype(torch: Any, device: Any, option: str | None, name: str) -> Any:
    if option is None:
        # Float32 on CPU: half precision is slow there and blurs the exact probabilities.
        return torch.float32 if device.type == "cpu" else "auto"
    if option == "auto":
        return "auto"
    dtype = getattr(torch, option, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {option!r} for {name}")
    return dtype


def adapter_base(source: str) -> str | None:
    """The base model a PEFT adapter directory names, or None for an ordinary model.

    ``cdv train`` saves LoRA adapters this way (``adapter_config.json`` naming the base model),
    so ``hf/<output>`` works without merging. A directory that also holds a ``config.json`` is a
    full model (e.g. merged weights) and loads as one.
    """
    path = Path(source)
    cfg_file = path / "adapter_config.json"
    if not cfg_file.is_file() or (path / "config.json").is_file():
        return None
    try:
        base = json.loads(cfg_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    if not base:
        raise BackendUnavailableError(
            f"{cfg_file} names no base model (base_model_name_or_path)", model=f"hf/{source}"
        )
    if not Path(base).is_absolute() and (path / base).exists():
        base = str((path / base).resolve())  # a base saved relative to the adapter
    return str(base)


def _has_tokenizer(source: str) -> bool:
    path = Path(source)
    return any(
        (path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")
    )


def _apply_adapter(model: Any, adapter_dir: str) -> Any:
    try:
        from peft import PeftModel
    except ImportError:
        raise BackendUnavailableError(
            f"{adapter_dir} is a PEFT adapter; loading it needs peft: pip install 'cdvkit[train]'",
            model=f"hf/{adapter_dir}",
        ) from None
    # Merged into the weights once at load: inference then runs the plain model, as fast as the
    # base, and every code path below sees an ordinary transformers model.
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()


def dtype_kwarg() -> str:
    """``dtype`` since transformers 4.56; earlier releases silently ignore it and need
    ``torch_dtype``, which 5.x no longer reads."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
