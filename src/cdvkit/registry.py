"""Named parts, registered where they are defined, found by name everywhere else.

A proposer, constraint, strategy, model provider, export format or prompt defence registers
itself with a decorator; the CLI and the config then take it by name, with options in a spec
string (``judge:model=openai/gpt-4o``, ``llm:temperature=0.9``), and list what is registered.
Adding a part is one new module: nothing that chooses among parts names them.

Other packages add parts through a Python entry point group (``cdvkit.proposers``,
``cdvkit.constraints``, ...): each entry point names a module or object that registers itself
when loaded; it is loaded the first time a name is not found.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    help: str = ""


class Registry(Generic[T]):
    """Parts of one kind by name. ``register`` is a decorator; ``get`` raises ValueError naming
    what is registered, so a typo is one clear line."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group  # the entry point group other packages register through
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = False

    def register(self, name: str, *, help: str = "") -> Callable[[T], T]:
        def add(value: T) -> T:
            self.add(name, value, help=help)
            return value

        return add

    def add(self, name: str, value: T, *, help: str = "") -> None:
        if not name or any(c in name for c in ":,= "):
            raise ValueError(f"{self.kind} name {name!r} may not be empty or hold ':', ',', '='")
        self._entries[name] = Entry(name, value, help)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        entry = self._entries.get(name)
        if entry is None:
            self.load_plugins()
            entry = self._entries.get(name)
        if entry is None:
            raise ValueError(f"unknown {self.kind} {name!r} (registered: {', '.join(self)})")
        return entry.value

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self.load_plugins()
        return iter(list(self._entries))

    def entries(self) -> list[Entry[T]]:
        self.load_plugins()
        return list(self._entries.values())

    def load_plugins(self) -> None:
        """Import what other packages registered under this group (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not break every cdv command
                warnings.warn(
                    f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                    stacklevel=2,
                )
                continue
            if ep.name not in self._entries and callable(loaded):
                self.add(ep.name, loaded)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` -> (name, options); values read as JSON when they are
    (numbers, true/false, null), else kept as text, so a model string needs no quotes."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"{spec!r} names nothing before ':'")
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{spec!r}: option {part!r} is not key=value")
        options[key.strip().replace("-", "_")] = _value(value.strip())
    return name, options


def _value(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text
