"""Stage ``validate``: the Great Expectations suite; fail with a report, or quarantine bad rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.config import KindmlConfig
from kindml.data.load import write_parquet
from kindml.errors import ValidationFailed
from kindml.validation import validate_raw, write_report


def run(cfg: KindmlConfig, raw_dir: Path, out_clean_dir: Path, out_report_dir: Path) -> dict[str, Any]:
    tx = pd.read_parquet(raw_dir / "transactions.parquet")
    accounts = pd.read_parquet(raw_dir / "accounts.parquet")
    report, clean, quarantine = validate_raw(tx, accounts, cfg.validation)
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
        raise ValidationFailed(
            f"data validation failed — {report.summary_line()}. Report: {paths['markdown']}",
        )
    write_parquet(clean, out_clean_dir / "transactions.parquet")
    shutil.copy2(raw_dir / "accounts.parquet", out_clean_dir / "accounts.parquet")
    shutil.copy2(raw_dir / "ingest.json", out_clean_dir / "ingest.json")
    return summary
