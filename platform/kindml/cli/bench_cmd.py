"""`kindml bench`: the ONNX Runtime optimisation and quantisation benchmark suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, progress_enabled, state, stderr_console


def _tracking_uri(cfg: Any) -> str | None:
    """The workspace's MLflow tracking URI, only when a registry exists (no MLflow import otherwise)."""
    from kindml.runtime import RuntimeEnv

    ws = state().workspace(cfg)
    if not cfg.registry.tracking_uri and not (ws.mlflow / "mlflow.db").exists():
        return None
    return RuntimeEnv.local(cfg, ws).mlflow_tracking_uri


def _resolve_sources(req: Any) -> None:
    """Where each selected workload case's registered champion could be (``req.sources``), unless --source train."""
    from kindml.bench.suite import selected_cases
    from kindml.errors import BenchmarkError

    wanted = [c for c in selected_cases(req) if c.from_registry]
    if not wanted or req.source == "train":
        return
    cfg = state().config()
    uri = _tracking_uri(cfg)
    if uri is None:
        if req.source == "registry":
            raise BenchmarkError("--source registry: no model registry in this workspace",
                                 "Register a champion first (e.g. `kindml capstone`), or use --source train / auto.")
        return
    for c in wanted:
        req.sources[c.name] = c.registry_source(cfg, uri)


class _RichProgress:
    def __init__(self, progress: Any) -> None:
        self.p = progress
        self.task = progress.add_task("starting", total=None)

    def start(self, total: int) -> None:
        self.p.update(self.task, total=total)

    def update(self, description: str) -> None:
        self.p.update(self.task, description=description)

    def advance(self, n: int = 1) -> None:
        self.p.advance(self.task, n)


def _text(doc: dict[str, Any]) -> str:
    from kindml.bench.suite import headline

    m = doc["machine"]
    lines = [
        f"{doc['suite']} suite on {m['cpu_model']} ({', '.join(k for k, v in m['isa'].items() if v) or 'no AVX2'}), "
        f"threads {', '.join(map(str, doc['settings'].get('thread_counts') or [m['threads']]))}, onnxruntime {m['onnxruntime_version']}, device {doc['device']}: {doc['wall_seconds']} s",
        *headline(doc),
    ]
    for g in doc.get("goals", []):
        if g["measured"] is not None or g["met"] is False:
            met = "met" if g["met"] else "NOT met"
            at = ("" if g["batch"] is None else f" (batch {g['batch']})") + (f" [{g['threads']} thread(s)]" if g.get("threads") else "")
            lines.append(f"goal: {g['goal']}{at}: {g['measured'] if g['measured'] is not None else g['detail']} (target {g['target']}): {met}")
    if doc.get("noisy"):
        lines.append(f"warning: {doc['noisy_records']} of {len(doc['results'])} measurements are noisy (CV > {doc['settings']['cv_threshold']}); load average {m.get('load_average_start')} -> {m.get('load_average_end')}")
    skipped = doc.get("skipped", [])
    if skipped:
        failed = [s for s in skipped if s["kind"] == "failed"]
        lines.append(f"skipped: {len(skipped)} (variant, provider) pairs" + (f", {len(failed)} failed" if failed else "") + " (reasons in the markdown report)")
        for s in failed:
            lines.append(f"  failed: {s['model']} {s['variant']} on {s['provider']}: {s['reason']}")
    for kind, path in (doc.get("files") or {}).items():
        lines.append(f"{kind}: {path}")
    return "\n".join(lines)


def _workload_case_names() -> tuple[str, ...]:
    from kindml.pipelines import BENCH_CASES

    return tuple(BENCH_CASES)


def _source_aliases() -> tuple[str, ...]:
    from kindml.pipelines import BENCH_SOURCE_ALIASES

    return BENCH_SOURCE_ALIASES or ("--model-source",)


def register(app: typer.Typer) -> None:
    from kindml.bench.catalog import PLATFORM_MODELS

    model_names = (*_workload_case_names(), *PLATFORM_MODELS)
    aliases = _source_aliases()

    @app.command("bench")
    def bench(
        suite: str = typer.Option("quick", "--suite", help="quick (a few minutes: batches 1/8/32, 5 repeats) or full (batches 1/8/32/128, 10 repeats, QOperator and FP16 too)."),
        models: list[str] = typer.Option(None, "--models", "-m", help=f"Models, comma-separated or repeated: {', '.join(model_names)} (default: all)."),
        device: str = typer.Option("auto", "--device", help="cpu, cuda (CUDA/TensorRT EPs; fails without them) or auto (cuda when the CUDA EP exists, else cpu)."),
        threads: str = typer.Option(None, "--threads", help="Intra-op threads for ONNX Runtime and PyTorch (default 1; recorded with the result); a list such as 1,2 measures each count in the same run."),
        out_dir: Path = typer.Option(Path("benchmarks/results"), "--out-dir", help="Where the JSON, markdown and PNG plots go."),
        source: str = typer.Option(None, "--source", help="Workload models that can come from the model registry: its champion (registry), trained on the spot (train), or the champion if there is one (auto, the default)."),
        deprecated_source: str = typer.Option(None, *aliases, hidden=True, help="Deprecated: use --source."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Measure PyTorch eager vs ONNX Runtime FP32 / INT8 / FP16 / TensorRT side by side, with accuracy.

        All variants of a model run in one process, interleaved, with fixed
        threads; each has a correctness measure against FP32 (a workload
        model's own metric, digits accuracy, MiniLM cosine and
        nearest-neighbour agreement). Writes
        benchmarks/results/<suite>-<cpu>-<date>.json, .md and PNG plots.
        Variants that cannot run here (GPU ones on a CPU machine) are listed
        as skipped with the reason.
        """
        from kindml.bench.cases import parse_models
        from kindml.bench.suite import (
            BenchRequest,
            check_device,
            parse_threads,
            run,
            validate_request,
        )
        from kindml.errors import UsageError
        from kindml.pipelines import bench_cases

        if deprecated_source is not None:
            if source is not None and source.strip().lower() != deprecated_source.strip().lower():
                raise UsageError(f"--source {source} and {aliases[0]} {deprecated_source} disagree", f"Use --source only ({aliases[0]} is deprecated).")
            stderr_console().print(f"warning: {aliases[0]} is deprecated; use --source {deprecated_source}", style="yellow")
            source = deprecated_source
        selected = parse_models(models, model_names)
        req = BenchRequest(
            suite=suite.strip().lower(),
            models=selected,
            cases=tuple(bench_cases(selected)),
            device=device.strip().lower(),
            threads=parse_threads(threads),
            out_dir=out_dir,
            source=(source or "auto").strip().lower(),
        )
        validate_request(req)
        check_device(req)
        _resolve_sources(req)
        if progress_enabled(output) and state().verbose == 0:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            with Progress(TextColumn("[bold]{task.description:<58}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr_console(), transient=True) as p:
                doc = run(req, _RichProgress(p))
        else:
            doc = run(req)
        emit(doc, output, _text(doc))
