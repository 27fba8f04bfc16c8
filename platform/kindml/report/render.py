"""Assemble the run report: one self-contained HTML page (inline CSS and SVG, no script, no network asset)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kindml import __version__
from kindml.report import sections
from kindml.report.collect import RunData
from kindml.report.markup import badge, esc, note

log = logging.getLogger(__name__)

# (id, title, builder): the order of the page. Ids are stable: tests and links use them.
SECTIONS: tuple[tuple[str, str, Callable[[RunData], str]], ...] = (
    ("overview", "Overview", sections.overview),
    ("timeline", "Stage timeline", sections.timeline),
    ("validation", "Data validation", sections.validation),
    ("training", "Training and tuning", sections.training),
    ("evaluation", "Evaluation", sections.evaluation),
    ("registry", "Model versions and lineage", sections.registry),
    ("batch", "Batch inference", sections.batch),
    ("importance", "Feature importance", sections.importance),
    ("audit", "Approvals and audit trail", sections.audit),
    ("serving", "Serving latency", sections.serving),
    ("drift", "Drift per feature", sections.drift),
    ("quality", "Model quality (delayed labels)", sections.model_quality),
    ("experiment", "Experiment", sections.experiment),
    ("alerts", "Alerts fired", sections.alerts),
    ("benchmarks", "Benchmarks", sections.benchmarks),
)

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--fg);background:var(--bg);font-size:14px;line-height:1.45}
header{background:#111827;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header .meta{color:#d1d5db;margin-top:4px}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 28px;display:flex;flex-wrap:wrap;gap:14px}
nav a{color:var(--accent);text-decoration:none;font-size:13px}
main{max-width:1320px;margin:0 auto;padding:8px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:18px 0}
section>h2{margin:0 0 12px;font-size:18px}
h3{font-size:14px;margin:16px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:170px;background:#fcfcfd}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:20px;font-weight:600;margin-top:2px}
.card .sub{color:var(--muted);font-size:12px}
.note{border-left:4px solid #60a5fa;background:#eff6ff;padding:8px 12px;margin:8px 0;border-radius:4px}
.note.ok{border-color:#16a34a;background:#f0fdf4}
.note.warn{border-color:#f59e0b;background:#fffbeb}
.note.error{border-color:#dc2626;background:#fef2f2;font-size:15px}
.note .hint{margin-top:4px;color:#374151;font-size:13px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#6b7280}
.s-succeeded,.s-ok{background:#16a34a}.s-cached{background:#86efac;color:#14532d}.s-failed,.s-fired,.s-drift{background:#dc2626}
.s-interrupted{background:#f97316}.s-running,.s-shift{background:#eab308;color:#422006}.s-skipped{background:#9ca3af}
.s-not_run{background:#d1d5db;color:#374151}
.tablewrap{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
caption{text-align:left;color:var(--muted);padding:4px 0;font-size:12px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#ecfdf5;font-weight:600}
tr.bad td{background:#fef2f2}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-all}
code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px}
.grid{display:grid;gap:16px;align-items:start}
.grid.two{grid-template-columns:repeat(auto-fit,minmax(460px,1fr))}
.grid.three{grid-template-columns:repeat(auto-fit,minmax(380px,1fr))}
.muted{color:var(--muted)}
.legend .badge{margin-right:4px}
details{margin:8px 0}summary{cursor:pointer;color:var(--accent)}
.charttitle{font-weight:600;font-size:13px;text-align:center;margin:6px 0}
.cmwrap{max-width:520px}
table.cmtable{width:auto;margin:0 auto}
table.cmtable th{background:#fff;text-align:center}
td.cm{width:150px;height:90px;text-align:center;vertical-align:middle}
td.cm .n{font-size:20px;font-weight:600}td.cm .sub{color:#374151;font-size:12px}
footer{color:var(--muted);font-size:12px;margin-top:20px}
"""


def render_html(data: RunData) -> str:
    """The report page of ``data`` as a string."""
    s = data.summary
    body = []
    for sid, title, build in SECTIONS:
        try:
            inner = build(data)
        except Exception as exc:  # a malformed artifact must not cost the whole report
            log.debug("report section %s failed", sid, exc_info=True)
            inner = note(f"This section could not be rendered: {type(exc).__name__}: {exc}", "error")
        body.append(f'<section id="{sid}"><h2>{esc(title)}</h2>{inner}</section>')
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in SECTIONS)
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.notes)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    status = str(s.get("status") or "unknown")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>kindml run {esc(data.run_id)}: {esc(status)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>kindml run report: {esc(data.run_id)} {badge(status)}</h1>'
        f'<div class="meta">pipeline {esc(s.get("pipeline") or "capstone")} · target {esc(s.get("target") or "local")} · '
        f"started {esc(s.get('started') or '?')}</div></header>"
        f"<nav>{nav}</nav><main>{''.join(body)}"
        f"<footer>Generated by kindml {esc(__version__)} at {generated} from {esc(data.run_dir)}."
        f"{f'<ul>{notes}</ul>' if notes else ''}</footer></main></body></html>\n"
    )


def write_report(data: RunData, out: Path | None = None) -> Path:
    """Write the page (default ``<run_dir>/report.html``) atomically; returns its path."""
    from kindml.workspace import atomic_write_text

    path = out or data.run_dir / "report.html"
    atomic_write_text(path, render_html(data))
    path.chmod(0o644)  # a page to share, not a secret (atomic writes create 0600 files)
    return path
