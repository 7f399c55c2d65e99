"""What values a setting may take, declared once beside the setting, and the one check of a value
against that declaration.

A setting (a field of ``SearchConfig`` or ``EvalSettings``, a backend's role option) declares its
type (its annotation) and, where it has them, its range and its choices with an ``Allowed``. Every
way a value arrives (the command line, ``--set``, a config file, the Python API) is checked by
``check_value`` against that one declaration, so a bad value is one line naming the setting as
the user wrote it, the value and what is allowed, before anything is built, written or paid.

This module imports nothing of cdvkit: every layer (models, search, evaluation) declares with it.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

# The words a message uses for each type a setting may have.
TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a table",
}


class SettingError(ValueError):
    """A setting's value is not one it allows: one line naming it, the value and the rule."""


@dataclass(frozen=True)
class Allowed:
    """The values a setting takes beyond its type: a range (``min``/``max`` inclusive,
    ``above``/``below`` exclusive) or ``choices`` (a tuple, or a function returning them, for a
    registry plugins add to). ``fold`` maps a text to the form its choices are written in
    (``Multiple-Choice`` -> ``multiple_choice``); ``check`` is a last test of a value of the
    right type, raising ValueError with what is wrong (a price written as "in,out")."""

    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    fold: Callable[[str], str] | None = None
    check: Callable[[Any], Any] | None = None
    # What the range means, said after it ("0 turns it off"): a bound is easier to accept with
    # its reason.
    why: str = ""

    def choice_list(self) -> tuple[str, ...]:
        if self.choices is None:
            return ()
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def range_words(self) -> str:
        """``at least 1``, ``between 0 and 2``, ``in (0, 1]``; "" when unbounded."""
        low = self.min if self.min is not None else self.above
        high = self.max if self.max is not None else self.below
        if low is not None and high is not None:
            if self.min is not None and self.max is not None:
                return f"between {_num(low)} and {_num(high)}"
            left = "[" if self.min is not None else "("
            right = "]" if self.max is not None else ")"
            return f"in {left}{_num(low)}, {_num(high)}{right}"
        if self.min is not None:
            return f"at least {_num(self.min)}"
        if self.above is not None:
            return f"above {_num(self.above)}"
        if self.max is not None:
            return f"at most {_num(self.max)}"
        if self.below is not None:
            return f"below {_num(self.below)}"
        return ""

    def in_range(self, x: float) -> bool:
        return not (
            (self.min is not None and x < self.min)
            or (self.max is not None and x > self.max)
            or (self.above is not None and x <= self.above)
            or (self.below is not None and x >= self.below)
        )


NO_LIMIT = Allowed()


@dataclass(frozen=True)
class Shape:
    """A setting's annotation read for checking: the types it takes, whether None is one of them,
    and the type of a list's items."""

    types: tuple[type, ...]
    optional: bool = False
    item: type | None = None

    @classmethod
    def of(cls, hint: Any) -> Shape:
        if hint is Any or hint is None:
            return cls(())
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            parts = [cls.of(a) for a in get_args(hint) if a is not type(None)]
            optional = type(None) in get_args(hint)
            found = tuple(t for p in parts for t in p.types)
            item = next((p.item for p in parts if p.item is not None), None)
            return cls(() if any(not p.types for p in parts) else found, optional, item)
        if origin in (list, tuple):
            args = [a for a in get_args(hint) if a is not Ellipsis]
            item = args[0] if len(args) == 1 and isinstance(args[0], type) else None
            return cls((list,), item=item)
        if origin is not None:
            return cls((origin,) if isinstance(origin, type) else ())
        return cls((hint,) if isinstance(hint, type) else ())

    def words(self) -> str:
        return " or ".join(TYPE_WORDS.get(t, t.__name__) for t in self.types)

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional or not self.types
        if not self.types:
            return True
        for t in self.types:
            if t is bool and isinstance(value, bool):
                return True
            if isinstance(value, bool):
                continue  # true is not the number 1 here
            if t is float and isinstance(value, int | float):
                return True
            if t is list and isinstance(value, list | tuple):
                return self.item is None or all(isinstance(v, self.item) for v in value)
            if t is not float and isinstance(value, t):
                return True
        return False


