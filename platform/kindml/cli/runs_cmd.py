"""`kindml runs list|show`: the pipeline runs recorded in the workspace."""

from __future__ import annotations

import json
from typing import Any

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import UsageError


def _load(path: Any) -> dict[str, Any]:
    return json.loads((path / "summary.json").read_text(encoding="utf-8"))


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="List and inspect pipeline runs in the workspace.", no_args_is_help=True)

    @runs_app.command("list")
    def list_runs(output: Output = OUTPUT_OPTION) -> None:
        """List runs, oldest first."""
        ws = state().workspace()
        rows = []
        for p in ws.list_runs():
            s = _load(p)
            metric = (s.get("gate") or {}).get("metric") or "roc_auc"
            rows.append({"run_id": s.get("run_id"), "status": s.get("status"), "target": s.get("target"), "pipeline": s.get("pipeline"),
                         "metric": metric, "score": (s.get("metrics") or {}).get(metric),
                         "roc_auc": (s.get("metrics") or {}).get("roc_auc"), "model_version": (s.get("model") or {}).get("version"),
                         "started": s.get("started")})
        lines = [f"{r['run_id']}  {r['status']:<10} {r['metric']}={r['score'] if r['score'] is not None else '-'}  model v{r['model_version'] or '-'}"
                 for r in rows]
        emit(rows, output, "\n".join(lines) if lines else f"no runs yet in {ws.runs}")

    @runs_app.command("show")
    def show(run_id: str = typer.Argument(None, help="Run id (default: the latest run)."), output: Output = OUTPUT_OPTION) -> None:
        """Print a run's summary.json."""
        ws = state().workspace()
        if run_id is None:
            latest = ws.latest_run()
            if latest is None:
                raise UsageError(f"no runs in {ws.runs}", "Run `kindml capstone` first.")
            path = latest
        else:
            if "/" in run_id or "\\" in run_id or run_id.startswith("."):
                raise UsageError(f"{run_id!r} is not a run id", "Run ids look like text-20261123-101500-ab12cd; see `kindml runs list`.")
            path = ws.run_dir(run_id)
            if not (path / "summary.json").is_file():
                raise UsageError(f"no run {run_id!r} in {ws.runs}", "See `kindml runs list` for the run ids.")
        s = _load(path)
        emit(s, output, json.dumps(s, indent=2))

    app.add_typer(runs_app, name="runs")
