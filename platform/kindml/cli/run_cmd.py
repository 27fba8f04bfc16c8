"""`kindml run PIPELINE`: run any KFP v2 pipeline — a built-in capstone by name, a user's .py file, or compiled IR YAML.

Same progress display, resume, ``summary.json``, report and ``--output json``
for every pipeline, on the embedded default (kfp.local) or on KFP in the kind
cluster (``--target kind``).
"""

from __future__ import annotations

from typing import Any

import typer

from kindml.cli.common import (
    OUTPUT_OPTION,
    Output,
    emit,
    parse_set_options,
    progress_enabled,
    state,
)
from kindml.errors import UsageError

TARGETS = ("local", "kind")


def resolve(pipeline: str) -> Any:
    """A built-in capstone name (``kindml pipeline list``) or a path → a PipelineSource."""
    from kindml.pipeline.source import from_module, from_path
    from kindml.pipelines import CAPSTONES

    if pipeline in CAPSTONES:
        c = CAPSTONES[pipeline]
        return from_module(c.name, c.pipeline, c.workload)
    return from_path(pipeline)


def config_for(source: Any, overrides: dict[str, Any]) -> Any:
    """The effective config with the workload's defaults when the pipeline declares its workload."""
    if source.workload:
        from kindml.workload.loader import workload_config

        return workload_config(source.workload, state().config_path, overrides)
    return state().config(overrides)


