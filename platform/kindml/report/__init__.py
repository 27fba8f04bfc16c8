"""The run report: one self-contained HTML page per capstone run (``kindml report``).

:func:`build_report` gathers a run's summary, stage artifacts, registry versions
and the newest benchmark results (:mod:`kindml.report.collect`) and writes the
page (:mod:`kindml.report.render`; sections in :mod:`kindml.report.sections`,
charts as inline SVG from :mod:`kindml.report.svg`). The page has no script
and loads nothing from the network: it opens from disk, offline, anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["build_report"]


def build_report(
    cfg: Any,
    run_id: str | None = None,
    out: Path | None = None,
    benchmarks: list[Path] | None = None,
    registry: bool = True,
) -> Path:
    """Write the report of ``run_id`` (default: the latest run) of the workspace of ``cfg``; returns the page's path.

    ``benchmarks``: files or folders to take the newest result from (default:
    ``./benchmarks/results`` and the source checkout's). ``registry``: also list
    the model's versions from the registry (MLflow) and its audit log.
    """
    from kindml.errors import KindmlError
    from kindml.report.collect import collect, default_benchmark_dirs, find_run
    from kindml.report.render import write_report
    from kindml.runtime import RuntimeEnv
    from kindml.workspace import Workspace

    ws = Workspace(Path(cfg.home))
    run_dir = find_run(ws.runs, run_id)
    uri = RuntimeEnv.local(cfg, ws).mlflow_tracking_uri if registry else None
    data = collect(run_dir, tracking_uri=uri, benchmarks=benchmarks if benchmarks is not None else default_benchmark_dirs(), workspace=ws.root)
    target = out if out is not None else run_dir / "report.html"
    if target.is_dir():
        target = target / f"report-{data.run_id}.html"
    try:
        return write_report(data, target)
    except OSError as exc:
        raise KindmlError(f"cannot write the report to {target}: {exc.strerror or exc}",
                          "Pass --out with a writable file path (its folder must exist).") from None
