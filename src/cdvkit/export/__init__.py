"""Export CDV examples: JSONL, Hugging Face datasets, the reference's JSON, lm-eval tasks, and
(registered by cdvkit.mitigation) SFT / DPO training data; any format registered in EXPORTERS."""

from typing import Any

from cdvkit.export import formats
from cdvkit.export.formats import (
    EXPORTERS,
    Exporter,
    ExportResult,
    FormatOption,
    example_rows,
    export_hf,
    export_jsonl,
    export_lm_eval,
    export_reference,
    export_run,
    export_text,
    exporter,
    reference_entries,
    text_format,
)

__all__ = [
    "DEFAULT_NAMES",  # these three: read from the registry when asked (__getattr__)
    "EXPORTERS",
    "FORMATS",
    "TEXT_EXPORTS",
    "ExportResult",
    "Exporter",
    "FormatOption",
    "example_rows",
    "export_hf",
    "export_jsonl",
    "export_lm_eval",
    "export_reference",
    "export_run",
    "export_text",
    "exporter",
    "reference_entries",
    "text_format",
]


def __getattr__(name: str) -> Any:
    # The registry's current formats, when asked: a format registered later (sft, dpo, a
    # plugin's) is among them, and importing this package loads none of them.
    if name in ("FORMATS", "DEFAULT_NAMES", "TEXT_EXPORTS"):
        return getattr(formats, name)
    raise AttributeError(name)
