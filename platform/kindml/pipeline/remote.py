"""Run a pipeline on Kubeflow Pipelines (the kind target): the same pipeline, compiled and submitted.

Any pipeline ``kindml run`` accepts (a built-in capstone, a user's file, IR
YAML). Parameters come from the same effective config as the local run;
components find the in-cluster services (``RuntimeEnv.kind()``: MLflow, Redis,
the Feast registry server and Prometheus) in ConfigMap ``kindml-runtime-env``,
which every task of a kindml pipeline mounts as environment
(:func:`kindml.pipeline.tasks.on_cluster`). A user's workload module must be
importable in the runtime image (see docs/cluster.md).

Progress: the run is polled through the KFP API and every task's state change
becomes the same ``(stage, event, seconds)`` event the local driver emits, so
the CLI shows the same progress for both targets. Summary: when the run ends,
the stage results the pipeline published to the model's MLflow run
(:mod:`kindml.pipeline.outputs`) are downloaded through MLflow's NodePort and
fed to the local driver's :func:`~kindml.pipeline.local.collect_summary`:
``summary.json`` has the same fields on both targets.
"""

from __future__ import annotations

import logging
import socket
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from kindml.cluster import endpoints
from kindml.config import KindmlConfig
from kindml.errors import ClusterError, PipelineFailed
from kindml.pipeline.local import ProgressFn, StageClock, collect_summary, pipeline_params
from kindml.pipeline.source import PipelineSource, parameters
from kindml.pipeline.source import tasks as pipeline_tasks
from kindml.workspace import Workspace, atomic_write_json

log = logging.getLogger(__name__)

DEFAULT_HOST = f"http://127.0.0.1:{endpoints.UI_PORTS['kfp-api']}"
DEFAULT_MLFLOW = f"http://127.0.0.1:{endpoints.UI_PORTS['mlflow']}"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}
_EVENT = {"RUNNING": "start", "SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELED": "failed", "SKIPPED": "skipped"}


def _state(obj: Any) -> str:
    """A KFP runtime state as its bare name ('SUCCEEDED'), whatever the client library hands back."""
    raw = str(getattr(obj, "state", "") or "").upper()
    return raw.rsplit(".", 1)[-1]


def _reachable(url: str, what: str) -> None:
    u = urlparse(url)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=3).close()
    except OSError as exc:
        raise ClusterError(f"{what} at {url} is not reachable ({exc.strerror or exc})",
                           "Bring the platform up with `kindml up` and check `kindml status`.") from None


def kfp_client(host: str) -> Any:
    import kfp

    _reachable(host, "the KFP API")
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
    return client


class TaskTracker:
    """Turns successive KFP run details into stage events and per-stage timings."""

    def __init__(self, stages: tuple[str, ...], on_event: ProgressFn | None = None) -> None:
        self.clock = StageClock(on_event=on_event)
        self._stages = set(stages)
        self._seen: dict[str, str] = {}

    def update(self, run: Any) -> None:
        by_name: dict[str, list[Any]] = {}
        for task in getattr(getattr(run, "run_details", None), "task_details", None) or []:
            name = (getattr(task, "display_name", "") or "").strip()
            if name in self._stages:
                by_name.setdefault(name, []).append(task)
        for name, tasks in by_name.items():
            states = [_state(t) for t in tasks]
            # a task can appear more than once (driver and executor): the most advanced state wins
            state = next((s for s in ("FAILED", "CANCELED", "SUCCEEDED", "SKIPPED") if s in states), "RUNNING" if "RUNNING" in states else "PENDING")
            if self._seen.get(name) == state or state == "PENDING":
                continue
            if state != "RUNNING" and self._seen.get(name) is None:  # went by between two polls: report its start too
                self._emit(name, "RUNNING", tasks)
            self._seen[name] = state
            self._emit(name, state, tasks)

    def _emit(self, name: str, state: str, tasks: list[Any]) -> None:
        event = _EVENT[state]
        secs = None
        if state in TERMINAL:
            starts = [t.start_time for t in tasks if getattr(t, "start_time", None)]
            ends = [t.end_time for t in tasks if getattr(t, "end_time", None)]
            secs = round((max(ends) - min(starts)).total_seconds(), 2) if starts and ends else None
            status = {"SUCCEEDED": "succeeded", "SKIPPED": "skipped"}.get(state, "failed")
            self.clock.stages[name] = {"status": status, "seconds": secs}
        else:
            self.clock.stages[name] = {"status": "running", "seconds": None}
        if self.clock.on_event is not None:
            self.clock.on_event(name, event, secs)


