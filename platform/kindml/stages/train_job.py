"""Training on the kind target: the ``train`` stage as a KubeRay RayJob.

The KFP train component (in the runtime image, in the ``kubeflow`` namespace)
1. logs its input (training_set.parquet, features.json) to an MLflow run,
2. creates a RayJob (``kindml.cluster.templates.render_rayjob``) whose
   entrypoint is ``python -m kindml.stages.train_job --input-run … --config …``:
   the driver joins the job's RayCluster (``RAY_ADDRESS``), runs the same
   :func:`kindml.stages.train.run` (Ray Tune + Ray Train DDP over the
   RayCluster's workers) and logs the model folder and holdout to the run,
3. waits for the RayJob to finish and downloads the outputs into its KFP artifacts.

Why a RayJob and not a Ray client: the job's cluster lives exactly as long as the
training (ttlSecondsAfterFinished), runs with the workers' resources declared up
front, and its logs and status are Kubernetes objects users can inspect.
MLflow is the exchange medium because it is already the platform's artifact store.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kindml.config import KindmlConfig
from kindml.errors import ClusterError
from kindml.runtime import RuntimeEnv

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def submit_and_wait(ref: str, cfg: KindmlConfig, env: RuntimeEnv, training_dir: Path, out_model_dir: Path, out_holdout_dir: Path,
                    run_name: str, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Component side (kind target); ``ref`` is the workload reference (importable in the runtime image)."""
    from kubernetes import client, config

    from kindml.cluster.templates import RayJobParams, render_rayjob
    from kindml.registry import ensure_experiment, mlflow_env

    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        exp = ensure_experiment(mlflow, cfg.registry.experiment or "kindml", None)
        with mlflow.start_run(experiment_id=exp, run_name=f"{run_name}-rayjob", tags={"kindml.stage": "train-input"}) as r:
            mlflow.log_artifacts(str(training_dir), artifact_path="input")
            input_run = r.info.run_id
    entry = (f"python -m kindml.stages.train_job --workload {_encode(ref)} --input-run {input_run} --run-name {run_name} "
             f"--config {_encode(cfg.model_dump_json())} --env {_encode(env.model_dump_json())}")
    job = render_rayjob(RayJobParams(run_id=run_name, entrypoint=entry, workers=cfg.train.workers, cpus_per_worker=cfg.train.cpus_per_worker))
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, job)
    except client.ApiException as exc:
        if exc.status != 409:  # 409: a retry of this task, the job exists already
            raise ClusterError(f"cannot create RayJob {name}: {exc.reason}", "Check the pipeline runner's RBAC for rayjobs in the kindml namespace.") from None
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name).get("status", {})
        if status.get("jobStatus") in ("SUCCEEDED", "FAILED", "STOPPED") or status.get("jobDeploymentStatus") == "Failed":
            break
        time.sleep(10)
    if status.get("jobStatus") != "SUCCEEDED":
        raise ClusterError(f"RayJob {name} ended {status.get('jobStatus') or status.get('jobDeploymentStatus') or 'by timeout'}: {status.get('message', '')[:300]}",
                           f"kubectl -n {ns} describe rayjob {name}; logs: kubectl -n {ns} logs -l job-name={name}")
    with mlflow_env(env.mlflow_tracking_uri) as mlflow, tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(run_id=input_run, artifact_path="output", dst_path=tmp))
        shutil.copytree(local / "model", out_model_dir, dirs_exist_ok=True)
        shutil.copytree(local / "holdout", out_holdout_dir, dirs_exist_ok=True)
    return json.loads((out_model_dir / "train_report.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> None:
    """RayJob driver side."""
    from kindml.registry import mlflow_env
    from kindml.stages import train

    ap = argparse.ArgumentParser(prog="python -m kindml.stages.train_job")
    ap.add_argument("--workload", required=True)
    ap.add_argument("--input-run", required=True)
    ap.add_argument("--run-name", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--env", required=True)
    a = ap.parse_args(argv)
    from kindml.workload.loader import load_workload

    cfg = KindmlConfig.model_validate_json(base64.urlsafe_b64decode(a.config))
    wl = load_workload(base64.urlsafe_b64decode(a.workload).decode())(cfg)
    env = RuntimeEnv.model_validate_json(base64.urlsafe_b64decode(a.env))
    work = Path(tempfile.mkdtemp(prefix="train-job-"))
    (work / "tmp").mkdir()
    env = env.model_copy(update={"workspace": str(work)})
    with mlflow_env(env.mlflow_tracking_uri) as mlflow:
        inp = Path(mlflow.artifacts.download_artifacts(run_id=a.input_run, artifact_path="input", dst_path=str(work)))
    out = work / "output"
    train.run(wl, env, inp, out / "model", out / "holdout", a.run_name)
    with mlflow_env(env.mlflow_tracking_uri) as mlflow, mlflow.start_run(run_id=a.input_run):
        mlflow.log_artifacts(str(out), artifact_path="output")


if __name__ == "__main__":
    main()
