"""HTML building blocks of the run report: escaping, numbers, tables, cards, notes. Every value is escaped here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def esc(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def num(v: Any, nd: int = 4) -> str:
    """A number for people: ``-`` when absent, thousands separators for counts, ``nd`` significant decimals otherwise."""
    if v is None or isinstance(v, bool):
        return "-" if v is None else ("yes" if v else "no")
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        if 0 < abs(v) < 1:  # significant digits: 0.8948, 0.004039, 1.03e-07
            return f"{v:.{nd}g}"
        return f"{v:.{nd}f}".rstrip("0").rstrip(".") or "0"
    return esc(v)


def pct(v: Any, nd: int = 2) -> str:
    return "-" if not isinstance(v, int | float) else f"{v * 100:.{nd}f} %"


def badge(status: str) -> str:
    return f'<span class="badge s-{esc(status)}">{esc(status.replace("_", " "))}</span>'


def note(text: str, kind: str = "info", raw: bool = False) -> str:
    """A callout: info, ok, warn or error. ``raw``: ``text`` is already markup."""
    return f'<div class="note {esc(kind)}">{text if raw else esc(text)}</div>'


def cards(items: Iterable[tuple[str, str, str]]) -> str:
    """Metric tiles: (label, value markup, sub-text)."""
    out = ['<div class="cards">']
    for label, value, sub in items:
        sub_html = f'<div class="sub">{esc(sub)}</div>' if sub else ""
        out.append(f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{value}</div>{sub_html}</div>')
    out.append("</div>")
    return "".join(out)


def _attr(name: str, value: str) -> str:
    return f' {name}="{esc(value)}"' if value else ""


def table(head: Sequence[str], rows: Iterable[Sequence[str]], row_classes: Sequence[str] | None = None,
          numeric: Iterable[int] = (), caption: str = "") -> str:
    """A table; cells are markup (escape values with :func:`esc` / :func:`num` first). ``numeric``: right-aligned columns."""
    right = set(numeric)
    out = ['<div class="tablewrap"><table>']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th{_attr('class', 'num' if i in right else '')}>{esc(h)}</th>" for i, h in enumerate(head))
               + "</tr></thead><tbody>")
    for n, row in enumerate(rows):
        cls = row_classes[n] if row_classes and n < len(row_classes) else ""
        cells = "".join(f"<td{_attr('class', 'num' if i in right else '')}>{c}</td>" for i, c in enumerate(row))
        out.append(f"<tr{_attr('class', cls)}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def kv(pairs: Iterable[tuple[str, Any]], code: bool = False) -> str:
    """A two-column definition list; values are escaped (in ``<code>`` if ``code``)."""
    rows = []
    for k, v in pairs:
        val = esc(v) if not isinstance(v, int | float) or isinstance(v, bool) else num(v)
        rows.append(f"<dt>{esc(k)}</dt><dd>{f'<code>{val}</code>' if code else val}</dd>")
    return f'<dl class="kv">{"".join(rows)}</dl>'


def short(text: Any, n: int = 80) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def grid(items: Iterable[str], cls: str = "grid") -> str:
    return f'<div class="{cls}">' + "".join(f"<div>{i}</div>" for i in items) + "</div>"
