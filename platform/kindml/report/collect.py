"""Gather everything the run report shows from a run folder, the registry and the benchmark results.

Sources (each optional; what is missing is listed in :attr:`RunData.notes`
and its section says so instead of failing):

- ``<run_dir>/summary.json``: status, stages, metrics, gate, model, serving, drift, failure;
- ``<run_dir>/logs/pipeline.log``: when each stage started and finished (the timeline);
- the stage artifacts under ``<run_dir>/kfp/**/``: ``validation/validation.json``,
  ``model/train_report.json``, ``evaluation/{metrics,curves,gate}.json``,
  ``registered/registered.json``, ``monitoring/monitor.json``, ``onnx_model/importance.json``
  (the newest of each, as a resumed run may hold several pipeline roots);
- the model registry (MLflow): every version of the run's model with its lineage tags, and the
  global importance of the version this run's is compared with (the champion it was gated against);
- the audit log of the run's model (the workspace's ``registry/audit.jsonl`` and the registry's copy);
- the newest ``benchmarks/results/*.json`` of the benchmark suite.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kindml.errors import UsageError

log = logging.getLogger(__name__)

ARTIFACTS = {
    "validation": "validation/validation.json",
    "validation_summary": "validation/summary.json",
    "train_report": "model/train_report.json",
    "metrics": "evaluation/metrics.json",
    "curves": "evaluation/curves.json",
    "gate": "evaluation/gate.json",
    "registered": "registered/registered.json",
    "batch": "scores/batch.json",
    "deployed": "deployed/deployed.json",
    "monitor": "monitoring/monitor.json",
    "importance": "onnx_model/importance.json",
}
_LOG_LINE = re.compile(r"^(?P<t>\d\d:\d\d:\d\d\.\d{3}) - INFO - (?P<what>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"Executing task '(?P<task>[^']+)'")
_END = re.compile(r"Task '(?P<task>[^']+)' finished with status (?P<status>\w+)")
_RUN = re.compile(r"Running pipeline: ")


@dataclass
class StageSpan:
    name: str
    status: str
    seconds: float | None
    start_s: float | None = None  # seconds since the first stage of the (last) attempt started
    end_s: float | None = None


@dataclass
class RunData:
    run_dir: Path
    summary: dict[str, Any]
    artifacts: dict[str, Any] = field(default_factory=dict)  # key of ARTIFACTS -> parsed JSON
    timeline: list[StageSpan] = field(default_factory=list)
    versions: list[dict[str, Any]] | None = None  # registry versions of the run's model, oldest first
    audit: list[dict[str, Any]] | None = None  # the audit log of the run's model (kindml.audit), oldest first
    benchmark: dict[str, Any] | None = None
    benchmark_path: Path | None = None
    importance_other: dict[str, Any] | None = None  # {"version", "role", "doc"}: the version this run's importance is compared with
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.run_dir.name)

    def get(self, key: str) -> Any:
        return self.artifacts.get(key)


def find_run(runs_root: Path, run_id: str | None) -> Path:
    """The folder of ``run_id`` under ``runs_root`` (default: the newest run); a :class:`UsageError` if none."""
    if run_id is None:
        runs = sorted((p for p in runs_root.glob("*") if (p / "summary.json").is_file()), key=lambda p: p.stat().st_mtime) \
            if runs_root.is_dir() else []
        if not runs:
            raise UsageError(f"no runs in {runs_root}", "Run `kindml capstone` first, or point KINDML_HOME at the workspace holding the run.")
        return runs[-1]
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith(".") or "\0" in run_id:
        raise UsageError(f"{run_id!r} is not a run id", "Run ids look like capstone-20261123-101500-ab12cd; see `kindml runs list`.")
    path = runs_root / run_id
    if not (path / "summary.json").is_file():
        raise UsageError(f"no run {run_id!r} in {runs_root}", "See `kindml runs list` for the run ids.")
    return path


def _newest(root: Path, pattern: str) -> Path | None:
    hits = sorted(root.rglob(pattern), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return hits[-1] if hits else None


def _read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"cannot read {path.name} ({path}): {exc}")
        return None


def parse_log_timeline(log_path: Path) -> dict[str, tuple[float, float | None, str | None]]:
    """Stage → (start_s, end_s, status) from the kfp.local log; times relative to the first start of the last attempt."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    events: list[tuple[str, str, float, str | None]] = []  # (kind, task, seconds of day, status)
    day_offset, last = 0.0, None
    for raw in lines:
        m = _LOG_LINE.match(_ANSI.sub("", raw))
        if not m:
            continue
        h, mi, s = m.group("t").split(":")
        t = int(h) * 3600 + int(mi) * 60 + float(s)
        if last is not None and t + day_offset < last - 3600:  # past midnight
            day_offset += 86400.0
        t += day_offset
        last = t
        what = m.group("what")
        if _RUN.search(what):
            events.clear()  # a new attempt (resume): the timeline shows the last one
        elif sm := _START.search(what):
            events.append(("start", sm.group("task"), t, None))
        elif em := _END.search(what):
            events.append(("end", em.group("task"), t, em.group("status").lower()))
    starts = [t for kind, _, t, _ in events if kind == "start"]
    if not starts:
        return {}
    t0 = min(starts)
    spans: dict[str, tuple[float, float | None, str | None]] = {}
    for kind, task, t, status in events:
        if kind == "start":
            spans[task] = (t - t0, None, None)
        elif task in spans:
            spans[task] = (spans[task][0], t - t0, status)
    return spans


