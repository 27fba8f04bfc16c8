"""Stage results of a cluster run, carried back to the laptop through MLflow.

On the embedded default the driver reads each stage's small JSON results
(``ingest.json``, ``metrics.json``, ``registered.json``, ``monitor.json`` …)
from kfp.local's artifact folders and builds ``summary.json``
(:func:`kindml.pipeline.local.collect_summary`). On KFP those files live in
the cluster's artifact store, which the laptop cannot read. So on the kind
target the stages that know the model's MLflow run (register, deploy,
monitor) also log the same files to that run under ``pipeline/<artifact>/``,
and tag the run with ``kindml.pipeline_run_id``; ``kindml capstone --target
kind`` finds the run by that tag through MLflow's NodePort, downloads the
files into the same folder layout and calls the same ``collect_summary``.
The MLflow run of the registered model is the natural home: it is where the
model, its metrics and its lineage already are.

Locally every function here is a no-op (``env.target == "local"``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kindml.runtime import RuntimeEnv

log = logging.getLogger(__name__)

ARTIFACT_PATH = "pipeline"
RUN_TAG = "kindml.pipeline_run_id"
# artifact folder (as collect_summary looks for it) → the files it reads there
SUMMARY_FILES: dict[str, tuple[str, ...]] = {
    "raw": ("ingest.json",),
    "validation": ("summary.json",),
    "model": ("train_report.json",),
    "evaluation": ("metrics.json", "gate.json"),
    "registered": ("registered.json",),
    "deployed": ("deployed.json",),
    "monitoring": ("monitor.json",),
}


def publish(env: RuntimeEnv, mlflow_run_id: str, folders: dict[str, Path], pipeline_run_id: str | None = None) -> list[str]:
    """Log each artifact's summary files (``SUMMARY_FILES``) from ``folders[name]`` to the run (kind target only)."""
    if env.target != "kind":
        return []
    from mlflow.tracking import MlflowClient

    from kindml.registry import mlflow_env

    logged = []
    with mlflow_env(env.mlflow_tracking_uri):
        client = MlflowClient(tracking_uri=env.mlflow_tracking_uri)
        if pipeline_run_id:
            client.set_tag(mlflow_run_id, RUN_TAG, pipeline_run_id)
        for name, folder in folders.items():
            for fname in SUMMARY_FILES[name]:
                path = Path(folder) / fname
                if path.is_file():
                    client.log_artifact(mlflow_run_id, str(path), artifact_path=f"{ARTIFACT_PATH}/{name}")
                    logged.append(f"{name}/{fname}")
    return logged


def model_run_id(registered: dict[str, Any]) -> str:
    """The MLflow run of a registered version (``registered.json``)."""
    return str(registered["tags"]["kindml.train_mlflow_run_id"])


def find_run(tracking_uri: str, pipeline_run_id: str) -> str | None:
    """The MLflow run tagged with ``pipeline_run_id`` (newest first), if any."""
    from mlflow.tracking import MlflowClient

    from kindml.registry import mlflow_env

    with mlflow_env(tracking_uri):
        client = MlflowClient(tracking_uri=tracking_uri)
        exps = [e.experiment_id for e in client.search_experiments()]
        if not exps:
            return None
        runs = client.search_runs(exps, filter_string=f"tags.`{RUN_TAG}` = '{pipeline_run_id}'", order_by=["attributes.start_time DESC"],
                                  max_results=1)
    return runs[0].info.run_id if runs else None


def fetch(tracking_uri: str, mlflow_run_id: str, dest: Path) -> list[str]:
    """Download the published files into ``dest/<artifact>/<file>`` (the layout collect_summary reads)."""
    import shutil
    import tempfile

    from mlflow.tracking import MlflowClient

    from kindml.registry import mlflow_env

    got = []
    with mlflow_env(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        client = MlflowClient(tracking_uri=tracking_uri)
        names = {Path(a.path).name for a in client.list_artifacts(mlflow_run_id, ARTIFACT_PATH) if a.is_dir}
        if not names:
            return []
        local = Path(client.download_artifacts(mlflow_run_id, ARTIFACT_PATH, tmp))
        for name in sorted(names & set(SUMMARY_FILES)):
            for fname in SUMMARY_FILES[name]:
                src = local / name / fname
                if src.is_file():
                    json.loads(src.read_text(encoding="utf-8"))  # only well-formed JSON reaches the summary
                    (dest / name).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest / name / fname)
                    got.append(f"{name}/{fname}")
    return got
