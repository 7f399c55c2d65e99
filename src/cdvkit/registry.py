"""Named parts, registered where they are defined, found by name everywhere else.

A proposer, constraint, strategy, model provider, export format, prompt defence, preset, dataset
or executor registers itself with a decorator; the CLI and the config then take it by name, with
options in a spec string (``judge:model=openai/gpt-4o``, ``llm:temperature=0.9``), and list what
is registered (``cdv parts``). Adding a part is one new module: nothing that chooses among parts
names them.

Each registry checks what it is given (``accept``): a value of the wrong kind is refused when it
is registered (:class:`PartError`), not when a run first uses it.

Other packages add parts through a Python entry point group (``cdvkit.proposers``,
``cdvkit.constraints``, ...): an entry point names a module that registers its parts when
imported, or the part itself (registered under the entry point's name). They are loaded the
first time a name is not found or the registry is listed. An entry point that fails to load,
names the wrong kind of object or a module that registers nothing is one warning, and asking for
its name is one line naming the entry point, its group and what was expected.

A part declares the options its spec takes, each with a default, help and the values it allows
(``options={"floor": option(0.5, "...", min=0, below=1)}`` at registration, or an ``OPTIONS``
attribute of the part itself, as garak's ``DEFAULT_PARAMS``), and the roles of the models it
calls (``roles=("critic",)`` or ``ROLES``: a run names their models with
``--role critic=provider/model``).
``Registry.settings`` checks a spec's options against that declaration and fills in the defaults;
``cdv parts`` lists them. A part that declares nothing takes its options unchecked, as before.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from cdvkit.allowed import Allowed, SettingError, check_value
from cdvkit.allowed import describe as describe_rule

T = TypeVar("T")

# accept(name, value) -> the value to store; raises PartError saying what was expected.
Accept = Callable[[str, Any], Any]


class PartError(TypeError):
    """A value of the wrong kind for a registry: ``expected ..., got ...``."""


class PluginError(ValueError):
    """A part a plugin's entry point was meant to provide could not be registered."""


@dataclass(frozen=True)
class PartOption:
    """One option a part's spec takes (``NAME:key=value``): its default, what it does, its type
    (an annotation; the default's type when left out) and the values it allows, checked by the
    one check every setting has (cdvkit.allowed). ``required``: the spec must give it."""

    default: Any
    help: str
    hint: Any = None
    allowed: Allowed | None = None
    required: bool = False

    def type_hint(self) -> Any:
        if self.hint is not None:
            return self.hint
        return Any if self.default is None else type(self.default)

    def check(self, label: str, value: Any) -> None:
        """Raise SettingError (``{label} must be ..., not ...``) for a value it does not take."""
        check_value(label, value, self.type_hint(), self.allowed)

    def takes(self) -> str:
        """What values it takes, in the words a refusal uses (``a number between 0 and 2``)."""
        return describe_rule(self.type_hint(), self.allowed)


def option(
    default: Any,
    help: str,
    *,
    hint: Any = None,
    required: bool = False,
    allowed: Allowed | None = None,
    **rule: Any,
) -> PartOption:
    """A part's option, declared beside the part: ``option(0.5, "similarity floor", min=0,
    below=1)``; ``rule`` holds ``Allowed``'s parts (``min``, ``max``, ``above``, ``below``,
    ``choices``, ``fold``, ``check``, ``why``)."""
    return PartOption(default, help, hint, Allowed(**rule) if rule else allowed, required)


PartOptions = Mapping[str, PartOption]


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    help: str = ""
    # What its spec takes (None: nothing declared, options pass unchecked).
    options: PartOptions | None = None
    # The roles of the models it calls, beyond the run's own (--role ROLE=provider/model).
    roles: tuple[str, ...] = field(default_factory=tuple)


def describe(value: Any) -> str:
    """What an object is, in a few words, for a message refusing it."""
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    if callable(value):
        name = getattr(value, "__qualname__", type(value).__name__)
        return f"the callable {getattr(value, '__module__', '?')}.{name}"
    return f"a {type(value).__name__} ({value!r:.40})"