def wait_for_run(client: Any, kfp_run_id: str, tracker: TaskTracker, timeout: float, poll_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Poll the run until it ends (bounded by ``timeout``), feeding ``tracker``."""
    deadline = clock() + timeout
    while True:
        run = client.get_run(kfp_run_id)
        tracker.update(run)
        if _state(run) in TERMINAL:
            return run
        if clock() >= deadline:
            raise ClusterError(f"the KFP run {kfp_run_id} did not finish within {timeout:.0f} s (it keeps running)",
                               f"Follow it in the KFP UI at http://127.0.0.1:{endpoints.UI_PORTS['kfp-ui']}; stop it there if needed.")
        sleep(poll_s)


def collect_cluster_summary(ws: Workspace, run_id: str, base: dict[str, Any], tracker: TaskTracker, mlflow_uri: str,
                            stages: list[str]) -> dict[str, Any]:
    """The local driver's summary, from the stage results the run published to MLflow (what could be fetched)."""
    from kindml.pipeline import outputs

    run_dir = ws.run_dir(run_id)
    fetched: list[str] = []
    note = None
    try:
        if mlflow_uri.startswith(("http://", "https://")):
            _reachable(mlflow_uri, "MLflow")
        mlflow_run = outputs.find_run(mlflow_uri, run_id)
        if mlflow_run is None:
            note = "no stage results were published (the run ended before register)"
        else:
            fetched = outputs.fetch(mlflow_uri, mlflow_run, run_dir / "kfp")
    except ClusterError as exc:
        note = f"stage results not fetched: {exc.message}"
    except Exception as exc:  # MLflow answered with an error: the summary still has the task states
        note = f"stage results not fetched: {type(exc).__name__}: {str(exc)[:200]}"
    summary = collect_summary(run_dir, base, tracker.clock, stages)
    summary["results_fetched"] = fetched
    if note:
        summary["results_note"] = note
    return summary


def run_on_kfp(source: PipelineSource, cfg: KindmlConfig, ws: Workspace, run_id: str | None = None, host: str = DEFAULT_HOST,
               wait: bool = True, timeout: float = 5400.0, serve: bool = True, on_event: ProgressFn | None = None,
               mlflow_uri: str = DEFAULT_MLFLOW, client: Any = None, poll_s: float = 10.0,
               given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit ``source`` to KFP, follow it, and write ``summary.json`` (``client``: a kfp.Client, for tests)."""
    from kindml.errors import UsageError

    ws.ensure()
    func = source.load()
    run_id = run_id or ws.new_run_id(source.name)
    declared = parameters(func)
    unknown = sorted(set(given or {}) - set(declared))
    if unknown:
        raise UsageError(f"pipeline {source.name} has no parameter(s) {', '.join(unknown)}", f"Its parameters: {', '.join(declared) or '(none)'}.")
    params = pipeline_params(declared, cfg, run_id, serve, given)
    stages = pipeline_tasks(func)
    client = client if client is not None else kfp_client(host)
    started = datetime.now(UTC)
    experiment = f"kindml-{source.name}"
    if source.kind == "ir":
        run = client.create_run_from_pipeline_package(source.ref, arguments=params, run_name=run_id, experiment_name=experiment,
                                                      enable_caching=True)
    else:
        run = client.create_run_from_pipeline_func(func, arguments=params, run_name=run_id, experiment_name=experiment,
                                                   enable_caching=True)
    base: dict[str, Any] = {"run_id": run_id, "target": "kind", "pipeline": source.name, "workload": source.workload, "kfp_run_id": run.run_id,
                            "kfp_host": host, "kfp_ui": f"http://127.0.0.1:{endpoints.UI_PORTS['kfp-ui']}/#/runs/details/{run.run_id}",
                            "started": started.isoformat(), "finished": None, "seconds": None, "status": "running",
                            "run_dir": str(ws.run_dir(run_id)), "params": {k: v for k, v in params.items() if k not in ("config_json", "env_json")}}
    tracker = TaskTracker(tuple(stages), on_event)
    atomic_write_json(ws.run_dir(run_id) / "summary.json", collect_summary(ws.run_dir(run_id), base, tracker.clock, stages))
    if not wait:
        return base
    t0 = time.monotonic()
    detail = wait_for_run(client, run.run_id, tracker, timeout, poll_s)
    state = _state(detail)
    base.update(status="succeeded" if state == "SUCCEEDED" else state.lower() or "unknown",
                seconds=round(time.monotonic() - t0, 1), finished=datetime.now(UTC).isoformat())
    summary = collect_cluster_summary(ws, run_id, base, tracker, mlflow_uri, stages)
    if summary["status"] != "succeeded":
        failed = next((s for s, i in summary["stages"].items() if i["status"] == "failed"), None)
        summary["failed_stage"] = failed
        err = getattr(detail, "error", None)
        summary["error"] = {"message": str(getattr(err, "message", "") or "")[:500]} if err else None
    atomic_write_json(ws.run_dir(run_id) / "summary.json", summary)
    if summary["status"] != "succeeded":
        raise PipelineFailed(f"the KFP run {run.run_id} ended {state}" + (f" at stage {summary['failed_stage']}" if summary.get("failed_stage") else ""),
                             f"Task logs: {base['kfp_ui']}. Summary: {ws.run_dir(run_id) / 'summary.json'}")
    return summary