def param_overrides(source: Any, raw: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--param k=v`` → (config overrides for parameters that mirror the config, other typed pipeline arguments)."""
    from kindml.pipeline.local import PARAM_CONFIG
    from kindml.pipeline.source import coerce_param, parameters

    if not raw:
        return {}, {}
    declared = parameters(source.load())
    config: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {item!r} is not NAME=VALUE", "Write it like --param rows=20000.")
        if key not in declared:
            raise UsageError(f"pipeline {source.name} has no parameter {key!r}", f"Its parameters: {', '.join(declared) or '(none)'}.")
        typed = coerce_param(key, value, declared[key])
        if key in PARAM_CONFIG:
            config[PARAM_CONFIG[key]] = typed
        else:
            given[key] = typed
    return config, given


def text_summary(s: dict[str, Any]) -> str:
    from kindml.model.gate import label

    lines = [f"run {s['run_id']} ({s.get('pipeline')}): {s['status']} in {s.get('seconds')} s"]
    for name, info in s["stages"].items():
        secs = info.get("seconds")
        lines.append(f"  {name:<9} {info['status']:<10} {'' if secs is None else f'{secs:7.1f} s'}")
    m = s.get("metrics") or {}
    if "roc_auc" in m:
        lines.append(f"ROC AUC {m['roc_auc']:.4f}  PR AUC {m.get('pr_auc', float('nan')):.4f}")
    elif "macro_f1" in m:
        lines.append(f"macro-F1 {m['macro_f1']:.4f}  accuracy {m.get('accuracy', float('nan')):.4f}")
    elif "recall_at_10" in m:
        lines.append(f"recall@10 {m['recall_at_10']:.4f}  NDCG@10 {m.get('ndcg_at_10', float('nan')):.4f}  coverage {m.get('coverage', float('nan')):.3f}"
                     f"  ({m.get('users', '?')} users)")
    for name, b in (s.get("baselines") or {}).items():
        gate_metric = (s.get("gate") or {}).get("metric")
        if gate_metric and gate_metric in b:
            lines.append(f"baseline {name}: {label(gate_metric)} {b[gate_metric]:.4f}")
    v = s.get("validation") or {}
    if v.get("quarantined_rows"):
        lines.append(f"quarantined rows: {v['quarantined_rows']} (written aside, see the validation report)")
    model = s.get("model")
    if model:
        promoted = (f"promoted to @{model['alias']}" if model.get("promoted")
                    else f"registered, waiting for approval (kindml models approve {model['name']}@{model['version']} --reason ...)"
                    if model.get("awaiting_approval") else "registered, NOT promoted (gate)")
        lines.append(f"model {model['name']} v{model['version']} {promoted}")
        lines.append(f"onnx: {model['onnx_path']}")
    b = s.get("batch")
    if b:
        lines.append(f"batch: {b['rows']} {b.get('what') or 'rows'} scored by {b.get('model')} v{b.get('version')} with {b.get('engine')} "
                     f"({b.get('workers')} workers) in {b.get('scoring_seconds')} s = {b.get('rows_per_s')} {b.get('what') or 'rows'}/s "
                     f"(steady state {b.get('steady_rows_per_s')}/s)"
                     + (f"; written to Feast view {b['feast_view']}" if b.get("feast_view") else ""))
    srv = s.get("serving")
    if srv:
        lines.append(f"serving: {srv['requests']} requests, {srv['errors']} errors, p50 {srv['p50_ms']} ms, p99 {srv['p99_ms']} ms")
    drift = s.get("drift")
    if drift is not None:
        fired = ", ".join(sorted({a['alertname'] for a in drift.get('alerts_fired', [])})) or "none"
        fired += " (a drift alert fired)" if drift.get("drift_alert_fired") else " (no drift alert)"
        top = sorted((drift.get("max_psi") or {}).items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"drift: alerts fired: {fired}; top PSI: " + ", ".join(f"{k}={v:.3f}" for k, v in top)
        )
    q = s.get("quality") or {}
    if q.get("feedback"):
        fb = q["feedback"]
        verdict = "quality alert fired" if q.get("quality_alert_fired") else "no quality alert"
        realised = ", ".join(f"{k}={v}" for k, v in sorted((q.get("realised") or {}).items()))
        if not realised:  # the predictor exports realised quality once a window holds enough labelled points
            joined = (q.get("actuals") or {}).get("realised") or {}
            realised = (", ".join(f"{k}={v}" for k, v in sorted(joined.items())) + " on the joined actuals, " if joined else "") \
                + "not exported by the predictor (too few labelled points in its window)"
        lines.append(
            f"delayed labels: {fb.get('joined', 0)} joined; realised "
            + realised
            + " vs holdout "
            + ", ".join(f"{k}={v}" for k, v in sorted((q.get("reference") or {}).items()))
            + f" ({verdict})"
        )
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


def execute(source: Any, overrides: dict[str, Any], given: dict[str, Any], *, target: str, serve: bool, resume: str | None,
            run_id: str | None, kfp_host: str | None, output: Output) -> None:
    """Run ``source`` with progress on stderr; print the summary (text or JSON)."""
    from kindml.pipeline.source import tasks

    if target not in TARGETS:
        raise UsageError(f"--target {target!r} is unknown", "Use --target local (default) or --target kind.")
    if resume and (any(v is not None for v in overrides.values()) or given):
        raise UsageError("--resume re-uses the run's saved parameters; other options cannot change them", "Drop the other options, or start a new run.")
    if run_id is not None and ("/" in run_id or run_id.startswith(".") or not run_id.strip()):
        raise UsageError(f"--run-id {run_id!r} is not a valid name", "Use letters, digits, '-' and '_'.")
    if target == "kind" and resume:
        raise UsageError("--resume is for local runs", "On KFP, re-run: caching reuses completed tasks.")
    if resume:
        import json

        from kindml.pipeline.source import PipelineSource

        ws_probe = state().workspace()
        saved = ws_probe.run_dir(resume) / "params.json"
        if saved.is_file():
            source = PipelineSource.from_dict(json.loads(saved.read_text(encoding="utf-8"))["source"])
        elif source is None:
            raise UsageError(f"no run {resume!r} with saved parameters in {ws_probe.runs}", "See `kindml runs list` for the run ids.")
    cfg = config_for(source, overrides) if source is not None else state().config(overrides)
    if target == "local" and cfg.data.source == "file" and cfg.data.path is not None and not cfg.data.path.is_dir():
        raise UsageError(f"--data {cfg.data.path} is not a folder", "Pass a folder holding the workload's tables (see `kindml data schema`).")
    ws = state().workspace(cfg)
    verbose = state().verbose > 0
    show = progress_enabled(output) and not verbose

    client = None
    if target == "kind":  # before any progress output: an unreachable cluster is one clear error
        from kindml.pipeline.remote import DEFAULT_HOST, kfp_client

        client = kfp_client(kfp_host or DEFAULT_HOST)

    def go(on_event: Any) -> dict[str, Any]:
        if target == "kind":
            from kindml.pipeline.remote import DEFAULT_HOST, run_on_kfp

            return run_on_kfp(source, cfg, ws, run_id, kfp_host or DEFAULT_HOST, serve=serve, on_event=on_event, client=client, given=given)
        from kindml.pipeline.local import run_pipeline

        return run_pipeline(source, cfg, ws, run_id=resume or run_id, resume=bool(resume), on_event=on_event,
                            echo_logs=verbose and on_event is None, serve=serve, given=given)

    if show:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from kindml.cli.common import stderr_console

        total = len(tasks(source.load()))
        progress = Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), TextColumn("{task.completed}/{task.total} stages"),
                            TimeElapsedColumn(), console=stderr_console(), transient=False)
        bar = progress.add_task("submitting to KFP" if target == "kind" else f"starting {source.name}", total=total)

        def on_event(stage: str, event: str, secs: float | None) -> None:
            if event == "start":
                progress.update(bar, description=f"{stage}")
            else:
                progress.advance(bar)
                progress.console.print(f"  {stage:<9} {event:<10} {'' if secs is None else f'{secs:.1f} s'}")

        with progress:
            summary = go(on_event)
    else:
        summary = go(None)
    emit(summary, output, text_summary(summary))


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        pipeline: str = typer.Argument(None, help="A built-in capstone (`kindml pipeline list`), a pipeline .py file (file.py[:function]) or IR .yaml."),
        param: list[str] = typer.Option(None, "--param", "-p", help="A pipeline parameter, NAME=VALUE (repeatable)."),
        set_: list[str] = typer.Option(None, "--set", help="Any config field, e.g. --set train.epochs=3 (repeatable)."),
        data: str = typer.Option(None, "--data", help="Bring your own data: a folder with the workload's tables (parquet or CSV)."),
        quarantine: bool = typer.Option(None, "--quarantine/--no-quarantine", help="Quarantine bad rows (written aside, counted) instead of failing."),
        quantize: bool = typer.Option(None, "--quantize/--no-quantize", help="Export: also build INT8 variants and serve the fastest within quantize.accuracy_budget."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Also deploy the champion and replay monitoring traffic (pipelines with deploy/monitor)."),
        target: str = typer.Option("local", "--target", help="local: kfp.local on this machine; kind: submit to KFP on the kind cluster (`kindml up`)."),
        kfp_host: str = typer.Option(None, "--kfp-host", help="KFP API for --target kind (default http://127.0.0.1:30088)."),
        resume: str = typer.Option(None, "--resume", help="Re-run RUN_ID with its saved pipeline and parameters, reusing completed stages."),
        run_id: str = typer.Option(None, "--run-id", help="Name the run (default: <pipeline>-<time>-<random>)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Run a pipeline end to end: a capstone by name (`kindml run text`), your own file (`kindml run ./demo/pipeline.py`)
        or compiled IR. Writes .kindml/runs/<run_id>/summary.json and prints where it is.

        Exit code 0 on success; 4 when validation stops the run (the report path is printed);
        other non-zero codes name the failing stage.
        """
        if pipeline is None and not resume:
            raise UsageError("which pipeline? give a name, a .py file or an IR .yaml", "See `kindml pipeline list`; or --resume RUN_ID.")
        source = resolve(pipeline) if pipeline is not None else None
        overrides = parse_set_options(set_)
        overrides.update({"validation.quarantine": quarantine, "quantize.enabled": quantize})
        if data is not None:
            overrides.update({"data.source": "file", "data.path": data})
        given: dict[str, Any] = {}
        if source is not None:
            from_params, given = param_overrides(source, param)
            overrides.update(from_params)
        elif param:
            raise UsageError("--param needs the pipeline", "With --resume the saved parameters are used.")
        execute(source, overrides, given, target=target, serve=serve, resume=resume, run_id=run_id, kfp_host=kfp_host, output=output)