def _help_of(value: Any) -> str:
    """What a part an entry point names says about itself: a description it carries (a
    dataset's, a provider's), else the first line of its class's or function's docstring."""
    described = getattr(value, "description", None)
    if isinstance(described, str) and described.strip():
        return described.strip()
    if isinstance(value, type | types.FunctionType):
        lines = (inspect.getdoc(value) or "").strip().splitlines()
        return lines[0] if lines else ""
    return ""


def _any_callable(name: str, value: Any) -> Any:
    if not callable(value):
        raise PartError(f"expected a callable, got {describe(value)}")
    return value


def factory(expected: str, *args: Any, methods: tuple[str, ...] = (), **kwargs: Any) -> Accept:
    """An ``accept`` for parts built by calling them as ``value(*args, **kwargs)``: a function,
    or a class with every one of ``methods`` (its instances are the parts). ``args``/``kwargs``
    stand for how the part is called; only that a call of that shape binds is checked (its
    own required options, such as a model, are left to the caller)."""

    def accept(name: str, value: Any) -> Any:
        if not callable(value) or isinstance(value, types.ModuleType):
            raise PartError(f"expected {expected}, got {describe(value)}")
        if isinstance(value, type):
            missing = [m for m in methods if not callable(getattr(value, m, None))]
            if missing:
                raise PartError(
                    f"expected {expected}, got {describe(value)}, which has no "
                    f"{', '.join(m + '()' for m in missing)}"
                )
        try:
            inspect.signature(value).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise PartError(
                f"expected {expected}, got {describe(value)}, which cannot be called so ({exc})"
            ) from None
        except ValueError:  # no signature to read (a builtin): take it on trust
            pass
        return value

    return accept


def instance_of(cls: type, expected: str) -> Accept:
    """An ``accept`` for parts that are instances of ``cls``."""

    def accept(name: str, value: Any) -> Any:
        if not isinstance(value, cls):
            raise PartError(f"expected {expected}, got {describe(value)}")
        return value

    return accept


