"""Tables that fit the terminal: names and numbers whole, free text wrapped.

Rich fits a table that is too wide by squeezing its widest columns, whatever they hold, so a
model name or a number is cut (``openai-compatibl…``, ``3,979 (1,827-5,23…``). Here each column
says what it holds, and the widths are worked out before rich draws it:

- ``WHOLE``: names and numbers, never wrapped nor cut (a cell may hold several lines of its own);
- ``WORDS``: short text, wrapped at its spaces only, never inside a word (``cdv evaluate
  --defense``);
- ``TEXT``: free text, wrapped; only a word longer than the whole column is folded.

When even the narrowest layout is wider than the terminal, the rows are printed as blocks
instead (the key cells on a line, then one line per other column), so nothing is ever cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cdvkit.cli.safe_text import visible

WHOLE, WORDS, TEXT = "whole", "words", "text"
# Free text gets at least this many columns before anything else gives way.
TEXT_MIN = 20
Justify = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Col:
    """A column: its header, what its cells hold (WHOLE, WORDS or TEXT), how they align."""

    header: str
    kind: str = WHOLE
    justify: Justify = "left"
    # A header that may break inside a word (a label longer than the column's cells).
    header_folds: bool = False


def _lines(cell: str) -> list[str]:
    return cell.split("\n") or [""]


def _longest_line(cells: Sequence[str]) -> int:
    return max((len(line) for c in cells for line in _lines(c)), default=0)


def _longest_word(cells: Sequence[str]) -> int:
    return max((len(w) for c in cells for w in c.split()), default=0)


def fit_widths(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """The content width of each column so the table is at most ``width`` wide, or None when
    it cannot be without cutting a WHOLE cell or a word of a WORDS cell."""
    avail = width - (3 * len(cols) + 1)  # a box table: padding 1 each side, n + 1 rules
    cells = [[r[i] for r in rows] for i in range(len(cols))]
    # Headers wrap at their spaces in any column.
    head = [1 if c.header_folds else _longest_word([c.header]) for c in cols]
    natural = [max(_longest_line(cells[i]), len(c.header)) for i, c in enumerate(cols)]
    inner = [
        _longest_line(cells[i]) if c.kind == WHOLE else _longest_word(cells[i])
        for i, c in enumerate(cols)
    ]
    least = [max(inner[i], head[i], 1) for i in range(len(cols))]
    widths = list(natural)

    def excess() -> int:
        return sum(widths) - avail

    # Free text gives way first, down to TEXT_MIN; then headers wrap at their spaces; then
    # short text wraps, down to its longest word; then free text, down to its longest word.
    steps = (((TEXT,), TEXT_MIN), ((WHOLE,), 0), ((WORDS,), 0), ((TEXT,), 0))
    for kinds, floor in steps:
        for i, c in enumerate(cols):
            if excess() <= 0:
                return widths
            if c.kind in kinds:
                lowest = max(least[i], min(floor, natural[i]))
                widths[i] -= min(excess(), max(0, widths[i] - lowest))
    return widths if excess() <= 0 else None


def _header(text: str, width: int, folds: bool) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=folds)) or text


def fitted_table(
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    width: int,
    styles: Sequence[str | None] | None = None,
    **table: Any,
) -> Table | None:
    """``rows`` (plain text, never read as markup) as a table at most ``width`` wide, or None
    when they cannot fit whole (see ``fit_widths``)."""
    widths = fit_widths(cols, rows, width)
    if widths is None:
        return None
    t = Table(title=title, title_justify="left", **table)
    for c, w in zip(cols, widths, strict=True):
        t.add_column(
            escape(_header(c.header, w, c.header_folds)),
            justify=c.justify,
            width=w,
            no_wrap=c.kind == WHOLE,
            overflow="fold" if c.kind == TEXT else "ellipsis",
        )
    for i, row in enumerate(rows):
        t.add_row(*(escape(c) for c in row), style=styles[i] if styles else None)
    return t


def print_blocks(
    console: Console,
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    keys: int = 1,
    styles: Sequence[str | None] | None = None,
) -> None:
    """One block per row: its first ``keys`` cells on a line, then each other column as
    ``header  value`` (the value wrapped at its spaces, folded only where a word is longer
    than the line)."""
    if title:
        console.print(title, highlight=False, markup=False)
    label = min(max((len(c.header) for c in cols[keys:]), default=0), LABEL_MAX)
    for i, row in enumerate(rows):
        # The key cells name the block; a second line of a key cell (a count) goes under it.
        first, *more = " · ".join(c for c in row[:keys] if c).split("\n")
        style = (styles[i] if styles else None) or "bold"
        console.print(first, style=style, markup=False, highlight=False)
        for line in more:
            _hanging(console, "  ", line)
        for c, value in zip(cols[keys:], row[keys:], strict=True):
            if value:
                _hanging(console, "  " + c.header.ljust(label) + "  ", value)


# A block's labels are padded to the longest up to this; a longer one pushes its value over.
LABEL_MAX = 24


def _hanging(console: Console, label: str, value: str) -> None:
    """``label`` then ``value`` wrapped to the console (a word longer than a line folded), its
    further lines indented under the first; no trailing spaces, so pipes read the same."""
    width = max(console.width - len(label), 16)
    lines: list[Text] = []
    for part in value.split("\n"):
        lines += Text(visible(part)).wrap(console, width, overflow="fold") or [Text("")]
    for n, line in enumerate(lines):
        line.rstrip()
        out = Text(label if n == 0 else " " * len(label), style="dim")
        out.append_text(line)
        console.print(out, highlight=False, crop=False, soft_wrap=True)


def print_fitted(
    console: Console,
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[str]],
    keys: int = 1,
    styles: Sequence[str | None] | None = None,
    **table: Any,
) -> None:
    """``rows`` as a table that fits the console, else as blocks (``print_blocks``); the
    title on a line of its own, wrapped to the console rather than to the table."""
    t = fitted_table(None, cols, rows, console.width, styles, **table)
    if t is None:
        print_blocks(console, title, cols, rows, keys, styles)
        return
    if title:
        console.print(title, highlight=False, markup=False)
    console.print(t)
