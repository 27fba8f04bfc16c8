"""Tiny inline-SVG charts for the run report: line charts, horizontal bars and a Gantt timeline.

Pure Python, no plotting library: the report must open offline, stay small and
render the same in every browser. Every function returns an ``<svg>`` element
(a string) sized by its ``viewBox`` so it scales to the page width. All text is
escaped. ``None`` / NaN values in a series leave a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d")
STATUS_COLORS = {
    "succeeded": "#16a34a", "cached": "#86efac", "failed": "#dc2626", "interrupted": "#f97316",
    "running": "#eab308", "skipped": "#9ca3af", "not_run": "#d1d5db",
}
FONT = "font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif\""


@dataclass
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str | None = None
    dash: bool = False
    markers: bool = False


@dataclass
class HLine:
    y: float
    label: str
    color: str = "#dc2626"


@dataclass
class Frame:
    """Maps data coordinates into the plot area of a ``width`` x ``height`` SVG."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int
    left: int = 56
    right: int = 16
    top: int = 28
    bottom: int = 44

    def px(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * (self.width - self.left - self.right)

    def py(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (y - self.y0) / span * (self.height - self.top - self.bottom)


def finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (finite(lo) and finite(hi)):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 11, color: str = "#374151", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{color}" {extra}>{escape(s)}</text>'


def _open(width: int, height: int, title: str) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" '
            f'style="max-width:{width}px" role="img" aria-label="{escape(title, quote=True)}" {FONT}>'
            f"<title>{escape(title)}</title>")


def _extent(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi == lo:
        return lo - 0.5 if lo else 0.0, hi + 0.5 if hi else 1.0
    return lo - (hi - lo) * pad, hi + (hi - lo) * pad


def line_chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    hlines: Sequence[HLine] = (),
    diagonal: bool = False,
    width: int = 520,
    height: int = 300,
    legend: bool = True,
    integer_x: bool = False,
) -> str:
    """A line chart of ``series``; ``hlines`` are dashed thresholds, ``diagonal`` draws y = x (ROC chance line).

    ``integer_x``: only whole-number x ticks (epochs). The legend sits in a row above the plot.
    """
    xs = [float(x) for s in series for x, y in zip(s.xs, s.ys, strict=False) if finite(x) and finite(y)]
    ys = [float(y) for s in series for y in s.ys if finite(y)] + [h.y for h in hlines if finite(h.y)]
    x0, x1 = x_range or _extent(xs)
    y0, y1 = y_range or _extent(ys + ([0.0] if ys and min(ys) >= 0 else []), pad=0.05)
    show_legend = legend and any(s.label for s in series)
    f = Frame(x0, x1, y0, y1, width, height, top=44 if show_legend else 28)
    out = [_open(width, height, title or y_label)]
    if title:
        out.append(_text(width / 2, 16, title, size=13, color="#111827", extra='font-weight="600"'))
    # grid and axes
    for t in nice_ticks(y0, y1):
        if y0 - 1e-12 <= t <= y1 + 1e-12:
            y = f.py(t)
            out.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{width - f.right}" y2="{y:.1f}" stroke="#e5e7eb"/>')
            out.append(_text(f.left - 6, y + 4, fmt_tick(t), anchor="end", size=10, color="#6b7280"))
    for t in nice_ticks(x0, x1, 6):
        if x0 - 1e-12 <= t <= x1 + 1e-12 and not (integer_x and not float(t).is_integer()):
            x = f.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{f.top}" x2="{x:.1f}" y2="{height - f.bottom}" stroke="#f3f4f6"/>')
            out.append(_text(x, height - f.bottom + 14, fmt_tick(t), size=10, color="#6b7280"))
    out.append(f'<rect x="{f.left}" y="{f.top}" width="{width - f.left - f.right}" height="{height - f.top - f.bottom}" '
               'fill="none" stroke="#9ca3af"/>')
    if x_label:
        out.append(_text((f.left + width - f.right) / 2, height - 8, x_label, size=11))
    if y_label:
        cy = (f.top + height - f.bottom) / 2
        out.append(_text(14, cy, y_label, size=11, extra=f'transform="rotate(-90 14 {cy:.1f})"'))
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        out.append(f'<line x1="{f.px(lo):.1f}" y1="{f.py(lo):.1f}" x2="{f.px(hi):.1f}" y2="{f.py(hi):.1f}" '
                   'stroke="#9ca3af" stroke-dasharray="4 4"/>')
    for h in hlines:
        if finite(h.y) and y0 <= h.y <= y1:
            y = f.py(h.y)
            out.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{width - f.right}" y2="{y:.1f}" stroke="{h.color}" '
                       'stroke-dasharray="6 4" stroke-width="1.5"/>')
            out.append(_text(width - f.right - 4, y - 4, h.label, anchor="end", size=10, color=h.color))
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.dash else ""
        for run in _runs(s.xs, s.ys):
            pts = " ".join(f"{f.px(x):.1f},{f.py(y):.1f}" for x, y in run)
            if len(run) > 1:
                out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
            if s.markers or len(run) == 1:
                out.extend(f'<circle cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="3" fill="{color}"/>' for x, y in run)
    if show_legend:
        lx = float(f.left)
        for i, s in enumerate(series):
            if not s.label:
                continue
            color = s.color or PALETTE[i % len(PALETTE)]
            dash = ' stroke-dasharray="5 3"' if s.dash else ""
            out.append(f'<line x1="{lx:.1f}" y1="{f.top - 10}" x2="{lx + 16:.1f}" y2="{f.top - 10}" stroke="{color}" stroke-width="2.5"{dash}/>')
            out.append(_text(lx + 20, f.top - 6, s.label, anchor="start", size=10))
            lx += 28 + 6.2 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def _runs(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Split a series into contiguous runs of finite points (gaps at None / NaN)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=False):
        if finite(x) and finite(y):
            runs[-1].append((float(x), float(y)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def hbars(
    items: Sequence[tuple[str, float | None]],
    *,
    title: str = "",
    threshold: float | None = None,
    threshold_label: str = "",
    width: int = 560,
    bar_height: int = 18,
    value_fmt: str = "{:.3f}",
) -> str:
    """Horizontal bars (label, value); bars above ``threshold`` are red, with a dashed line at the threshold."""
    label_w = 190
    top = 26 if title else 8
    height = top + len(items) * (bar_height + 6) + 24
    vals = [v for _, v in items if finite(v)] + ([threshold] if threshold is not None else [])
    vmax = max(vals) * 1.1 if vals and max(vals) > 0 else 1.0
    plot_w = width - label_w - 70
    out = [_open(width, height, title or "bars")]
    if title:
        out.append(_text(width / 2, 16, title, size=13, color="#111827", extra='font-weight="600"'))
    for i, (label, v) in enumerate(items):
        y = top + i * (bar_height + 6)
        out.append(_text(label_w - 8, y + bar_height * 0.72, label, anchor="end", size=11))
        if finite(v):
            w = max(1.0, float(v) / vmax * plot_w)
            over = threshold is not None and float(v) > threshold
            out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" rx="2" '
                       f'fill="{"#dc2626" if over else "#2563eb"}"/>')
            out.append(_text(label_w + w + 6, y + bar_height * 0.72, value_fmt.format(float(v)), anchor="start", size=10))
        else:
            out.append(_text(label_w + 4, y + bar_height * 0.72, "n/a", anchor="start", size=10, color="#9ca3af"))
    if threshold is not None:
        x = label_w + threshold / vmax * plot_w
        y_end = top + len(items) * (bar_height + 6)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{y_end}" stroke="#dc2626" stroke-dasharray="5 4"/>')
        out.append(_text(x, y_end + 14, threshold_label or f"threshold {threshold:g}", size=10, color="#dc2626"))
    out.append("</svg>")
    return "".join(out)


def gantt(rows: Sequence[tuple[str, float, float, str, str]], *, title: str = "", width: int = 900) -> str:
    """A timeline: rows of (label, start_s, end_s, status, note); the bar colour follows the status."""
    label_w, top, row_h = 110, 30 if title else 10, 26
    height = top + len(rows) * row_h + 34
    end = max([e for _, _, e, _, _ in rows if finite(e)] + [1.0])
    f = Frame(0.0, end * 1.02, 0, 1, width, height, left=label_w, right=80, top=top, bottom=34)
    out = [_open(width, height, title or "timeline")]
    if title:
        out.append(_text(width / 2, 18, title, size=13, color="#111827", extra='font-weight="600"'))
    for t in nice_ticks(0.0, end, 8):
        x = f.px(t)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 30}" stroke="#f3f4f6"/>')
        out.append(_text(x, height - 16, fmt_tick(t) + " s", size=10, color="#6b7280"))
    for i, (label, start, stop, status, note) in enumerate(rows):
        y = top + i * row_h
        out.append(_text(label_w - 8, y + 17, label, anchor="end", size=12))
        color = STATUS_COLORS.get(status, "#6b7280")
        if finite(start) and finite(stop):
            x0, x1 = f.px(start), f.px(stop)
            w = max(x1 - x0, 3.0)
            out.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{color}">'
                       f"<title>{escape(label)}: {escape(status)} {escape(note)}</title></rect>")
            out.append(_text(x0 + w + 6, y + 17, f"{status} {note}".strip(), anchor="start", size=10, color="#374151"))
        else:
            out.append(_text(label_w + 4, y + 17, status.replace("_", " "), anchor="start", size=10, color=color))
    out.append("</svg>")
    return "".join(out)
