"""What every export format shares: the registry of formats, their result, and the rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.data.question import MULTIPLE_CHOICE
from cdvkit.registry import Registry
from cdvkit.store import RunStore


@dataclass(frozen=True)
class Exporter:
    """An export format: ``write(store, path, **options)``, the name it writes by default, and
    whether it writes a folder (else one file), so a path of the wrong kind is refused first."""

    write: Callable[..., ExportResult]
    default_name: str
    folder: bool = False


# Formats register by name (``cdv export --format NAME``); a new format is one module.
EXPORTERS: Registry[Exporter] = Registry("export format", "cdvkit.exporters")


def exporter(
    name: str, default_name: str, *, help: str = "", folder: bool = False
) -> Callable[[Any], Any]:
    """Register ``write(store, path, **options) -> ExportResult`` as the format ``name``
    (``folder``: it writes a folder). A writer should write through ``cdvkit.store.outputs``
    (``atomic_file``, ``atomic_folder``) so its output is whole or absent."""

    def add(write: Callable[..., ExportResult]) -> Callable[..., ExportResult]:
        EXPORTERS.add(name, Exporter(write, default_name, folder), help=help)
        return write

    return add


@dataclass
class ExportResult:
    path: Path
    count: int  # examples written (questions for the reference format)
    files: list[Path] = field(default_factory=list)


def example_rows(store: RunStore) -> list[dict[str, Any]]:
    """The run's examples with the target they were found against, so a file on its own still
    says which model it fools (evaluation uses it as the transfer matrix row).

    Free-form rows (numeric, short answer) carry ``task`` and ``references`` besides; a
    multiple-choice row is as it always was.
    """
    target = (store.get_config() or {}).get("target")
    return [{**ex, "target": target} for ex in store.examples()]


def row_task(row: dict[str, Any]) -> str:
    """An example row's task shape (a row without one is multiple choice)."""
    return row.get("task") or MULTIPLE_CHOICE
