"""Raw-data validation with a Great Expectations 1.x suite.

The suite checks the schema, nulls, value ranges, category sets, uniqueness,
referential integrity (every transaction's account exists) and freshness.

Row-level failures (a null, an out-of-range amount, an unknown category, a
future timestamp, a duplicate id, an unknown account) can be *quarantined*:
the offending rows are written aside with the reason, counted, and the clean
rest is validated again. Table-level failures (missing columns, stale data, too
few rows) always fail. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.config import ValidationConfig
from kindml.data.schema import CATEGORIES, CHANNELS, COUNTRIES, SEGMENTS, TRANSACTION_COLUMNS

MIN_ROWS = 1_000
ROW_LEVEL = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_unique",
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


def transaction_suite(cfg: ValidationConfig, account_ids: np.ndarray, now: datetime) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=list(TRANSACTION_COLUMNS), exact_match=True),
        E.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS),
    ]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in TRANSACTION_COLUMNS]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="transaction_id"),
        E.ExpectColumnValuesToBeBetween(column="amount", min_value=0.01, max_value=cfg.max_amount),
        E.ExpectColumnValuesToBeInSet(column="merchant_category", value_set=list(CATEGORIES)),
        E.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        E.ExpectColumnValuesToBeInSet(column="country", value_set=list(COUNTRIES)),
        E.ExpectColumnValuesToBeInSet(column="is_fraud", value_set=[0, 1]),
        E.ExpectColumnValuesToBeInSet(column="account_id", value_set=[int(a) for a in account_ids]),
        E.ExpectColumnValuesToBeBetween(column="merchant_id", min_value=1),
        # no timestamps from the future (one hour of clock skew allowed)
        E.ExpectColumnValuesToBeBetween(column="event_timestamp", max_value=now + timedelta(hours=1)),
    ]
    if cfg.freshness_days is not None:
        exps.append(E.ExpectColumnMaxToBeBetween(column="event_timestamp", min_value=now - timedelta(days=cfg.freshness_days)))
    return exps


def account_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToNotBeNull(column="account_id"),
        E.ExpectColumnValuesToBeUnique(column="account_id"),
        E.ExpectColumnValuesToNotBeNull(column="created_at"),
        E.ExpectColumnValuesToBeBetween(column="credit_limit", min_value=0, max_value=10_000_000),
        E.ExpectColumnValuesToBeInSet(column="home_country", value_set=list(COUNTRIES)),
        E.ExpectColumnValuesToBeInSet(column="segment", value_set=list(SEGMENTS)),
    ]


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
        col = r.expectation_config.kwargs.get("column")
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


def validate_raw(
    transactions: pd.DataFrame,
    accounts: pd.DataFrame,
    cfg: ValidationConfig,
    now: datetime | None = None,
) -> tuple[ValidationReport, pd.DataFrame, pd.DataFrame]:
    """Validate; with ``cfg.quarantine``, split off bad rows.

    Returns (report, clean transactions, quarantined rows with a ``quarantine_reason`` column).
    """
    now = now or datetime.now(UTC)
    acc_report, _ = run_suite(accounts, "accounts", account_suite(), cfg.example_rows)
    if not acc_report.success:
        return acc_report, transactions.iloc[0:0], transactions.iloc[0:0]
    tx = transactions.reset_index(drop=True)
    report, bad = run_suite(tx, "transactions", transaction_suite(cfg, accounts["account_id"].to_numpy(), now), cfg.example_rows)
    empty = tx.iloc[0:0].assign(quarantine_reason=pd.Series(dtype=object))
    if report.success or not cfg.quarantine:
        return report, tx, empty
    table_failures = [o for o in report.failed if not o.row_level]
    if table_failures:
        return report, tx, empty  # cannot be fixed by setting rows aside
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
        return report, tx, empty
    # prove the rest is clean: validate it again
    recheck, _ = run_suite(clean, "transactions", transaction_suite(cfg, accounts["account_id"].to_numpy(), now), cfg.example_rows)
    report.clean_rows = len(clean)
    report.success = recheck.success
    if not recheck.success:
        report.outcomes.extend(o for o in recheck.failed)
    return report, clean, quarantine


def write_report(report: ValidationReport, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "validation.json", "markdown": folder / "validation.md", "html": folder / "validation.html"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    paths["html"].write_text(report.to_html(), encoding="utf-8")
    return paths
