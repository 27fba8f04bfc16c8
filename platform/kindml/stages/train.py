"""Stage ``train``: time split → the kit's preprocessing fit → Ray Tune (ASHA) → Ray Train DDP fit, tracked in MLflow.

Writes into the model folder: ``model.pt`` (the recipe's format), the kit's
preprocessing files, ``train_report.json``, and ``reference.parquet`` (train +
validation rows the drift reference profile is built from at export).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.data.load import write_parquet
from kindml.model.train import ray_session, split_by_time, tune_then_fit
from kindml.registry import ensure_experiment, mlflow_env
from kindml.runtime import RuntimeEnv
from kindml.stages.context import carry_lineage
from kindml.stages.features import window_of
from kindml.workload.contract import Workload

REFERENCE_ROWS = 50_000


def run(wl: Workload, env: RuntimeEnv, training_dir: Path, out_model_dir: Path, out_holdout_dir: Path, run_name: str) -> dict[str, Any]:
    cfg = wl.cfg
    t0 = time.perf_counter()
    df = pd.read_parquet(training_dir / "training_set.parquet")
    feats = json.loads((training_dir / "features.json").read_text(encoding="utf-8"))
    manifest = json.loads((training_dir / "ingest.json").read_text(encoding="utf-8"))
    split = split_by_time(df, cfg.train.test_fraction, cfg.train.val_fraction, wl.timestamp, wl.row_id, wl.label)
    kit = wl.model_kit()
    kit.fit(split.train)
    out_model_dir.mkdir(parents=True, exist_ok=True)
    kit.save(out_model_dir)
    baselines = wl.baselines(split.train, split.test, kit)  # simpler models on the same split, for the evaluation report
    if baselines:
        (out_model_dir / "baselines.json").write_text(json.dumps(baselines, indent=2), encoding="utf-8")
    train_arrays = {**kit.arrays(split.train), "y": kit.labels(split.train)}
    val_arrays = {**kit.arrays(split.val), "y": kit.labels(split.val)}
    t_prep = time.perf_counter() - t0
    write_parquet(split.test, out_holdout_dir / "holdout.parquet")
    # everything before the holdout (what a user already has, a series' past): Workload.evaluate reads it
    write_parquet(pd.concat([split.train, split.val]), out_holdout_dir / "history.parquet")
    reference = wl.reference_rows(pd.concat([split.train, split.val]), window_of(manifest))
    if len(reference) > REFERENCE_ROWS:
        reference = reference.sample(REFERENCE_ROWS, random_state=0)
    write_parquet(reference, out_model_dir / "reference.parquet")
    storage = Path(tempfile.mkdtemp(prefix="ray-", dir=Path(env.workspace) / "tmp"))
    n_cpus = max(2, int(cfg.train.workers * cfg.train.cpus_per_worker + 0.999))
    with ray_session(n_cpus):
        result = tune_then_fit(kit.recipe, train_arrays, val_arrays, kit.meta(), cfg.train, storage, out_model_dir)
    key = f"val_{result.val_metric}"
    report = {
        "workload": wl.name,
        "task": wl.task,
        "split": split.sizes(),
        "split_boundaries": {
            "train_end": str(split.train[wl.timestamp].max()),
            "val_end": str(split.val[wl.timestamp].max()),
            "test_end": str(split.test[wl.timestamp].max()),
        },
        "best_params": result.best_params,
        "trials": result.trials,
        "history": result.history,
        "val_metric": key,
        key: result.val_score,
        "seconds": {"prepare": round(t_prep, 2), **result.seconds, "total": round(time.perf_counter() - t0, 2)},
        "workers": cfg.train.workers,
        "seed": cfg.train.seed,
        "restored_from_checkpoint": result.restored_from_checkpoint,
        "ray_storage": str(storage),
        "feature_service": feats["feature_service"],
    }
    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        exp_id = ensure_experiment(mlflow, cfg.registry.experiment or f"kindml-{wl.name}",
                                   Path(env.mlflow_artifact_root) if env.mlflow_artifact_root else None)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags={"kindml.run_id": run_name, "kindml.stage": "train",
                                                                               "kindml.workload": wl.name}) as active:
            mlflow.log_params({**{f"tune.{k}": v for k, v in result.best_params.items()}, "workers": cfg.train.workers, "epochs": cfg.train.epochs,
                               "batch_size": cfg.train.batch_size, "seed": cfg.train.seed, "tune_trials": cfg.train.tune_trials,
                               "feature_service": feats["feature_service"], **{f"meta.{k}": v for k, v in kit.meta().items()
                                                                               if isinstance(v, int | float | str)}})
            for h in result.history:
                mlflow.log_metrics({"train_loss": h["train_loss"], key: h[key]}, step=int(h["epoch"]))
            for i, t in enumerate(result.trials):
                mlflow.log_metric(f"tune_trial_{key}", t[key], step=i)
            report["mlflow_run_id"] = active.info.run_id
            (out_model_dir / "train_report.json").write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
            mlflow.log_artifact(str(out_model_dir / "train_report.json"))
            for name in kit.files:
                if (out_model_dir / name).is_file():
                    mlflow.log_artifact(str(out_model_dir / name))
    carry_lineage(training_dir, out_model_dir, train_report=out_model_dir / "train_report.json")
    (out_holdout_dir / "ingest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return report
