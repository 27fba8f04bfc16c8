"""Stage ``features``: the workload's offline tables → Feast apply → point-in-time training set → materialize."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.data.load import write_parquet
from kindml.features import store as fstore
from kindml.runtime import RuntimeEnv
from kindml.stages.context import carry_lineage
from kindml.stages.ingest import read_tables
from kindml.workload.contract import Window, Workload


def window_of(manifest: dict[str, Any]) -> Window:
    return Window(pd.Timestamp(manifest["window_start"]), pd.Timestamp(manifest["window_end"]))


def run(wl: Workload, env: RuntimeEnv, clean_dir: Path, out_dir: Path) -> dict[str, Any]:
    manifest = json.loads((clean_dir / "ingest.json").read_text(encoding="utf-8"))
    tables = read_tables(clean_dir, manifest)
    window = window_of(manifest)
    # one folder of offline tables per workload and data version: views point at the data they came from
    data_dir = env.feature_repo_path / "data" / wl.name / manifest["content_hash"][:16]
    t0 = time.perf_counter()
    repo = wl.feature_repo(tables, window, data_dir)
    table_rows = fstore.write_offline_tables(repo.offline_tables, data_dir)
    store = fstore.open_store(env.feature_repo_path, wl.cfg.features.project, env.online_store, env.redis_connection, env.feature_registry)
    with fstore.registry_errors(env.feature_registry):
        fstore.apply_definitions(store, repo.objects)
        t1 = time.perf_counter()
        training = fstore.historical_features(store, repo.entity_rows, repo.service, wl.row_id)
        restored = int(training.attrs.get("restored_rows", 0))
        t2 = time.perf_counter()
        fstore.materialize(store, window.start.to_pydatetime(), window.end.to_pydatetime(), repo.views)
        t3 = time.perf_counter()
    write_parquet(training, out_dir / "training_set.parquet")
    info = {
        "feature_service": repo.service,
        "feature_views": repo.views,
        "project": wl.cfg.features.project,
        "online_store": env.online_store,
        "registry": env.feature_registry or "file",
        "offline_data": str(data_dir),
        "rows": len(training),
        "rows_without_features": restored,
        "materialized": [window.start.isoformat(), window.end.isoformat()],
        **table_rows,
        "seconds": {"build_apply": round(t1 - t0, 2), "historical": round(t2 - t1, 2), "materialize": round(t3 - t2, 2)},
    }
    (out_dir / "features.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.copy2(clean_dir / "ingest.json", out_dir / "ingest.json")
    carry_lineage(clean_dir, out_dir, features=out_dir / "features.json")
    return info