def build_timeline(summary: dict[str, Any], run_dir: Path) -> list[StageSpan]:
    """One span per stage of the summary, placed by the log when it has the stage, else after the previous one."""
    stages: dict[str, Any] = summary.get("stages") or {}
    spans = parse_log_timeline(run_dir / "logs" / "pipeline.log")
    succeeded = summary.get("status") == "succeeded"
    out: list[StageSpan] = []
    cursor = 0.0
    for name, info in stages.items():
        info = info or {}
        status = str(info.get("status") or "not_run")
        if succeeded and status == "not_run":
            status = "cached"  # a resumed run reused it (older summaries said not_run)
        secs = info.get("seconds")
        if name in spans:
            start, end, _ = spans[name]
            if end is None and isinstance(secs, int | float):
                end = start + float(secs)
        elif status in ("succeeded", "failed", "interrupted") and isinstance(secs, int | float):
            start, end = cursor, cursor + float(secs)
        elif status == "cached":
            start, end = cursor, cursor
        else:
            start = end = None
        if end is not None:
            cursor = max(cursor, end)
        out.append(StageSpan(name, status, float(secs) if isinstance(secs, int | float) else None, start, end))
    return out


def registry_versions(tracking_uri: str, model_name: str, notes: list[str], aliases: tuple[str, ...] = ("champion",)) -> list[dict[str, Any]] | None:
    """Every version of ``model_name`` with aliases and lineage tags, or None (with a note) if the registry cannot say.

    MLflow's version search leaves ``aliases`` empty, so each alias of ``aliases`` is resolved on its own.
    """
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        notes.append(f"no model registry at {tracking_uri.removeprefix('sqlite:///')}")
        return None
    try:
        from kindml.registry import list_versions, resolve

        versions = [v.to_dict() for v in list_versions(tracking_uri, model_name)]
        for alias in aliases:
            ref = resolve(tracking_uri, model_name, alias=alias)
            for v in versions:
                if ref is not None and v["version"] == ref.version and alias not in v["aliases"]:
                    v["aliases"].append(alias)
        return versions
    except Exception as exc:  # the report shows what it has; the registry is one source among several
        log.debug("registry query failed", exc_info=True)
        notes.append(f"cannot query the model registry {tracking_uri}: {type(exc).__name__}: {exc}")
        return None


def comparison_version(data: RunData, alias: str = "champion") -> tuple[str, str] | None:
    """(version, role) whose importance this run's is compared with: the champion the gate compared against,
    else the alias holder when it is another version, else the newest earlier version."""
    this = str((data.get("registered") or data.summary.get("model") or {}).get("version") or "")
    champion = (data.get("gate") or data.summary.get("gate") or {}).get("champion_version")
    if champion and str(champion) != this:
        return str(champion), "champion"
    versions = data.versions or []
    holder = next((str(v["version"]) for v in versions if alias in (v.get("aliases") or [])), None)
    if holder and holder != this:
        return holder, alias
    earlier = [int(v["version"]) for v in versions if str(v.get("version", "")).isdigit() and this.isdigit() and int(v["version"]) < int(this)]
    return (str(max(earlier)), "previous version") if earlier else None


