"""Small inline SVG charts, so the HTML report needs no plotting library and no network.

Every label is drawn whole: SVG does no layout, so each chart reserves room for its longest
label from an estimate of the text's width (generous, so a label never runs off the chart),
and the page scales a chart down rather than cutting it.
"""

from __future__ import annotations

import re
from html import escape

SERIES_COLORS = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948")
# Widths per character of the chart fonts (11px labels, 13px bold titles), on the wide side.
LABEL_PX, TITLE_PX = 6.6, 8.2


def text_px(text: str, per_char: float = LABEL_PX) -> int:
    """Estimated width of ``text`` in pixels, plus a small margin."""
    return int(per_char * len(text)) + 6


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
    )


def wrap_label(text: str, width: int = 36) -> list[str]:
    """``text`` in lines of at most about ``width`` characters, broken after a space, a slash,
    a dot or a hyphen (a model name breaks between its parts), never dropping a character."""
    pieces = re.findall(r"[^ /.·-]*[ /.·-]*", text)
    lines, line = [], ""
    for piece in (p for p in pieces if p):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def _lines(x: float, y: float, lines: list[str], anchor: str, line_h: int = 13) -> str:
    """Lines of a label centred vertically on ``y``."""
    top = y - (len(lines) - 1) * line_h / 2
    spans = "".join(
        f'<tspan x="{x:.1f}" y="{top + i * line_h + 4:.1f}">{escape(t)}</tspan>'
        for i, t in enumerate(lines)
    )
    return f'<text class="ax" text-anchor="{anchor}">{spans}</text>'


def bar_chart(
    groups: list[str],
    series: list[str],
    values: list[list[float | None]],
    *,
    errors: list[list[list[float] | tuple[float, float] | None]] | None = None,
    title: str = "",
    caption: str = "",
    xmax: float = 1.0,
) -> str:
    """Grouped horizontal bars: ``values[g][s]`` for group ``g`` and series ``s``, in
    [0, xmax], each group's label whole on its left (wrapped onto lines, never cut);
    ``errors[g][s]``, where given, an interval (low, high) drawn as a whisker on its bar."""
    bar_h, gap, plot_w, line_h = 14, 12, 320, 13
    labels = [wrap_label(g) for g in groups]
    pad_l = max([text_px(line) for lines in labels for line in lines] + [40]) + 10
    legend_w = sum(14 + text_px(s) + 12 for s in series)
    top = (44 if caption else 28) + 20  # the legend's row sits above the bars
    blocks = [max(bar_h * len(series), len(lines) * line_h) + gap for lines in labels]
    height = top + sum(blocks) + 30
    width = max(
        pad_l + plot_w + 48,
        text_px(title, TITLE_PX) + 16,
        text_px(caption) + 16,
        legend_w + 16,
    )
    out = [_svg_open(width, height, title)]
    if title:
        out.append(f'<text x="6" y="17" class="ttl">{escape(title)}</text>')
    if caption:
        out.append(f'<text x="6" y="33" class="ax">{escape(caption)}</text>')
    lx, ly = 6, top - 8
    for si, s in enumerate(series):
        color = SERIES_COLORS[si % len(SERIES_COLORS)]
        out.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" class="ax">{escape(s)}</text>'
        )
        lx += 14 + text_px(s) + 12

    def x_of(v: float) -> float:
        return pad_l + max(0.0, min(v / xmax, 1.0)) * plot_w

    bottom = top + sum(blocks)
    for k in range(5):
        x = x_of(k / 4 * xmax)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" class="grid"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" class="ax" text-anchor="middle">'
            f"{k / 4 * xmax:.0%}</text>"
        )
    y0 = top
    for gi, g in enumerate(groups):
        inner = blocks[gi] - gap
        bars_top = y0 + (inner - bar_h * len(series)) / 2
        out.append(_lines(pad_l - 6, y0 + inner / 2, labels[gi], "end"))
        for si, s in enumerate(series):
            v = values[gi][si]
            if v is None:
                continue
            y = bars_top + si * bar_h
            color = SERIES_COLORS[si % len(SERIES_COLORS)]
            ci = errors[gi][si] if errors and errors[gi] else None
            tip = f"{g} · {s}: {_fmt(v)}" + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            out.append(
                f'<rect x="{pad_l}" y="{y:.1f}" width="{x_of(v) - pad_l:.1f}" '
                f'height="{bar_h - 2}" fill="{color}"><title>{escape(tip)}</title></rect>'
            )
            end = x_of(v)
            if ci and ci[0] is not None and ci[1] is not None:
                cy, lo, hi = y + (bar_h - 2) / 2, x_of(ci[0]), x_of(ci[1])
                out.append(
                    f'<path class="whisker" d="M{lo:.1f} {cy:.1f}H{hi:.1f}'
                    f'M{lo:.1f} {cy - 4:.1f}v8M{hi:.1f} {cy - 4:.1f}v8"/>'
                )
                end = max(end, hi)
            out.append(
                f'<text x="{end + 4:.1f}" y="{y + bar_h - 4:.1f}" class="ax">{_fmt(v)}</text>'
            )
        y0 += blocks[gi]
    out.append("</svg>")
    return "".join(out)


