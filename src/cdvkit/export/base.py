"""What every export format shares: the registry of formats, their options, their result, and
the rows.

A format is one ``@exporter`` (or ``@text_format``) in any module: ``cdv export --format NAME``
takes it by name, with its declared options as flags (the built-in ones) or as
``--format NAME:key=value``; ``cdv export --help`` and ``cdv parts`` list it with its options;
one that writes text also goes to stdout with ``-o -``. Another package adds one through the
entry point group ``cdvkit.exporters``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdvkit.allowed import Allowed, SettingError, check_value
from cdvkit.registry import Registry, instance_of
from cdvkit.store import RunStore
from cdvkit.store.outputs import write_text


@dataclass
class ExportResult:
    path: Path
    count: int  # examples written (questions for the reference format)
    files: list[Path] = field(default_factory=list)
    # What the command says once it is written: ``headline`` in place of "wrote N <what> to
    # PATH", then ``notes`` (how to use what was written).
    headline: str | None = None
    notes: list[str] = field(default_factory=list)
    # Commands to paste next, each (what it does, the command): printed after the notes, each
    # command whole on a line of its own (never wrapped, so it pastes as one).
    commands: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FormatOption:
    """One option of an export format: its default, what it does, and its type (an annotation;
    the default's type when left out) and allowed values, checked before anything is read."""

    default: Any
    help: str
    hint: Any = None
    allowed: Allowed | None = None

    def check(self, label: str, value: Any) -> None:
        if self.hint is not None:
            hint = self.hint
        else:
            hint = Any if self.default is None else type(self.default)
        check_value(label, value, hint, self.allowed)


@dataclass(frozen=True)
class Exporter:
    """An export format: ``write(store, path, **options)``, the name it writes by default, and
    whether it writes a folder (else one file), so a path of the wrong kind is refused first.

    ``text(store, **options) -> (text, count)``: the same export as text, which ``-o -`` writes
    to stdout (None: it cannot go there). ``options``: what it takes, with defaults and help.
    ``counts``: what ``ExportResult.count`` counts, for "wrote N <counts>"."""

    write: Callable[..., ExportResult]
    default_name: str
    folder: bool = False
    text: Callable[..., tuple[str, int]] | None = None
    options: Mapping[str, FormatOption] = field(default_factory=dict)
    counts: str = "examples"

    def settings(self, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every option with its value: ``given`` (checked) over the defaults. An option the
        format does not take is a SettingError naming the ones it does."""
        for key in given:
            if key not in self.options:
                takes = f"its options: {', '.join(self.options)}" if self.options else "none"
                raise SettingError(f"export format {name!r} takes no option {key!r} ({takes})")
        out = {key: opt.default for key, opt in self.options.items()}
        for key, value in given.items():
            self.options[key].check(f"{name}:{key}", value)
            out[key] = value
        return out

    def report(self, result: ExportResult) -> list[str]:
        """The lines saying what was written and how to use it."""
        first = result.headline or f"wrote {result.count} {self.counts} to {result.path}"
        return [first, *result.notes]


# Formats register by name (``cdv export --format NAME``); a new format is one module. sft and
# dpo are defined with the training data, which reads this package: they are imported by name.
EXPORTERS: Registry[Exporter] = Registry(
    "export format",
    "cdvkit.exporters",
    accept=instance_of(
        Exporter, "an Exporter (register one with cdvkit.export.exporter or text_format)"
    ),
    builtins=("cdvkit.export.formats", "cdvkit.mitigation.formats"),
)


def exporter(
    name: str,
    default_name: str,
    *,
    help: str = "",
    folder: bool = False,
    text: Callable[..., tuple[str, int]] | None = None,
    options: Mapping[str, FormatOption] | None = None,
    counts: str = "examples",
) -> Callable[[Any], Any]:
    """Register ``write(store, path, **options) -> ExportResult`` as the format ``name``
    (``folder``: it writes a folder; ``text``, ``options``, ``counts``: see Exporter). A writer
    should write through ``cdvkit.store.outputs`` (``atomic_file``, ``atomic_folder``) so its
    output is whole or absent."""

    def add(write: Callable[..., ExportResult]) -> Callable[..., ExportResult]:
        made = Exporter(write, default_name, folder, text, dict(options or {}), counts)
        EXPORTERS.add(name, made, help=help)
        return write

    return add


def text_format(
    name: str,
    default_name: str,
    *,
    help: str = "",
    options: Mapping[str, FormatOption] | None = None,
    counts: str = "examples",
) -> Callable[[Any], Any]:
    """Register ``text(store, **options) -> (text, count)`` as the one-file format ``name``: it
    is written to a file whole, or to stdout with ``-o -``."""

    def add(text: Callable[..., tuple[str, int]]) -> Callable[..., tuple[str, int]]:
        def write(store: RunStore, path: str | Path, **opts: Any) -> ExportResult:
            body, count = text(store, **opts)
            write_text(Path(path), body, run=store.run_dir)
            return ExportResult(Path(path), count, [Path(path)])

        exporter(name, default_name, help=help, text=text, options=options, counts=counts)(write)
        return text

    return add


def example_rows(store: RunStore) -> list[dict[str, Any]]:
    """The run's examples with the target they were found against, so a file on its own still
    says which model it fools (evaluation uses it as the transfer matrix row).

    Free-form rows (numeric, short answer) carry ``task`` and ``references`` besides; a
    multiple-choice row is as it always was.
    """
    target = (store.get_config() or {}).get("target")
    return [{**ex, "target": target} for ex in store.examples()]
