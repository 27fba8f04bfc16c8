"""Stage ``batch``: batch inference with the served model, written to parquet and back to the feature store.

1. the workload says what to score (:meth:`~kindml.workload.contract.Workload.batch`): entity rows
   built from the validated tables (every user, every series, ...), optionally with a feature
   service whose features are joined point-in-time from Feast (as for training);
2. the champion's exported bundle (the model ``deploy`` serves) scores them with Ray Data
   ``map_batches`` (:mod:`kindml.serving.batch`): the kit's ``feeds`` → ONNX Runtime →
   :meth:`~kindml.workload.contract.Workload.batch_output`;
3. the output table goes to ``predictions.parquet`` and, with a
   :class:`~kindml.workload.contract.FeatureSink`, to the sink's offline table in the data version's
   Feast folder: ``feast apply`` of the sink's objects, then materialization of its view, so the
   online store serves the precomputed results.

With a :class:`~kindml.workload.contract.Horizon` (forecasts), the output is also kept in the workspace under
``batch/<model>/v<version>/`` (:func:`kindml.monitoring.actuals.save_forecasts`): the delayed actuals join to it.

``batch.json`` records the rows, the stage's seconds per step and the scoring throughput.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.data.load import write_parquet
from kindml.errors import ServingError, UsageError
from kindml.features import store as fstore
from kindml.runtime import RuntimeEnv
from kindml.stages.features import window_of
from kindml.stages.ingest import read_tables
from kindml.workload.contract import Workload
from kindml.workspace import Workspace


def data_dir_of(env: RuntimeEnv, wl: Workload, manifest: dict[str, Any]) -> Path:
    """The data version's Feast folder (the same one the features stage writes)."""
    return env.feature_repo_path / "data" / wl.name / manifest["content_hash"][:16]


def run(wl: Workload, env: RuntimeEnv, ref: str, clean_dir: Path, registered_dir: Path, out_dir: Path) -> dict[str, Any]:
    from kindml import registry as reg
    from kindml.serving.batch import ScorerSpec, score_with_ray
    from kindml.serving.bundle import fetch_bundle

    cfg = wl.cfg
    t0 = time.perf_counter()
    manifest = json.loads((clean_dir / "ingest.json").read_text(encoding="utf-8"))
    registered = json.loads((registered_dir / "registered.json").read_text(encoding="utf-8"))
    tables = read_tables(clean_dir, manifest)
    window = window_of(manifest)
    data_dir = data_dir_of(env, wl, manifest)
    spec = wl.batch(tables, window, data_dir)
    if spec is None:
        raise UsageError(f"workload {wl.name!r} defines no batch inference (Workload.batch)", "Leave the batch component out of its pipeline.")
    if spec.row_id not in spec.rows.columns or not spec.rows[spec.row_id].is_unique:
        raise UsageError(f"the batch rows of workload {wl.name!r} need a unique {spec.row_id!r} column", "Fix Workload.batch.")
    # score with the champion, the model `deploy` serves: precomputed answers must come from the served version
    ref_champion = f"{registered['name']}@{cfg.registry.champion_alias}"
    if reg.resolve(env.mlflow_tracking_uri, registered["name"], alias=cfg.registry.champion_alias) is None:
        raise ServingError(f"nothing to score with: the gate did not promote {registered['name']} v{registered['version']} and there is no "
                           "earlier champion", "See the evaluation report of this run (the gate's reasons).")
    ws = Workspace(Path(env.workspace)).ensure()
    bundle = fetch_bundle(cfg, ws, env.mlflow_tracking_uri, ref_champion)
    rows = spec.rows.reset_index(drop=True)
    store = None
    t1 = time.perf_counter()
    if spec.feature_service:
        store = fstore.open_store(env.feature_repo_path, cfg.features.project, env.online_store, env.redis_connection, env.feature_registry)
        with fstore.registry_errors(env.feature_registry):
            rows = fstore.historical_features(store, rows, spec.feature_service, spec.row_id)
    t2 = time.perf_counter()
    batch_size = cfg.batch.batch_size or spec.batch_size
    scorer = ScorerSpec(ref, cfg.model_dump_json(), str(bundle.folder))
    out, stats = score_with_ray(rows, scorer, batch_size, cfg.batch.workers)
    t3 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(out, out_dir / "predictions.parquet")
    sink: dict[str, Any] | None = None
    if spec.sink is not None:
        if store is None:
            store = fstore.open_store(env.feature_repo_path, cfg.features.project, env.online_store, env.redis_connection, env.feature_registry)
        fstore.write_offline_tables({spec.sink.table: out}, data_dir)
        ts = pd.to_datetime(out["event_timestamp"], utc=True)
        with fstore.registry_errors(env.feature_registry):
            fstore.apply_definitions(store, spec.sink.objects)
            # materialize exactly the batch's timestamps (end exclusive): the online store answers from these rows
            fstore.materialize(store, ts.min().to_pydatetime(), (ts.max() + pd.Timedelta(seconds=1)).to_pydatetime(), [spec.sink.view])
        sink = {"view": spec.sink.view, "offline_table": str(data_dir / f"{spec.sink.table}.parquet"), "rows": len(out),
                "online_store": env.online_store}
    kept = None
    if spec.horizon is not None:  # forecasts: kept per version where `kindml feedback actuals` joins the actuals to them
        from kindml.monitoring.actuals import save_forecasts

        kept = str(save_forecasts(ws.root, bundle.name, str(bundle.version), out, spec.horizon,
                                  {"workload": wl.name, "rows": len(out), "written_at": time.time(), "output": str(out_dir / "predictions.parquet")}))
    t4 = time.perf_counter()
    result = {
        "workload": wl.name,
        "model": bundle.name,
        "version": bundle.version,
        "what": spec.what,
        "rows": len(rows),
        "output_rows": len(out),
        "output": str(out_dir / "predictions.parquet"),
        "feature_service": spec.feature_service,
        "sink": sink,
        "forecasts_kept": kept,
        "engine": stats.to_dict(),
        f"{spec.what}_per_s": stats.rows_per_s,
        f"steady_{spec.what}_per_s": stats.extra.get("steady_rows_per_s"),
        "seconds": {"prepare": round(t1 - t0, 2), "features": round(t2 - t1, 2), "ray_start": stats.setup_seconds,
                    "scoring": stats.seconds, "write_back": round(t4 - t3, 2), "total": round(t4 - t0, 2)},
    }
    (out_dir / "batch.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return result
