"""Stage ``train``: time split → preprocessing fit → Ray Tune (ASHA) → Ray Train DDP fit, tracked in MLflow."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.config import KindmlConfig
from kindml.data.load import write_parquet
from kindml.model.preprocess import Assembler, fit_spec, frame_columns
from kindml.model.train import ray_session, split_by_time, tune_then_fit
from kindml.registry import ensure_experiment, mlflow_env
from kindml.runtime import RuntimeEnv


def run(cfg: KindmlConfig, env: RuntimeEnv, training_dir: Path, out_model_dir: Path, out_holdout_dir: Path, run_name: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    df = pd.read_parquet(training_dir / "training_set.parquet")
    feats = json.loads((training_dir / "features.json").read_text(encoding="utf-8"))
    split = split_by_time(df, cfg.train.test_fraction, cfg.train.val_fraction)
    spec, x_train = fit_spec(frame_columns(split.train), feats["feature_service"])
    asm = Assembler(spec)
    x_val = asm.transform(frame_columns(split.val))
    out_model_dir.mkdir(parents=True, exist_ok=True)
    spec.save(out_model_dir / "preprocessing.json")
    write_parquet(split.test, out_holdout_dir / "holdout.parquet")
    storage = Path(tempfile.mkdtemp(prefix="ray-", dir=Path(env.workspace) / "tmp"))
    n_cpus = max(2, int(cfg.train.workers * cfg.train.cpus_per_worker + 0.999))
    with ray_session(n_cpus):
        result = tune_then_fit(
            x_train, split.train["is_fraud"].to_numpy(), x_val, split.val["is_fraud"].to_numpy(),
            spec.mean, spec.std, cfg.train, storage, out_model_dir,
        )
    report = {
        "split": split.sizes(),
        "split_boundaries": {
            "train_end": str(split.train["event_timestamp"].max()),
            "val_end": str(split.val["event_timestamp"].max()),
            "test_end": str(split.test["event_timestamp"].max()),
        },
        "best_params": result.best_params,
        "net": result.net_config,
        "trials": result.trials,
        "history": result.history,
        "val_auc": result.val_auc,
        "seconds": result.seconds | {"total": round(time.perf_counter() - t0, 2)},
        "workers": cfg.train.workers,
        "seed": cfg.train.seed,
        "restored_from_checkpoint": result.restored_from_checkpoint,
        "ray_storage": str(storage),
    }
    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        exp_id = ensure_experiment(mlflow, cfg.registry.experiment, Path(env.mlflow_artifact_root) if env.mlflow_artifact_root else None)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags={"kindml.run_id": run_name, "kindml.stage": "train"}) as active:
            mlflow.log_params({**{f"tune.{k}": v for k, v in result.best_params.items()}, "workers": cfg.train.workers, "epochs": cfg.train.epochs,
                               "batch_size": cfg.train.batch_size, "seed": cfg.train.seed, "tune_trials": cfg.train.tune_trials,
                               "feature_service": feats["feature_service"], "n_inputs": asm.n_inputs})
            for h in result.history:
                mlflow.log_metrics({"train_loss": h["train_loss"], "val_auc": h["val_auc"]}, step=int(h["epoch"]))
            for i, t in enumerate(result.trials):
                mlflow.log_metric("tune_trial_val_auc", t["val_auc"], step=i)
            report["mlflow_run_id"] = active.info.run_id
            (out_model_dir / "train_report.json").write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
            mlflow.log_artifact(str(out_model_dir / "train_report.json"))
            mlflow.log_artifact(str(out_model_dir / "preprocessing.json"))
    return report
