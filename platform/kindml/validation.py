"""Raw-data validation with Great Expectations 1.x suites that a workload provides.

A workload's suites (``Workload.suites``) check the schema, nulls, value
ranges, category sets, uniqueness, referential integrity and freshness of its
tables. They run in order; a failing reference table stops validation.

Row-level failures of the event table (a null, an out-of-range value, an
unknown category, a future timestamp, a duplicate id, an unknown entity) can be
*quarantined*: the offending rows are written aside with the reason, counted,
and the clean rest is validated again. Table-level failures (missing columns,
stale data, too few rows) always fail. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.config import ValidationConfig

ROW_LEVEL = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_unique",
    "expect_column_value_lengths_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_compound_columns_to_be_unique",
}


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    row_level: bool
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    examples: list[Any] = field(default_factory=list)
    observed: Any = None
    detail: str = ""


@dataclass
class ValidationReport:
    table: str
    rows: int
    success: bool
    outcomes: list[ExpectationOutcome]
    quarantined_rows: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    clean_rows: int | None = None
    validated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed_expectations"] = len(self.failed)
        d["evaluated_expectations"] = len(self.outcomes)
        return d

    def summary_line(self) -> str:
        if self.success and not self.quarantined_rows:
            return f"{self.table}: {len(self.outcomes)} expectations passed on {self.rows} rows"
        if self.success:
            return f"{self.table}: passed after quarantining {self.quarantined_rows} of {self.rows} rows"
        worst = ", ".join(f"{o.expectation}({o.column or 'table'}): {o.unexpected_count} rows" if o.row_level else f"{o.expectation}({o.column or 'table'})" for o in self.failed[:4])
        return f"{self.table}: {len(self.failed)} of {len(self.outcomes)} expectations failed: {worst}"

    def to_markdown(self) -> str:
        lines = [
            f"# Data validation: {self.table}",
            "",
            f"- rows: {self.rows}",
            f"- result: **{'PASSED' if self.success else 'FAILED'}**",
            f"- quarantined rows: {self.quarantined_rows}" + (f" ({', '.join(f'{k}: {v}' for k, v in self.quarantine_reasons.items())})" if self.quarantine_reasons else ""),
            f"- validated at: {self.validated_at}",
            "",
            "| status | expectation | column | unexpected rows | % | examples / observed |",
            "|---|---|---|---:|---:|---|",
        ]
        for o in sorted(self.outcomes, key=lambda o: o.success):
            ex = ", ".join(_short(v) for v in o.examples[:5]) if o.examples else (_short(o.observed) if o.observed is not None else "")
            lines.append(
                f"| {'ok' if o.success else '**FAIL**'} | {o.expectation} | {o.column or '(table)'} | {o.unexpected_count if o.row_level else ''} | {o.unexpected_percent:.2f} | {ex}{(' — ' + o.detail) if o.detail else ''} |"
            )
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        import html

        rows = []
        for o in sorted(self.outcomes, key=lambda o: o.success):
            ex = ", ".join(_short(v) for v in o.examples[:5]) if o.examples else (_short(o.observed) if o.observed is not None else "")
            rows.append(
                f"<tr class={'ok' if o.success else 'fail'}><td>{'ok' if o.success else 'FAIL'}</td><td>{html.escape(o.expectation)}</td>"
                f"<td>{html.escape(o.column or '(table)')}</td><td>{o.unexpected_count if o.row_level else ''}</td><td>{o.unexpected_percent:.2f}</td><td>{html.escape(ex)}</td></tr>"
            )
        return (
            "<!doctype html><meta charset=utf-8><title>Data validation</title>"
            "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd}.fail{background:#fde2e2}</style>"
            f"<h1>Data validation: {html.escape(self.table)}</h1><p>{html.escape(self.summary_line())}</p>"
            "<table><tr><th>status</th><th>expectation</th><th>column</th><th>unexpected</th><th>%</th><th>examples</th></tr>"
            + "".join(rows)
            + "</table>"
        )


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _jsonable(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def run_suite(df: pd.DataFrame, name: str, expectations: list[Any], example_rows: int) -> tuple[ValidationReport, dict[str, list[int]]]:
    """Validate ``df``; return the report and, per failed row-level expectation, the bad row positions."""
    import great_expectations as gx

    ctx = _context()
    frame = df.reset_index(drop=True)
    batch = ctx.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name).add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = gx.ExpectationSuite(name=f"{name}_suite")
    for e in expectations:
        suite.add_expectation(e)
    suite = ctx.suites.add(suite)
    res = batch.validate(suite, result_format={"result_format": "COMPLETE", "partial_unexpected_count": example_rows})
    outcomes: list[ExpectationOutcome] = []
    bad_rows: dict[str, list[int]] = {}
    for r in res.results:
        kind = r.expectation_config.type
        kwargs = r.expectation_config.kwargs
        col = kwargs.get("column") or ("+".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
        result = r.result or {}
        exc = (r.exception_info or {}).get("exception_message") if isinstance(r.exception_info, dict) else None
        row_level = kind in ROW_LEVEL
        outcome = ExpectationOutcome(
            expectation=kind,
            column=col,
            success=bool(r.success),
            row_level=row_level,
            unexpected_count=int(result.get("unexpected_count") or 0),
            unexpected_percent=float(result.get("unexpected_percent") or 0.0),
            examples=[_jsonable(v) for v in (result.get("partial_unexpected_list") or [])[:example_rows]],
            observed=_jsonable(result.get("observed_value")),
            detail=str(exc)[:200] if exc else "",
        )
        outcomes.append(outcome)
        if row_level and not r.success:
            bad_rows[f"{kind}:{col}"] = [int(i) for i in (result.get("unexpected_index_list") or [])]
    return ValidationReport(table=name, rows=len(frame), success=bool(res.success), outcomes=outcomes), bad_rows


def validate_tables(tables: dict[str, pd.DataFrame], suites: list[Any], cfg: ValidationConfig,
                    rebuild: Any = None) -> tuple[ValidationReport, dict[str, pd.DataFrame], pd.DataFrame]:
    """Run the suites in order; with ``cfg.quarantine``, split bad rows off the quarantinable (event) table.

    ``rebuild(tables) -> suites`` makes the suites again for the re-check of the clean rows (suites may
    depend on the data, e.g. a set of known ids); default: the same suites.
    Returns (the report of the event table, or of the first failing table; the clean tables;
    the quarantined rows with a ``quarantine_reason`` column).
    """
    tables = dict(tables)
    event = next((s for s in suites if s.quarantine), suites[-1])
    for suite in suites:
        if suite is event:
            continue
        report, _ = run_suite(tables[suite.table], suite.table, suite.expectations, cfg.example_rows)
        if not report.success:
            df = tables[event.table]
            return report, tables, df.iloc[0:0]
    tx = tables[event.table].reset_index(drop=True)
    tables[event.table] = tx
    report, bad = run_suite(tx, event.table, event.expectations, cfg.example_rows)
    empty = tx.iloc[0:0].assign(quarantine_reason=pd.Series(dtype=object))
    if report.success or not cfg.quarantine or not event.quarantine:
        return report, tables, empty
    table_failures = [o for o in report.failed if not o.row_level]
    if table_failures:
        return report, tables, empty  # cannot be fixed by setting rows aside
    reasons = pd.Series([[] for _ in range(len(tx))], dtype=object)
    for key, idx in bad.items():
        for i in idx:
            reasons.iat[i].append(key)
    mask = reasons.map(bool).to_numpy()
    quarantine = tx.loc[mask].assign(quarantine_reason=reasons[mask].map(lambda r: ";".join(r)).to_numpy())
    clean = tx.loc[~mask].reset_index(drop=True)
    counts = {k: len(v) for k, v in bad.items()}
    report.quarantined_rows = int(mask.sum())
    report.quarantine_reasons = counts
    if report.quarantined_rows / max(len(tx), 1) > cfg.max_quarantine_fraction:
        report.outcomes.append(
            ExpectationOutcome(
                expectation="kindml_quarantine_fraction_at_most",
                column=None,
                success=False,
                row_level=False,
                observed=round(report.quarantined_rows / len(tx), 4),
                detail=f"limit {cfg.max_quarantine_fraction}",
            )
        )
        report.success = False
        return report, tables, empty
    # prove the rest is clean: validate it again
    clean_tables = {**tables, event.table: clean}
    again = rebuild(clean_tables) if rebuild is not None else suites
    recheck_suite = next((s for s in again if s.table == event.table), event)
    recheck, _ = run_suite(clean, event.table, recheck_suite.expectations, cfg.example_rows)
    report.clean_rows = len(clean)
    report.success = recheck.success
    if not recheck.success:
        report.outcomes.extend(o for o in recheck.failed)
    return report, clean_tables, quarantine


def write_report(report: ValidationReport, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "validation.json", "markdown": folder / "validation.md", "html": folder / "validation.html"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    paths["html"].write_text(report.to_html(), encoding="utf-8")
    return paths
