"""Export CDV examples: JSONL, Hugging Face datasets, the reference's JSON, lm-eval tasks."""

from cdvkit.export.formats import (
    DEFAULT_NAMES,
    EXPORTERS,
    FORMATS,
    TEXT_EXPORTS,
    Exporter,
    ExportResult,
    example_rows,
    export_hf,
    export_jsonl,
    export_lm_eval,
    export_reference,
    export_run,
    export_text,
    exporter,
    reference_entries,
)

__all__ = [
    "DEFAULT_NAMES",
    "EXPORTERS",
    "FORMATS",
    "TEXT_EXPORTS",
    "ExportResult",
    "Exporter",
    "example_rows",
    "export_hf",
    "export_jsonl",
    "export_lm_eval",
    "export_reference",
    "export_run",
    "export_text",
    "exporter",
    "reference_entries",
]
