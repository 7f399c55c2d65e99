"""HTML tables and notes of plain text; every cell is escaped here, so callers pass plain text."""

from __future__ import annotations

import re
from html import escape


def table(
    headers: list[str],
    rows: list[list[str]],
    *,
    classes: list[str] | None = None,
    table_class: str = "",
) -> str:
    """A table inside a wrapper that scrolls sideways if it ever needs to: a cell is never cut."""
    cls = f' class="{escape(table_class)}"' if table_class else ""
    out = [f'<div class="tablewrap"><table{cls}>']
    if any(headers):
        out.append("<thead><tr>")
        out += [f"<th>{escape(h)}</th>" for h in headers]
        out.append("</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(rows):
        row_cls = f' class="{escape(classes[i])}"' if classes and classes[i] else ""
        out.append(f"<tr{row_cls}>")
        for j, cell in enumerate(row):
            if j > 0 and numeric(cell):
                out.append(f'<td class="num">{_number(cell)}</td>')
            else:
                out.append(f"<td>{escape(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


# An interval "[low, high]" is kept on one line.
_UNBROKEN = re.compile(r"\[[^\]]*\]")


def _number(cell: str) -> str:
    """A numeric cell, escaped, that may wrap between a value and its interval, never inside
    either (a cell of many parts still wraps between them)."""
    out, at = [], 0
    for m in _UNBROKEN.finditer(cell):
        out += [escape(cell[at : m.start()]), f'<span class="nw">{escape(m.group())}</span>']
        at = m.end()
    return "".join(out) + escape(cell[at:])


def numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "–-$")


def note(text: str) -> str:
    """A muted line of plain text (escaped here) above or below a table."""
    return f"<p class='muted'>{escape(text)}</p>"