class Registry(Generic[T]):
    """Parts of one kind by name. ``register`` is a decorator; ``get`` raises ValueError naming
    what is registered, so a typo is one clear line.

    ``accept(name, value)`` checks (and may wrap) what is registered; ``builtins`` names modules
    that register built-in parts but cannot be imported where the registry is defined (they
    import it themselves): they are imported, by name, the first time the registry is listed or
    a name is not found, as plugins are."""

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        accept: Accept | None = None,
        builtins: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.group = group  # the entry point group other packages register through
        self.accept = accept or _any_callable
        self.builtins = builtins
        self._entries: dict[str, Entry[T]] = {}
        self._problems: dict[str, str] = {}  # entry point name -> why it registered nothing
        self._plugins_loaded = False

    def register(
        self,
        name: str,
        *,
        help: str = "",
        options: PartOptions | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> Callable[[T], T]:
        def add(value: T) -> T:
            self.add(name, value, help=help, options=options, roles=roles)
            return value

        return add

    def add(
        self,
        name: str,
        value: Any,
        *,
        help: str = "",
        options: PartOptions | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> None:
        """Register ``value`` as ``name``; ``options`` and ``roles`` default to the part's own
        ``OPTIONS`` and ``ROLES`` attributes. A declaration that cannot hold (an option with no
        help, a default its own rule refuses) is a PartError now, not when a run first uses it."""
        if not name or any(c in name for c in ":,= "):
            raise ValueError(f"{self.kind} name {name!r} may not be empty or hold ':', ',', '='")
        try:
            checked = self.accept(name, value)
            options = _declared_options(value if options is None else options)
            roles = _declared_roles(value if roles is None else roles)
        except PartError as exc:
            raise PartError(f"{self.kind} {name!r}: {exc}") from None
        self._entries[name] = Entry(name, checked, help, options, roles)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        entry = self._entries.get(name)
        if entry is None:
            self.load_plugins()
            entry = self._entries.get(name)
        if entry is None:
            if name in self._problems:
                raise PluginError(self._problems[name])
            raise ValueError(f"unknown {self.kind} {name!r} (registered: {', '.join(self)})")
        return entry.value

    def entry(self, name: str) -> Entry[T]:
        """The registration of ``name`` (its help, options and roles); as ``get`` for a name
        that is not registered."""
        self.get(name)
        return self._entries[name]

    def settings(
        self, name: str, given: Mapping[str, Any], over: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The options ``name`` is built with: ``given`` (a spec's, checked) over ``over`` (a
        run's shorthands for them, checked too) over the declared defaults. An option it does not
        declare is a SettingError naming the part, the option and the ones it takes; a bad value
        one naming ``KIND NAME:OPTION``. A part that declares nothing gets ``given`` as it is."""
        declared = self.entry(name).options
        if declared is None:
            return dict(given)
        for key in given:
            if key not in declared:
                takes = f"its options: {', '.join(declared)}" if declared else "it takes none"
                raise SettingError(f"{self.kind} {name!r} takes no option {key!r} ({takes})")
        out = {key: opt.default for key, opt in declared.items()}
        for key, value in {**(over or {}), **given}.items():
            if key in declared:
                declared[key].check(f"{self.kind} {name}:{key}", value)
                out[key] = value
        missing = [k for k, o in declared.items() if o.required and out[k] is None]
        if missing:
            example = ",".join(f"{k}=..." for k in missing)
            raise SettingError(f"{self.kind} {name!r} needs {', '.join(missing)}: {name}:{example}")
        return out

    def problem(self, name: str) -> str | None:
        """Why the plugin meant to provide ``name`` provides nothing (None: no such plugin)."""
        self.load_plugins()
        return self._problems.get(name)

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
        """Import the built-in modules named by name, then what other packages registered
        under this group (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for module in self.builtins:
            import_module(module)
        for ep in entry_points(group=self.group):
            where = f"{self.kind} entry point {ep.name!r} ({ep.value}) in group {self.group}"
            before = set(self._entries)
            # A module imported already (one plugin module listed under several groups) may
            # have registered this kind's parts before: only a first import can be judged.
            fresh = ep.module not in sys.modules
            try:
                loaded = ep.load()
                if isinstance(loaded, types.ModuleType):
                    if fresh and set(self._entries) == before and ep.name not in self._entries:
                        raise PartError(
                            f"the module {loaded.__name__} registered no {self.kind}: it should "
                            f"add one when imported, or the entry point name the part itself"
                        )
                elif ep.name not in self._entries:
                    self.add(ep.name, loaded, help=_help_of(loaded))
            except PartError as exc:
                self._problem(ep.name, f"{where}: {exc}")
            except Exception as exc:  # a broken plugin must not break every cdv command
                self._problem(ep.name, f"{where} failed to load: {type(exc).__name__}: {exc}")

    def _problem(self, name: str, line: str) -> None:
        self._problems[name] = line
        warnings.warn(line, stacklevel=3)


def _declared_options(source: Any) -> PartOptions | None:
    """A part's option declarations, checked: from a mapping, or a part's ``OPTIONS``."""
    declared = source if isinstance(source, Mapping) else getattr(source, "OPTIONS", None)
    if declared is None:
        return None
    if not isinstance(declared, Mapping):
        raise PartError(f"its options must be a mapping of name to option(), not {declared!r:.40}")
    for key, opt in declared.items():
        if not isinstance(opt, PartOption):
            raise PartError(f"option {key!r} is {describe(opt)}, not a cdvkit.registry.option()")
        if not str(opt.help).strip():
            raise PartError(f"option {key!r} has no help")
        try:
            opt.check(f"the default of option {key!r}", opt.default)
        except SettingError as exc:
            raise PartError(str(exc)) from None
    return dict(declared)


def _declared_roles(source: Any) -> tuple[str, ...]:
    """The roles a part calls models under: from a tuple, or a part's ``ROLES``."""
    roles = source if isinstance(source, tuple | list) else getattr(source, "ROLES", ())
    if isinstance(roles, str) or not all(isinstance(r, str) and r.isidentifier() for r in roles):
        raise PartError(f"its roles must be a tuple of names, e.g. ('critic',), not {roles!r:.40}")
    return tuple(roles)


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
