"""The RayJob entrypoint of the kind target's training, run here against a local MLflow and a local Ray.

On the cluster the same ``python -m kindml.stages.train_job`` runs as the
RayJob driver (``RAY_ADDRESS`` set by KubeRay); the submit/wait side needs a
cluster and is covered by the ``cluster`` suite.
"""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest

pytestmark = pytest.mark.local


def test_train_job_entrypoint_round_trip(tmp_path: Path) -> None:
    from kindml.config import KindmlConfig
    from kindml.registry import ensure_experiment, mlflow_env
    from kindml.runtime import RuntimeEnv
    from kindml.stages import features, ingest, train_job, validate
    from kindml.workload.loader import load_workload
    from kindml.workspace import Workspace

    ws = Workspace(tmp_path / "ws").ensure()
    cfg = KindmlConfig().with_overrides({"data.rows": 6000, "data.days": 30, "data.end_date": date(2026, 1, 31), "train.epochs": 2,
                                         "train.tune_trials": 1, "train.tune_epochs": 1, "validation.freshness_days": 100_000})
    env = RuntimeEnv.local(cfg, ws)
    ref = "kindml.pipelines.fraud.workload"
    wl = load_workload(ref)(cfg)
    ingest.run(wl, tmp_path / "raw")
    validate.run(wl, tmp_path / "raw", tmp_path / "clean", tmp_path / "report")
    features.run(wl, env, tmp_path / "clean", tmp_path / "train_in")
    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        exp = ensure_experiment(mlflow, "t", Path(env.mlflow_artifact_root))
        with mlflow.start_run(experiment_id=exp) as r:
            mlflow.log_artifacts(str(tmp_path / "train_in"), artifact_path="input")
    enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode()  # noqa: E731
    train_job.main(["--workload", enc(ref), "--input-run", r.info.run_id, "--run-name", "t1", "--config", enc(cfg.model_dump_json()), "--env", enc(env.model_dump_json())])
    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        out = Path(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path="output", dst_path=str(tmp_path / "dl")))
    assert (out / "model" / "model.pt").is_file() and (out / "model" / "train_report.json").is_file()
    assert (out / "holdout" / "holdout.parquet").is_file()
