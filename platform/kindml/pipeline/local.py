"""Run any KFP v2 pipeline on the embedded default with kfp.local (SubprocessRunner).

A built-in capstone, a user's pipeline file or compiled IR (:mod:`kindml.pipeline.source`).
kfp.local runs each component in a subprocess of this interpreter and prints
the task logs to ``sys.stdout``. The driver captures that stream into the
run's ``logs/pipeline.log``, turns "Executing task"/"finished with status"
lines into progress and per-stage timings, and writes
``.kindml/runs/<run_id>/summary.json``.

Where things live (MLflow, the Feast repo, Redis) reaches the components as
``KINDML_RUNTIME_ENV`` in their environment; the run's id as ``KINDML_RUN_ID``;
a pipeline file's folder is put on ``PYTHONPATH`` so its workload module
imports in every task and Ray worker.

Caching is on with a cache root per run: a fresh run computes everything,
``--resume RUN_ID`` re-runs the same parameters and reuses every stage that
completed (register is cached too: a resumed run must not register the same
model twice; it only creates a version after all its files are logged).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kindml.config import KindmlConfig
from kindml.errors import KindmlError, PipelineFailed, UsageError, ValidationFailed
from kindml.pipeline.source import PipelineSource
from kindml.runtime import RuntimeEnv
from kindml.workspace import Workspace, atomic_write_json

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '?(?P<task>[\w-]+)'?")
_END = re.compile(r"Task '?(?P<task>[\w-]+)'? finished with status (?P<status>\w+)")
_HIT = re.compile(r"Task '?(?P<task>[\w-]+)'? cache hit")

ProgressFn = Callable[[str, str, float | None], None]  # (stage, event: start|succeeded|failed|cached, seconds)


# pipeline parameter → the config field that sets it (a capstone's parameters mirror the config)
PARAM_CONFIG: dict[str, str] = {
    "rows": "data.rows",
    "days": "data.days",
    "seed": "data.seed",
    "corruption_rate": "data.corruption.rate",
    "quarantine": "validation.quarantine",
    "workers": "train.workers",
    "epochs": "train.epochs",
    "tune_trials": "train.tune_trials",
    "min_roc_auc": "evaluate.min_score",
    "min_score": "evaluate.min_score",
    "drift": "data.drift",
}


def _config_value(cfg: KindmlConfig, dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        cur = getattr(cur, part)
    return cur


def pipeline_params(declared: dict[str, dict[str, Any]], cfg: KindmlConfig, run_id: str, serve: bool = True,
                    given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The arguments of a pipeline call: what it declares, filled from the effective config, then ``given`` (``--param``)."""
    params: dict[str, Any] = {}
    for name in declared:
        if name == "config_json":
            params[name] = cfg.model_dump_json()
        elif name == "run_id":
            params[name] = run_id
        elif name == "serve":
            params[name] = serve
        elif name in PARAM_CONFIG:
            params[name] = _config_value(cfg, PARAM_CONFIG[name])
    params.update(given or {})
    return params


@dataclass
class StageClock:
    on_event: ProgressFn | None = None
    started: dict[str, float] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def line(self, raw: str) -> None:
        text = _ANSI.sub("", raw)
        now = time.perf_counter()
        if m := _START.search(text):
            task = m.group("task")
            self.started[task] = now
            if task not in self.order:
                self.order.append(task)
            self.stages[task] = {"status": "running", "seconds": None}
            self._emit(task, "start", None)
        elif m := _HIT.search(text):
            task = m.group("task")
            self.stages[task] = {"status": "cached", "seconds": 0.0}
            self._emit(task, "cached", 0.0)
        elif m := _END.search(text):
            task = m.group("task")
            status = m.group("status").lower()
            secs = round(now - self.started.get(task, now), 2)
            if self.stages.get(task, {}).get("status") == "cached":
                status = "cached"
                secs = 0.0
            self.stages[task] = {"status": {"success": "succeeded", "failure": "failed"}.get(status, status), "seconds": secs}
            self._emit(task, self.stages[task]["status"], secs)

    def _emit(self, task: str, event: str, secs: float | None) -> None:
        if self.on_event is not None:
            self.on_event(task, event, secs)


