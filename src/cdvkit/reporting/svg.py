"""Small inline SVG charts, so the HTML report needs no plotting library and no network."""

from __future__ import annotations

from html import escape

SERIES_COLORS = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948")


def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text_px(text: str) -> int:
    """Rough width of 11px sans-serif text: SVG has no layout, so room is reserved by estimate."""
    return int(6.3 * len(text)) + 4


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def bar_chart(
    groups: list[str],
    series: list[str],
    values: list[list[float | None]],
    *,
    title: str = "",
    ymax: float = 1.0,
) -> str:
    """Grouped vertical bars: ``values[g][s]`` for group ``g`` and series ``s``, in [0, ymax]."""
    bar_w, gap, pad_t, h = 18, 22, 28, 200
    group_w = bar_w * len(series) + gap
    # Group labels are rotated 40 degrees and end under their group: room for the longest one.
    label_px = max([_text_px(_short(g)) for g in groups] or [0])
    pad_l = int(max(44, label_px * 0.77 - group_w / 2 + 8))
    pad_b = int(label_px * 0.64 + 40)
    legend_w = sum(14 + _text_px(_short(s, 30)) + 16 for s in series)
    title_px = int(_text_px(title) * 1.2)
    width = max(pad_l + group_w * len(groups) + 20, pad_l + legend_w + 10, title_px + 60, 260)
    height = pad_t + h + pad_b
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    if title:
        out.append(f'<text x="{pad_l}" y="16" class="ttl">{escape(title)}</text>')
    for k in range(5):
        frac = k / 4
        y = pad_t + h - frac * h
        out.append(
            f'<line x1="{pad_l}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">'
            f"{frac * ymax:.0%}</text>"
        )
    for gi, g in enumerate(groups):
        x0 = pad_l + gi * group_w + gap / 2
        for si, s in enumerate(series):
            v = values[gi][si]
            color = SERIES_COLORS[si % len(SERIES_COLORS)]
            x = x0 + si * bar_w
            if v is None:
                continue
            bh = max(0.0, min(v / ymax, 1.0)) * h
            out.append(
                f'<rect x="{x:.1f}" y="{pad_t + h - bh:.1f}" width="{bar_w - 2}" '
                f'height="{bh:.1f}" fill="{color}"><title>{escape(g)} · {escape(s)}: '
                f"{_fmt(v)}</title></rect>"
            )
        cx = x0 + bar_w * len(series) / 2
        out.append(
            f'<text x="{cx:.1f}" y="{pad_t + h + 14}" class="ax" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {pad_t + h + 14})"><title>{escape(g)}</title>'
            f"{escape(_short(g))}</text>"
        )
    lx = pad_l
    ly = height - 10
    for si, s in enumerate(series):
        color = SERIES_COLORS[si % len(SERIES_COLORS)]
        out.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" class="ax">{escape(_short(s, 30))}</text>'
        )
        lx += 14 + _text_px(_short(s, 30)) + 16
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
    """A matrix of coloured cells with the value written in each (percent)."""
    cell_w, cell_h, pad_l, pad_t = 92, 34, 170, 96
    # Column labels lean right past the last cell.
    width = (
        pad_l + cell_w * len(cols) + 10 + int(_text_px(_short(cols[-1], 20)) * 0.9 if cols else 0)
    )
    height = pad_t + cell_h * len(rows) + 24
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    if title:
        out.append(f'<text x="4" y="16" class="ttl">{escape(title)}</text>')
    if col_title:
        out.append(f'<text x="{pad_l}" y="34" class="ax">{escape(col_title)} →</text>')
    if row_title:
        out.append(f'<text x="4" y="{pad_t - 6}" class="ax">{escape(row_title)} ↓</text>')
    for ci, c in enumerate(cols):
        cx = pad_l + ci * cell_w + cell_w / 2
        out.append(
            f'<text x="{cx:.1f}" y="{pad_t - 8}" class="ax" text-anchor="start" '
            f'transform="rotate(-25 {cx:.1f} {pad_t - 8})"><title>{escape(c)}</title>'
            f"{escape(_short(c, 20))}</text>"
        )
    span = (vmax - vmin) or 1.0
    for ri, r in enumerate(rows):
        y = pad_t + ri * cell_h
        out.append(
            f'<text x="{pad_l - 6}" y="{y + cell_h / 2 + 4:.1f}" class="ax" text-anchor="end">'
            f"<title>{escape(r)}</title>{escape(_short(r, 24))}</text>"
        )
        for ci, c in enumerate(cols):
            v = values[ri][ci]
            x = pad_l + ci * cell_w
            fill = "#eeeeee" if v is None else _heat_color((v - vmin) / span)
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"><title>{escape(r)} → {escape(c)}: {_fmt(v)}</title></rect>'
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 3:.1f}" class="cell" '
                f'text-anchor="middle">{_fmt(v)}</text>'
            )
    out.append("</svg>")
    return "".join(out)
