"""Stage ``validate``: the workload's Great Expectations suites; fail with a report, or quarantine bad event rows."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.data.load import write_parquet
from kindml.errors import ValidationFailed
from kindml.stages.context import carry_lineage
from kindml.stages.ingest import read_tables
from kindml.validation import validate_tables, write_report
from kindml.workload.contract import Workload


def run(wl: Workload, raw_dir: Path, out_clean_dir: Path, out_report_dir: Path) -> dict[str, Any]:
    manifest = json.loads((raw_dir / "ingest.json").read_text(encoding="utf-8"))
    tables = read_tables(raw_dir, manifest)
    now = datetime.now(UTC)
    report, clean, quarantine = validate_tables(tables, wl.suites(tables, now), wl.cfg.validation,
                                                rebuild=lambda t: wl.suites(t, now))
    paths = write_report(report, out_report_dir)
    if len(quarantine):
        write_parquet(quarantine, out_report_dir / "quarantine.parquet")
    summary = {
        "success": report.success,
        "rows": report.rows,
        "evaluated_expectations": len(report.outcomes),
        "failed_expectations": len(report.failed),
        "quarantined_rows": report.quarantined_rows,
        "quarantine_reasons": report.quarantine_reasons,
        "clean_rows": report.clean_rows if report.clean_rows is not None else (report.rows if report.success else 0),
        "summary": report.summary_line(),
    }
    (out_report_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if not report.success:
        raise ValidationFailed(f"data validation failed — {report.summary_line()}. Report: {paths['markdown']}")
    for name, df in clean.items():
        write_parquet(df, out_clean_dir / f"{name}.parquet")
    shutil.copy2(raw_dir / "ingest.json", out_clean_dir / "ingest.json")
    carry_lineage(raw_dir, out_clean_dir, ingest=raw_dir / "ingest.json", validation=out_report_dir / "summary.json")
    return summary
