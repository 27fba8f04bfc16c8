"""Run the capstone on Kubeflow Pipelines (the kind target): the same pipeline, compiled and submitted.

Parameters come from the same effective config as the local run; ``env_json``
is empty so components use the in-cluster services (``RuntimeEnv.kind()``:
MLflow, Redis, Prometheus from ``manifests/``). The run is waited for and
summarised from the KFP API (task states and durations).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kindml.cluster import endpoints
from kindml.config import KindmlConfig
from kindml.errors import ClusterError, PipelineFailed
from kindml.pipeline.local import pipeline_params
from kindml.runtime import RuntimeEnv
from kindml.workspace import Workspace, atomic_write_json

DEFAULT_HOST = f"http://127.0.0.1:{endpoints.UI_PORTS['kfp-api']}"


def _state(detail: Any) -> str:
    return str(getattr(detail, "state", "") or "").upper()


def run_on_kfp(cfg: KindmlConfig, ws: Workspace, run_id: str | None = None, host: str = DEFAULT_HOST,
               wait: bool = True, timeout: float = 5400.0, serve: bool = True) -> dict[str, Any]:
    import kfp

    from kindml.pipelines.capstone import STAGES, capstone

    ws.ensure()
    run_id = run_id or ws.new_run_id()
    params = pipeline_params(cfg, RuntimeEnv.kind(), run_id, serve)
    params["env_json"] = ""  # in-cluster defaults
    import logging
    import warnings

    import socket
    from urllib.parse import urlparse

    u = urlparse(host)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=3).close()
    except OSError as exc:
        raise ClusterError(f"the KFP API at {host} is not reachable ({exc.strerror or exc})",
                           "Bring the platform up with `kindml up` and check `kindml status`.") from None
    for name in ("urllib3", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            client = kfp.Client(host=host)
        client.get_kfp_healthz()
    except Exception as exc:  # the API server is not there
        raise ClusterError(f"the KFP API at {host} is not reachable ({type(exc).__name__})",
                           "Bring the platform up with `kindml up` and check `kindml status`.") from None
    started = datetime.now(UTC)
    run = client.create_run_from_pipeline_func(capstone, arguments=params, run_name=run_id, experiment_name="kindml-capstone",
                                               enable_caching=True)
    summary: dict[str, Any] = {"run_id": run_id, "target": "kind", "pipeline": "capstone", "kfp_run_id": run.run_id,
                               "kfp_host": host, "started": started.isoformat(), "status": "running",
                               "run_dir": str(ws.run_dir(run_id)), "params": {k: v for k, v in params.items() if k not in ("config_json", "env_json")}}
    atomic_write_json(ws.run_dir(run_id) / "summary.json", summary)
    if not wait:
        return summary
    t0 = time.monotonic()
    detail = client.wait_for_run_completion(run.run_id, timeout=timeout)
    state = _state(detail)
    stages: dict[str, dict[str, Any]] = {s: {"status": "not_run", "seconds": None} for s in STAGES}
    for task in getattr(getattr(detail, "run_details", None), "task_details", None) or []:
        name = (task.display_name or "").strip()
        if name in stages:
            secs = (task.end_time - task.start_time).total_seconds() if task.end_time and task.start_time else None
            stages[name] = {"status": str(task.state).lower(), "seconds": secs}
    summary.update(status="succeeded" if state == "SUCCEEDED" else state.lower() or "unknown", stages=stages,
                   seconds=round(time.monotonic() - t0, 1), finished=datetime.now(UTC).isoformat())
    atomic_write_json(ws.run_dir(run_id) / "summary.json", summary)
    if summary["status"] != "succeeded":
        raise PipelineFailed(f"the KFP run {run.run_id} ended {state}", f"Open the KFP UI at http://127.0.0.1:{endpoints.UI_PORTS['kfp-ui']} for task logs.")
    return summary
