"""`kindml report [RUN_ID]`: a self-contained HTML page of a capstone run."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_id: str = typer.Argument(None, help="Run id (default: the latest run; see `kindml runs list`)."),
        out: Path = typer.Option(None, "--out", help="Write the page here (a file, or a folder) instead of .kindml/runs/<run_id>/report.html."),
        open_: bool = typer.Option(False, "--open", help="Open the page in the default browser afterwards."),
        bench: list[Path] = typer.Option(None, "--bench", help="Benchmark result file or folder to show (default: the newest benchmarks/results/*.json)."),
        no_registry: bool = typer.Option(False, "--no-registry", help="Do not query the model registry for the model's versions."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Write the run report: stage timeline, data validation, training and tuning, evaluation curves,
        model versions and lineage, serving latency, drift per feature, alerts fired, benchmarks.

        One HTML file with inline charts and no network assets: it opens offline, from disk.
        """
        from kindml.errors import UsageError
        from kindml.report import build_report

        for b in bench or []:
            if not b.exists():
                raise UsageError(f"--bench {b}: no such file or folder", "Pass a benchmark result JSON or a folder of them (benchmarks/results).")
        if out is not None and not out.is_dir() and not out.parent.is_dir():
            raise UsageError(f"--out {out}: the folder {out.parent} does not exist", "Create it first, or pass an existing folder.")
        cfg = state().config()
        path = build_report(cfg, run_id, out=out, benchmarks=list(bench) if bench else None, registry=not no_registry)
        if open_:
            import webbrowser

            if not webbrowser.open(path.resolve().as_uri()):
                typer.echo(f"could not start a browser; open {path} yourself", err=True)
        emit({"path": str(path)}, output, f"wrote {path}")
