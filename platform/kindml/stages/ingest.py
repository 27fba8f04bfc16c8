"""Stage ``ingest``: the workload's seeded generator, or bring-your-own tables; row counts, the time window, a content hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.data.load import content_hash, write_parquet
from kindml.errors import DataError
from kindml.workload.contract import Workload


def run(wl: Workload, out_dir: Path) -> dict[str, Any]:
    d = wl.cfg.data
    manifest: dict[str, Any] = {"workload": wl.name, "source": d.source}
    if d.source == "generate":
        got = wl.generate()
        tables = got.tables
        tables, damage = wl.corrupt(tables, d.corruption.rate, d.seed) if d.corruption.rate > 0 else (tables, {"rows": 0})
        manifest |= {"seed": d.seed, "history_drift": d.history_drift, **got.facts, "corruption": damage}
    else:
        assert d.path is not None  # checked by the config model
        tables = wl.load(d.path)
        wl.check_loaded(tables)
        manifest |= {"path": str(d.path)}
    events = tables[wl.event_table]
    ts = pd.to_datetime(events[wl.timestamp], utc=True, errors="coerce").dropna()
    if ts.empty:
        raise DataError(f"table {wl.event_table!r} has no valid {wl.timestamp}", "Every event needs a timestamp (ISO 8601 / datetime).")
    if "window_start" not in manifest:
        start = ts.min().normalize()
        end = ts.max().normalize() + pd.Timedelta(days=1)
        manifest |= {"window_start": start.isoformat(), "window_end": end.isoformat(), "days": int((end - start).days)}
    for name, df in tables.items():
        write_parquet(df, out_dir / f"{name}.parquet")
    manifest |= {
        "tables": list(tables),
        "rows": len(events),
        **wl.data_summary(tables),
        "content_hash": content_hash(*(tables[name] for name in sorted(tables))),
    }
    (out_dir / "ingest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest


def read_tables(folder: Path, manifest: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The tables an ingest (or validate) output folder holds."""
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in manifest["tables"]}
