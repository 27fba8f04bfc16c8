"""`kindml capstone`: run the capstone pipeline on the embedded default (kfp.local)."""

from __future__ import annotations

import typer

from kindml.cli.common import (
    OUTPUT_OPTION,
    Output,
    emit,
    parse_set_options,
    progress_enabled,
    state,
)


def _text_summary(s: dict) -> str:
    lines = [f"run {s['run_id']}: {s['status']} in {s.get('seconds')} s"]
    for name, info in s["stages"].items():
        secs = info.get("seconds")
        lines.append(f"  {name:<9} {info['status']:<10} {'' if secs is None else f'{secs:7.1f} s'}")
    m = s.get("metrics") or {}
    if "roc_auc" in m:
        lines.append(f"ROC AUC {m['roc_auc']:.4f}  PR AUC {m.get('pr_auc', float('nan')):.4f}")
    v = s.get("validation") or {}
    if v.get("quarantined_rows"):
        lines.append(f"quarantined rows: {v['quarantined_rows']} (written aside, see the validation report)")
    model = s.get("model")
    if model:
        promoted = f"promoted to @{model['alias']}" if model.get("promoted") else "registered, NOT promoted (gate)"
        lines.append(f"model {model['name']} v{model['version']} {promoted}")
        lines.append(f"onnx: {model['onnx_path']}")
    srv = s.get("serving")
    if srv:
        lines.append(f"serving: {srv['requests']} requests, {srv['errors']} errors, p50 {srv['p50_ms']} ms, p99 {srv['p99_ms']} ms")
    drift = s.get("drift")
    if drift is not None:
        fired = ", ".join(sorted({a['alertname'] for a in drift.get('alerts_fired', [])})) or "none"
        fired += " (a drift alert fired)" if drift.get("drift_alert_fired") else " (no drift alert)"
        top = sorted((drift.get("max_psi") or {}).items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"drift: alerts fired: {fired}; top PSI: " + ", ".join(f"{k}={v:.3f}" for k, v in top))
    dep = s.get("deployment")
    if dep and s.get("target") == "kind":
        lines.append(f"predictor: InferenceService {dep['model']} v{dep['version']} ({dep['url']} in the cluster; from this machine "
                     f"{dep.get('host_url') or 'see `kindml status`'})")
    elif dep:
        lines.append(f"predictor still running at {dep['url']} (stop it with `kindml serve stop`)")
    if s.get("results_note"):
        lines.append(f"note: {s['results_note']}")
    if s.get("kfp_ui"):
        lines.append(f"KFP run: {s['kfp_ui']}")
    lines.append(f"summary: {s['run_dir']}/summary.json")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("capstone")
    def capstone(
        rows: int = typer.Option(None, help="Transactions to generate (default 60000)."),
        days: int = typer.Option(None, help="Days of history (default 60)."),
        seed: int = typer.Option(None, help="Seed for data, tuning and training (default 42)."),
        drift: float = typer.Option(None, help="Drift severity 0..3 of the live traffic used by monitoring."),
        corrupt: float = typer.Option(None, help="Share of rows to damage on purpose (validation must catch it), e.g. 0.05."),
        quarantine: bool = typer.Option(None, "--quarantine/--no-quarantine", help="Quarantine bad rows (written aside, counted) instead of failing."),
        workers: int = typer.Option(None, help="Ray Train workers (default 2)."),
        epochs: int = typer.Option(None, help="Epochs of the final fit."),
        tune_trials: int = typer.Option(None, help="Ray Tune trials."),
        min_roc_auc: float = typer.Option(None, help="Evaluation gate floor."),
        quantize: bool = typer.Option(None, "--quantize/--no-quantize", help="Export: also build INT8 variants and serve the fastest within quantize.accuracy_budget."),
        data: str = typer.Option(None, "--data", help="Bring your own data: a folder with transactions and accounts (parquet or CSV)."),
        set_: list[str] = typer.Option(None, "--set", help="Any config field, e.g. --set train.batch_size=1024 (repeatable)."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Also deploy the champion and run the monitoring replay (deploy, monitor stages)."),
        target: str = typer.Option("local", "--target", help="local: kfp.local on this machine; kind: submit to KFP on the kind cluster (`kindml up`)."),
        kfp_host: str = typer.Option(None, "--kfp-host", help="KFP API for --target kind (default http://127.0.0.1:30088)."),
        resume: str = typer.Option(None, "--resume", help="Re-run RUN_ID with its saved parameters, reusing completed stages."),
        run_id: str = typer.Option(None, "--run-id", help="Name the run (default: capstone-<time>-<random>)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Run ingest → validate → features → train → evaluate → export → register → deploy → monitor.

        --target local (default): kfp.local on this machine. --target kind: the
        same pipeline compiled and run on KFP in the kind cluster (`kindml up`),
        followed task by task. Both write .kindml/runs/<run_id>/summary.json
        with the same fields and print where it is. Exit
        code 0 on success; 4 when validation stops the run (the report path is
        printed); other non-zero codes name the failing stage.
        """
        from kindml.errors import UsageError
        from kindml.pipeline.local import run_capstone

        overrides = parse_set_options(set_)
        overrides.update({
            "data.rows": rows, "data.days": days, "data.seed": seed, "data.drift": drift,
            "data.corruption.rate": corrupt, "validation.quarantine": quarantine, "train.workers": workers,
            "train.epochs": epochs, "train.tune_trials": tune_trials, "evaluate.min_roc_auc": min_roc_auc,
            "quantize.enabled": quantize,
        })
        if seed is not None:
            overrides["train.seed"] = seed
        if data is not None:
            overrides.update({"data.source": "file", "data.path": data})
        if resume and any(v is not None for k, v in overrides.items()):
            raise UsageError("--resume re-uses the run's saved parameters; other options cannot change them", "Drop the other options, or start a new run.")
        if run_id is not None and ("/" in run_id or run_id.startswith(".") or not run_id.strip()):
            raise UsageError(f"--run-id {run_id!r} is not a valid name", "Use letters, digits, '-' and '_'.")
        if target not in ("local", "kind"):
            raise UsageError(f"--target {target!r} is unknown", "Use --target local (default) or --target kind.")
        cfg = state().config(overrides)
        if target == "local" and cfg.data.source == "file" and cfg.data.path is not None and not cfg.data.path.is_dir():
            raise UsageError(f"--data {cfg.data.path} is not a folder", "Pass a folder holding transactions.(parquet|csv) and accounts.(parquet|csv).")
        if target == "kind" and resume:
            raise UsageError("--resume is for local runs", "On KFP, re-run: caching reuses completed tasks.")
        ws = state().workspace(cfg)
        verbose = state().verbose > 0
        show = progress_enabled(output) and not verbose

        client = None
        if target == "kind":  # before any progress output: an unreachable cluster is one clear error
            from kindml.pipeline.remote import DEFAULT_HOST, kfp_client, run_on_kfp

            client = kfp_client(kfp_host or DEFAULT_HOST)

        def run(on_event):  # type: ignore[no-untyped-def]
            if target == "kind":
                return run_on_kfp(cfg, ws, run_id, kfp_host or DEFAULT_HOST, serve=serve, on_event=on_event, client=client)
            return run_capstone(cfg, ws, run_id=resume or run_id, resume=bool(resume), on_event=on_event,
                                echo_logs=verbose and on_event is None, serve=serve)

        if show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            from kindml.cli.common import stderr_console
            from kindml.pipelines.capstone import STAGES

            progress = Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), TextColumn("{task.completed}/{task.total} stages"),
                                TimeElapsedColumn(), console=stderr_console(), transient=False)
            bar = progress.add_task("submitting to KFP" if target == "kind" else "starting", total=len(STAGES))

            def on_event(stage: str, event: str, secs: float | None) -> None:
                if event == "start":
                    progress.update(bar, description=f"{stage}")
                else:
                    progress.advance(bar)
                    progress.console.print(f"  {stage:<9} {event:<10} {'' if secs is None else f'{secs:.1f} s'}")

            with progress:
                summary = run(on_event)
        else:
            summary = run(None)
        emit(summary, output, _text_summary(summary))