def other_importance(data: RunData, tracking_uri: str, model_name: str, alias: str, notes: list[str]) -> dict[str, Any] | None:
    """The registered importance of :func:`comparison_version` (None, with a note, when it has none)."""
    pick = comparison_version(data, alias)
    if pick is None:
        return None
    version, role = pick
    try:
        from kindml.explain.importance import registered_importance

        doc = registered_importance(tracking_uri, model_name, version)
    except Exception as exc:  # one source among several: the section says what it has
        log.debug("importance of v%s failed", version, exc_info=True)
        notes.append(f"cannot read the importance of {model_name} v{version}: {type(exc).__name__}: {exc}")
        return None
    if doc is None:
        notes.append(f"{model_name} v{version} ({role}) has no importance.json (registered before explanations)")
        return {"version": version, "role": role, "doc": None}
    return {"version": version, "role": role, "doc": doc}


def latest_benchmark(search: list[Path], notes: list[str]) -> tuple[dict[str, Any] | None, Path | None]:
    """The newest benchmark result (a file, or ``*.json`` in the folders of ``search``) that has ``machine`` and ``results``."""
    files: list[Path] = []
    for p in search:
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(p.glob("*.json"))
    for path in sorted(set(files), key=lambda p: p.stat().st_mtime, reverse=True):
        doc = _read_json(path, notes)
        if isinstance(doc, dict) and isinstance(doc.get("results"), list) and isinstance(doc.get("machine"), dict):
            return doc, path
    return None, None


def default_benchmark_dirs() -> list[Path]:
    """``./benchmarks/results`` and, in a source checkout, the repository's."""
    dirs = [Path.cwd() / "benchmarks" / "results"]
    repo = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
    if repo not in dirs:
        dirs.append(repo)
    return dirs


def audit_events(workspace: Path, tracking_uri: str, model_name: str, notes: list[str]) -> list[dict[str, Any]] | None:
    """The audit log of ``model_name`` (oldest first), or None (with a note) when it cannot be read."""
    try:
        from kindml.audit import AuditLog

        h = AuditLog(workspace, tracking_uri).history(model_name)
    except Exception as exc:  # the report shows what it has
        log.debug("audit log read failed", exc_info=True)
        notes.append(f"cannot read the audit log of {model_name}: {type(exc).__name__}: {exc}")
        return None
    notes.extend(h.problems)
    return h.events


def collect(
    run_dir: Path,
    tracking_uri: str | None = None,
    benchmarks: list[Path] | None = None,
    workspace: Path | None = None,
) -> RunData:
    """Read a run folder (and, if given, the registry, the audit log of ``workspace`` and benchmark results) into a :class:`RunData`."""
    notes: list[str] = []
    summary_path = run_dir / "summary.json"
    summary = _read_json(summary_path, notes) if summary_path.is_file() else None
    if not isinstance(summary, dict):
        raise UsageError(f"{summary_path} is missing or unreadable", "Pick a run folder that has a summary.json (see `kindml runs list`).")
    data = RunData(run_dir=run_dir, summary=summary, notes=notes)
    kfp_root = run_dir / "kfp"
    for key, pattern in ARTIFACTS.items():
        path = _newest(kfp_root, pattern)
        if path is not None:
            data.artifacts[key] = _read_json(path, notes)
            data.artifacts[key + "_path"] = path
    data.timeline = build_timeline(summary, run_dir)
    model_name = (summary.get("model") or {}).get("name") or (data.get("registered") or {}).get("name")
    if tracking_uri and model_name:
        alias = (summary.get("model") or {}).get("alias") or "champion"
        data.versions = registry_versions(tracking_uri, model_name, notes, (alias,))
        if data.get("importance"):
            data.importance_other = other_importance(data, tracking_uri, model_name, alias, notes)
        if workspace is not None:
            data.audit = audit_events(workspace, tracking_uri, model_name, notes)
    if benchmarks:
        data.benchmark, data.benchmark_path = latest_benchmark(benchmarks, notes)
    return data


def run_started(summary: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(summary.get("started")))
    except ValueError:
        return None


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds))) if seconds >= 60 else f"{seconds:.1f} s"
