"""Model and data text made safe for a terminal: control and escape characters shown, not obeyed.

A dataset row or a model reply may hold terminal control sequences (``\\x1b[2J`` clears the
screen, ``\\x1b]0;...\\x07`` retitles the window, a C1 ``\\x9b`` starts a sequence on some
terminals, a lone ``\\r`` overwrites the line). cdv shows such text but never lets the terminal
act on it: every C0 and C1 control character (but newline and tab, which a layout needs), DEL,
and the bidirectional overrides that reorder what is shown are written as Python writes them in
a string literal (``\\x1b``, ``\\r``, ``\\u202e``). The text kept in the store and in exports is
untouched; only what reaches the terminal is.

``visible`` is the one function that does it. ``SafeConsole`` applies it to every string a
command prints through rich (messages, table cells, markup), so a command that prints data only
needs ``visible`` where it builds rich ``Text`` itself.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

# Bidirectional embeddings, overrides and isolates: they make a terminal show text in another
# order than it is stored (the "Trojan Source" trick).
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TABLE = str.maketrans(
    {
        code: repr(chr(code))[1:-1]  # as a Python string literal writes it: \x1b, \r, \u202e
        for code in [*range(0x00, 0x20), *range(0x7F, 0xA0), *_BIDI]
        if chr(code) not in "\n\t"
    }
)


def visible(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control character written out (``\\x1b``, ``\\r``, ``\\x9b``), newlines
    and tabs kept; with ``newlines=False`` a newline is written out too (a one-line field)."""
    safe = text.translate(_TABLE)
    return safe.replace("\n", "\\n") if not newlines else safe


# What json.dumps(..., ensure_ascii=False) leaves raw that a terminal may act on (it escapes C0).
_JSON_TABLE = str.maketrans({code: f"\\u{code:04x}" for code in [*range(0x7F, 0xA0), *_BIDI]})


def json_safe(document: str) -> str:
    """A JSON document (``ensure_ascii=False``) with DEL, C1 controls and bidi overrides
    escaped as ``\\uXXXX``: the same data for any JSON reader, inert on a terminal."""
    return document.translate(_JSON_TABLE)


def visible_text(text: str, style: str = "") -> Text:
    """``text`` as rich Text (never read as markup), made visible."""
    return Text(visible(text), style=style)


class SafeConsole(Console):
    """A rich Console whose strings are made visible before rich renders them.

    Every ``str`` a command prints, and every ``str`` cell of a table, passes through
    ``render_str``; rich's own styling (colours, the progress bar's cursor moves) is added after,
    so it still works on a terminal. ``Text`` objects are the caller's: build them with
    ``visible_text``.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)