class _Tee(io.TextIOBase):
    """A stdout stand-in: every line goes to the log file and the stage clock (and optionally on)."""

    def __init__(self, logfile: TextIO, clock: StageClock, echo: TextIO | None) -> None:
        self._log = logfile
        self._clock = clock
        self._echo = echo
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._log.write(s)
        if self._echo is not None:
            self._echo.write(s)
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._clock.line(line)
        return len(s)

    def flush(self) -> None:
        self._log.flush()
        if self._echo is not None:
            self._echo.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _capture(path: Path, clock: StageClock, echo: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        tee = _Tee(fh, clock, sys.stderr if echo else None)
        old = sys.stdout
        sys.stdout = tee  # type: ignore[assignment]
        try:
            yield
        finally:
            tee.flush()
            sys.stdout = old


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _find_one(root: Path, pattern: str) -> Path | None:
    hits = sorted(root.rglob(pattern), key=lambda p: p.stat().st_mtime)
    return hits[-1] if hits else None


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def collect_summary(run_dir: Path, base: dict[str, Any], clock: StageClock, stages: tuple[str, ...] | list[str]) -> dict[str, Any]:
    from kindml.model.metrics import summary_metrics

    kfp_root = run_dir / "kfp"
    summary = dict(base)
    skipped = set() if base.get("params", {}).get("serve", True) else {"deploy", "monitor"}
    summary["stages"] = {s: clock.stages.get(s, {"status": "skipped" if s in skipped else "not_run", "seconds": None}) for s in stages}
    metrics = _read_json(_find_one(kfp_root, "evaluation/metrics.json")) or {}
    gate = _read_json(_find_one(kfp_root, "evaluation/gate.json"))
    ingest = _read_json(_find_one(kfp_root, "raw/ingest.json"))
    validation = _read_json(_find_one(kfp_root, "validation/summary.json"))
    registered = _read_json(_find_one(kfp_root, "registered/registered.json"))
    deployed = _read_json(_find_one(kfp_root, "deployed/deployed.json"))
    monitoring = _read_json(_find_one(kfp_root, "monitoring/monitor.json"))
    train_report = _read_json(_find_one(kfp_root, "model/train_report.json"))
    batch = _read_json(_find_one(kfp_root, "scores/batch.json"))
    summary["metrics"] = summary_metrics(metrics) if metrics else {}
    if metrics.get("baselines"):
        summary["baselines"] = {name: {k: v for k, v in b.items() if isinstance(v, int | float | str)} for name, b in metrics["baselines"].items()}
    if train_report:
        key = train_report.get("val_metric", "val_auc")
        summary["metrics"][key] = train_report.get(key)
        summary["training"] = {"best_params": train_report.get("best_params"), "trials": len(train_report.get("trials") or []),
                               "mlflow_run_id": train_report.get("mlflow_run_id"), "seconds": train_report.get("seconds")}
    summary["gate"] = gate
    if ingest:
        keys = ("rows", *(k for k in ingest if k not in _INGEST_DETAIL), "content_hash", "window_start", "window_end")
        summary["data"] = {k: ingest[k] for k in dict.fromkeys(keys) if k in ingest}
    else:
        summary["data"] = None
    summary["validation"] = validation
    summary["model"] = (
        {"name": registered["name"], "version": registered["version"], "promoted": registered["promoted"], "alias": registered["alias"],
         "model_uri": registered["model_uri"], "onnx_path": registered["onnx_path"],
         **({"awaiting_approval": True} if registered.get("awaiting_approval") else {})}
        if registered else None
    )
    if batch:  # batch inference (the batch stage): throughput next to the online latency below
        engine = batch.get("engine") or {}
        summary["batch"] = {"what": batch.get("what"), "rows": batch.get("rows"), "model": batch.get("model"), "version": batch.get("version"),
                            "engine": engine.get("engine"), "workers": engine.get("workers"), "rows_per_s": engine.get("rows_per_s"),
                            "steady_rows_per_s": (engine.get("extra") or {}).get("steady_rows_per_s"),
                            "scoring_seconds": engine.get("seconds"), "seconds": batch.get("seconds"), "output": batch.get("output"),
                            "feast_view": (batch.get("sink") or {}).get("view")}
    if deployed:
        summary["deployment"] = {k: deployed.get(k) for k in ("url", "pid", "model", "version", *(("mode", "host_url") if "host_url" in deployed else ()))}
    if monitoring:
        summary["serving"] = monitoring["serving"]
        summary["drift"] = monitoring["drift"]
        if monitoring.get("quality") is not None:
            summary["quality"] = {k: v for k, v in monitoring["quality"].items() if k != "series"}
    return summary


# ingest.json entries that are details of the run, not facts about the data (summary["data"] leaves them out)
_INGEST_DETAIL = frozenset({"workload", "source", "path", "seed", "history_drift", "days", "corruption", "tables", "window_start",
                            "window_end", "content_hash", "rows"})


def run_pipeline(
    source: PipelineSource,
    cfg: KindmlConfig,
    ws: Workspace,
    run_id: str | None = None,
    resume: bool = False,
    on_event: ProgressFn | None = None,
    echo_logs: bool = False,
    serve: bool = True,
    given: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``source`` with kfp.local; returns the summary (also written to summary.json).

    Raises the failing stage's :class:`KindmlError` (e.g. ValidationFailed)
    after the summary with ``status: failed`` has been written.
    """
    from kindml.pipeline.source import parameters, tasks

    ws.ensure()
    if resume:
        if not run_id:
            raise UsageError("--resume needs a run id", "See `kindml runs list`.")
        run_dir = ws.run_dir(run_id)
        params_file = run_dir / "params.json"
        if not params_file.is_file():
            raise UsageError(f"run {run_id!r} has no saved parameters in {run_dir}", "Only runs started by `kindml run` can be resumed; see `kindml runs list`.")
        saved = json.loads(params_file.read_text(encoding="utf-8"))
        source = PipelineSource.from_dict(saved["source"])
        params = saved["params"]
        if source.folder is not None:
            from kindml.workload.loader import add_search_path

            add_search_path(source.folder)
        func = source.load()
    else:
        func = source.load()
        run_id = run_id or ws.new_run_id(source.name)
        run_dir = ws.run_dir(run_id)
        if (run_dir / "params.json").exists():
            raise UsageError(f"run {run_id!r} already exists", f"Resume it with `kindml run --resume {run_id}` or pick a new id.")
        declared = parameters(func)
        unknown = sorted(set(given or {}) - set(declared))
        if unknown:
            raise UsageError(f"pipeline {source.name} has no parameter(s) {', '.join(unknown)}",
                             f"Its parameters: {', '.join(declared) or '(none)'}.")
        params = pipeline_params(declared, cfg, run_id, serve, given)
        atomic_write_json(run_dir / "params.json", {"source": source.describe(), "params": params})
    redis = ""
    if cfg.features.online_store == "redis" and not cfg.features.redis_connection:
        from kindml.services.redis import ensure_redis

        redis = ensure_redis(ws)  # Debian's redis-server on 127.0.0.1, kept running for serving
    env = RuntimeEnv.local(cfg, ws, redis_connection=redis, git_commit=git_commit())
    stages = tasks(func)
    started = datetime.now(UTC)
    base = {
        "run_id": run_id, "target": "local", "pipeline": source.name, "workload": source.workload, "status": "running",
        "started": started.isoformat(), "finished": None, "seconds": None, "run_dir": str(run_dir),
        "params": {k: v for k, v in params.items() if k not in ("config_json", "env_json")},
    }
    clock = StageClock(on_event=on_event)
    atomic_write_json(run_dir / "summary.json", collect_summary(run_dir, base, clock, stages))
    # stale failure notes of an interrupted attempt must not be mistaken for this one
    for old in (run_dir / "errors").glob("*.json") if (run_dir / "errors").is_dir() else []:
        old.unlink()

    import kfp.local
    from kfp.local import SubprocessRunner

    kfp.local.init(
        runner=SubprocessRunner(use_venv=False),
        pipeline_root=str(run_dir / "kfp"),
        raise_on_error=True,
        enable_caching=True,
        cache_root=str(run_dir / "cache"),
    )
    t0 = time.perf_counter()
    failure: BaseException | None = None
    result: Any = None
    task_env = {"KINDML_RUN_DIR": str(run_dir), "KINDML_RUN_ID": str(run_id), **env.exported()}
    old_env = {k: os.environ.get(k) for k in (*task_env, "PYTHONWARNINGS", "RAY_AUTH_MODE")}
    os.environ.update(task_env)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    import warnings

    try:
        with warnings.catch_warnings():
            # kfp warns that our base image is not a python image; locally the SubprocessRunner uses this interpreter on purpose
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
            # resource requests are for the cluster; the local runner ignores them by design
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
            with _capture(run_dir / "logs" / "pipeline.log", clock, echo_logs):
                task = func(**params)
        out = getattr(task, "output", None) if task is not None else None
        result = json.loads(out) if isinstance(out, str) and out.startswith("{") else out
    except BaseException as exc:  # noqa: BLE001 - summarized below, then re-raised
        failure = exc
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    base["finished"] = datetime.now(UTC).isoformat()
    base["seconds"] = round(time.perf_counter() - t0, 2)
    base["log"] = str(run_dir / "logs" / "pipeline.log")
    if failure is None:
        base["status"] = "succeeded"
        summary = collect_summary(run_dir, base, clock, stages)
        for info in summary["stages"].values():
            if info["status"] == "not_run":  # reused from this run's cache (kfp.local does not log every hit)
                info.update(status="cached", seconds=0.0)
        if isinstance(result, dict) and summary.get("model") is None and "version" in result:
            summary["model"] = result
        elif result is not None and not isinstance(result, dict):
            summary["output"] = result
        atomic_write_json(run_dir / "summary.json", summary)
        return summary
    # failed or interrupted
    for info in clock.stages.values():
        if info["status"] == "running":
            info["status"] = "interrupted" if isinstance(failure, KeyboardInterrupt) else "failed"
    err = _stage_error(run_dir)
    base["status"] = "interrupted" if isinstance(failure, KeyboardInterrupt) else "failed"
    summary = collect_summary(run_dir, base, clock, stages)
    failed_stage = next((s for s, i in summary["stages"].items() if i["status"] in ("failed", "interrupted")), None)
    summary["failed_stage"] = failed_stage
    summary["error"] = err
    if failed_stage == "validate":
        report = _find_one(run_dir / "kfp", "validation/validation.md")
        if report is not None:
            summary["validation_report"] = str(report)
            summary["validation_report_html"] = str(report.with_suffix(".html"))
    atomic_write_json(run_dir / "summary.json", summary)
    if isinstance(failure, KeyboardInterrupt):
        raise failure
    hint_resume = f"Fix the cause, then `kindml run --resume {run_id}` reuses the completed stages."
    if err is not None:
        if failed_stage == "validate":
            raise ValidationFailed(err["message"], (err.get("hint") or "") + f" Summary: {run_dir / 'summary.json'}")
        exc = KindmlError(f"stage {failed_stage} failed: {err['message']}", err.get("hint") or hint_resume)
        exc.exit_code = int(err.get("exit_code") or PipelineFailed.exit_code)
        raise exc
    raise PipelineFailed(
        f"the pipeline failed at stage {failed_stage or '?'}: {type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else ''}",
        f"See the log {run_dir / 'logs' / 'pipeline.log'}. {hint_resume}",
    )


def _stage_error(run_dir: Path) -> dict[str, Any] | None:
    errs = sorted((run_dir / "errors").glob("*.json"), key=lambda p: p.stat().st_mtime) if (run_dir / "errors").is_dir() else []
    return json.loads(errs[-1].read_text(encoding="utf-8")) if errs else None