def check_value(
    label: str, value: Any, hint: Any, allowed: Allowed | None = None, *, secret: bool = False
) -> None:
    """Raise SettingError when ``value`` is not of the type ``hint`` (an annotation) nor within
    ``allowed``: ``{label} must be {rule}, not {value}``. An int is a float; a bool is not a
    number; NaN and infinity are no number. A ``secret`` value (a key) is never quoted."""
    if secret:
        try:
            check_value(label, value, hint, allowed)
        except SettingError:
            what = TYPE_WORDS.get(type(value), type(value).__name__)
            rule = _rule(Shape.of(hint), allowed or NO_LIMIT, ())
            raise SettingError(f"{label} must be {rule}, not {what} (value not shown)") from None
        return
    shape = hint if isinstance(hint, Shape) else Shape.of(hint)
    allowed = allowed or NO_LIMIT
    if value is None and (shape.optional or not shape.types):
        return
    choices = allowed.choice_list()
    why = f" ({allowed.why})" if allowed.why else ""
    if not shape.accepts(value):
        raise SettingError(f"{label} must be {_rule(shape, allowed, choices)}, not {shown(value)}")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and not math.isfinite(value):
        rule = _rule(shape, allowed, choices)
        raise SettingError(f"{label} must be {rule}, not {shown(value)}{why}")
    if numeric and not allowed.in_range(value):
        rule = allowed.range_words()
        raise SettingError(f"{label} must be {rule}, not {shown(value)}{why}")
    if choices and isinstance(value, str):
        key = allowed.fold(value) if allowed.fold else value
        if key not in choices:
            raise SettingError(f"{label} must be one of {', '.join(choices)}, not {value!r}")
    if allowed.check is not None:
        try:
            allowed.check(value)
        except (TypeError, ValueError) as exc:
            raise SettingError(f"{label}: {exc}") from None


def _rule(shape: Shape, allowed: Allowed, choices: tuple[str, ...]) -> str:
    if choices:
        return "one of " + ", ".join(choices)
    words = shape.words() or "a value"
    if float in shape.types:
        words = words.replace("a number", "a finite number")
    span = allowed.range_words()
    if span:
        words += " " + (f"of {span}" if span.startswith("at ") else span)
    return words


def describe(hint: Any, allowed: Allowed | None = None) -> str:
    """What a setting takes, in the words its error message uses (for help and starter files)."""
    allowed = allowed or NO_LIMIT
    return _rule(Shape.of(hint), allowed, allowed.choice_list())


def shown(value: Any) -> str:
    """A value as a message quotes it: numbers bare, text quoted, cut when long."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def declared(cls: type) -> dict[str, tuple[Any, Allowed | None]]:
    """Each field of the dataclass ``cls`` with its resolved annotation and its declaration
    (``metadata["allowed"]``)."""
    hints = get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("allowed")) for f in fields(cls)}


def check_values(
    cls: type,
    values: Mapping[str, Any],
    label: Callable[[str], str],
    *,
    skip: Iterable[str] = (),
) -> None:
    """Check each of ``values`` that names a field of ``cls`` (others are left to whoever knows
    them), naming a bad one with ``label(name)``. Raises SettingError."""
    known = declared(cls)
    skipped = set(skip)
    for name, value in values.items():
        if name in known and name not in skipped:
            hint, allowed = known[name]
            check_value(label(name), value, hint, allowed)


def check_fields(obj: Any, label: Callable[[str], str] = str, *, skip: Iterable[str] = ()) -> None:
    """Check every field of the dataclass instance ``obj`` against its declaration."""
    skipped = set(skip)
    for name, (hint, allowed) in declared(type(obj)).items():
        if name not in skipped:
            check_value(label(name), getattr(obj, name), hint, allowed)