def _heat_color(t: float) -> str:
    """White to a saturated red: darker means a larger value."""
    t = max(0.0, min(1.0, t))
    r = int(255 - t * (255 - 200))
    g = int(255 - t * (255 - 40))
    b = int(255 - t * (255 - 40))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    rows: list[str],
    cols: list[str],
    values: list[list[float | None]],
    *,
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    row_title: str = "",
    col_title: str = "",
) -> str:
    """A matrix of coloured cells with the value written in each (percent); row and column
    labels are whole, wrapped onto lines (a column is as wide as its label needs)."""
    line_h = 13
    row_title = f"{row_title} ↓" if row_title else ""
    col_title = f"{col_title} →" if col_title else ""
    row_lines = [wrap_label(r) for r in rows]
    col_lines = [wrap_label(c, 18) for c in cols]
    cell_w = max([text_px(t) + 10 for lines in col_lines for t in lines] + [92])
    cell_h = max([len(lines) * line_h + 8 for lines in row_lines] + [34])
    pad_l = max([text_px(t) for lines in row_lines for t in lines] + [text_px(row_title), 60]) + 12
    pad_t = 44 + max([len(lines) for lines in col_lines] + [1]) * line_h + 8
    width = max(
        pad_l + cell_w * len(cols) + 12,
        pad_l + text_px(col_title) + 12,
        text_px(title, TITLE_PX) + 16,
    )
    height = pad_t + cell_h * len(rows) + 12
    out = [_svg_open(width, height, title)]
    if title:
        out.append(f'<text x="6" y="17" class="ttl">{escape(title)}</text>')
    if col_title:
        out.append(f'<text x="{pad_l}" y="36" class="ax">{escape(col_title)}</text>')
    if row_title:
        out.append(f'<text x="6" y="{pad_t - 6}" class="ax">{escape(row_title)}</text>')
    for ci, lines in enumerate(col_lines):
        cx = pad_l + ci * cell_w + cell_w / 2
        # The label's last line sits just above the cells.
        out.append(_lines(cx, pad_t - 8 - (len(lines) - 1) * line_h / 2 - 4, lines, "middle"))
    span = (vmax - vmin) or 1.0
    for ri, r in enumerate(rows):
        y = pad_t + ri * cell_h
        out.append(_lines(pad_l - 6, y + cell_h / 2, row_lines[ri], "end"))
        for ci, c in enumerate(cols):
            v = values[ri][ci]
            x = pad_l + ci * cell_w
            fill = "#eeeeee" if v is None else _heat_color((v - vmin) / span)
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}" stroke="#ccc">'
                f"<title>{escape(r)} → {escape(c)}: {_fmt(v)}</title></rect>"
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 3:.1f}" class="cell" '
                f'text-anchor="middle">{_fmt(v)}</text>'
            )
    out.append("</svg>")
    return "".join(out)
