"""Stage ``features``: offline tables → Feast apply → point-in-time training set → materialize."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.config import KindmlConfig
from kindml.data.load import write_parquet
from kindml.features import store as fstore
from kindml.features.definitions import ACCOUNT_VIEW, FEATURE_SERVICE, MERCHANT_VIEW
from kindml.runtime import RuntimeEnv


def run(cfg: KindmlConfig, env: RuntimeEnv, clean_dir: Path, out_dir: Path) -> dict[str, Any]:
    tx = pd.read_parquet(clean_dir / "transactions.parquet")
    accounts = pd.read_parquet(clean_dir / "accounts.parquet")
    window = json.loads((clean_dir / "ingest.json").read_text(encoding="utf-8"))
    start = pd.Timestamp(window["window_start"])
    end = pd.Timestamp(window["window_end"])
    days = int(window["days"])
    repo = env.feature_repo_path
    # one folder of offline tables per data version: views point at the data they came from
    data_dir = repo / "data" / window["content_hash"][:16]
    t0 = time.perf_counter()
    table_rows = fstore.write_offline_tables(tx, accounts, start, days, data_dir)
    store = fstore.open_store(repo, cfg.features.project, env.online_store, env.redis_connection, env.feature_registry)
    with fstore.registry_errors(env.feature_registry):
        fstore.apply_definitions(store, data_dir)
        t1 = time.perf_counter()
        training = fstore.historical_features(store, tx, FEATURE_SERVICE)
        restored = int(training.attrs.get("restored_rows", 0))
        t2 = time.perf_counter()
        fstore.materialize(store, start.to_pydatetime(), end.to_pydatetime())
        t3 = time.perf_counter()
    write_parquet(training, out_dir / "training_set.parquet")
    info = {
        "feature_service": FEATURE_SERVICE,
        "feature_views": [ACCOUNT_VIEW, MERCHANT_VIEW],
        "project": cfg.features.project,
        "online_store": env.online_store,
        "registry": env.feature_registry or "file",
        "offline_data": str(data_dir),
        "rows": len(training),
        "rows_without_features": restored,
        "materialized": [start.isoformat(), end.isoformat()],
        **table_rows,
        "seconds": {"build_apply": round(t1 - t0, 2), "historical": round(t2 - t1, 2), "materialize": round(t3 - t2, 2)},
    }
    (out_dir / "features.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info
