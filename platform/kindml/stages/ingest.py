"""Stage ``ingest``: generate (seeded) or load raw data; record row counts and a content hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.config import DriftSpec, KindmlConfig
from kindml.data.generate import build_world, corrupt, generate_history
from kindml.data.load import content_hash, load_folder, write_parquet


def run(cfg: KindmlConfig, out_dir: Path) -> dict[str, Any]:
    d = cfg.data
    manifest: dict[str, Any] = {"source": d.source}
    if d.source == "generate":
        world = build_world(d.seed, d.accounts, d.merchants, d.days, d.end_date)
        tx = generate_history(world, d.rows, DriftSpec.from_severity(d.history_drift) if d.history_drift else None)
        accounts = world.accounts
        tx, damage = corrupt(tx, d.corruption, d.seed, cfg.validation.max_amount)
        manifest |= {
            "seed": d.seed,
            "history_drift": d.history_drift,
            "window_start": world.start.isoformat(),
            "window_end": world.end.isoformat(),
            "days": d.days,
            "corruption": damage.to_dict(),
        }
    else:
        assert d.path is not None  # checked by the config model
        tx, accounts = load_folder(d.path)
        ts = tx["event_timestamp"].dropna()
        start = ts.min().normalize()
        end = ts.max().normalize() + pd.Timedelta(days=1)
        manifest |= {
            "path": str(d.path),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "days": int((end - start).days),
        }
    write_parquet(tx, out_dir / "transactions.parquet")
    write_parquet(accounts, out_dir / "accounts.parquet")
    manifest |= {
        "rows": len(tx),
        "accounts": len(accounts),
        "fraud_rate": round(float(pd.to_numeric(tx["is_fraud"], errors="coerce").mean()), 5),
        "content_hash": content_hash(tx, accounts),
    }
    (out_dir / "ingest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest
