"""`kindml serve run|start|stop|status`: the KServe predictor as a local process."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state


def default_model() -> str:
    """``--model`` when none is given: the default capstone's model (its champion)."""
    from kindml.pipelines import CAPSTONES, DEFAULT_CAPSTONE

    return CAPSTONES[DEFAULT_CAPSTONE].workload_class().model_name


def serving_config(workload_ref: str):  # type: ignore[no-untyped-def]
    from kindml.workload.loader import workload_config

    return workload_config(workload_ref, state().config_path)


def register(app: typer.Typer) -> None:
    s_app = typer.Typer(help="Serve a registered model with KServe's ModelServer (REST v1 + v2, /metrics).", no_args_is_help=True)

    @s_app.command("run")
    def run(
        model: str = typer.Option(None, "--model", help="NAME, NAME@VERSION or NAME@ALIAS from the registry (default: the champion)."),
        model_dir: Path = typer.Option(None, "--model-dir", help="Serve this folder instead (an exported bundle: model.onnx, workload.json, ...), e.g. /mnt/models on a cluster."),
        workload: str = typer.Option(None, "--workload", help="The bundle's workload (module or .py file), if its workload.json does not name one."),
        name: str = typer.Option(None, "--name", help="Model name to serve under (default: from the bundle)."),
        version: str = typer.Option(None, "--version", help="Version label (default: from the bundle)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Bind address. KServe's own default is 0.0.0.0; kindml binds loopback unless told otherwise."),
        port: int = typer.Option(8080, "--port", min=1, max=65535, help="HTTP port (REST and /metrics)."),
        no_drift: bool = typer.Option(False, "--no-drift", help="Disable drift accounting (for overhead benchmarks)."),
        window: int = typer.Option(5000, "--window", min=100, max=1_000_000, help="Drift window in transactions."),
        workers: int = typer.Option(1, "--workers", min=1, max=32, help="Uvicorn worker processes (KServe's multi-process server); "
                                    "metrics and the drift window are shared by all of them."),
        no_experiment: bool = typer.Option(False, "--no-experiment", help="Serve the model alone even while an experiment on it runs "
                                           "(by default a running `kindml experiment` routes between champion and challenger)."),
    ) -> None:
        """Run the predictor in the foreground (what the InferenceService container runs)."""
        from kindml.monitoring.metrics import take_caller_metrics_dir

        metrics_dir = take_caller_metrics_dir()  # before anything imports prometheus_client or Feast
        from kindml.runtime import RuntimeEnv
        from kindml.serving.bundle import fetch_bundle
        from kindml.serving.launch import PredictorSpec, build_predictor
        from kindml.serving.predictor import ModelBundle
        from kindml.serving.server import serve_foreground, shared_state_dir

        base = state().config()
        ws = state().workspace(base).ensure()
        if model_dir is not None:
            bundle = ModelBundle.from_folder(model_dir, name, version, workload)
        else:
            bundle = fetch_bundle(base, ws, RuntimeEnv.local(base, ws).mlflow_tracking_uri, model or default_model())
        experiment, challenger = None, None
        if not no_experiment:
            from kindml.experiments import live

            rec = live.load(ws.serving)
            if rec is not None and rec["status"] == "running" and rec["model"] == bundle.name and rec["champion"]["version"] == bundle.version:
                experiment = rec
                challenger = ModelBundle.from_folder(Path(rec["challenger"]["dir"]), bundle.name, rec["challenger"]["version"], bundle.workload)
        with shared_state_dir(workers, metrics_dir) as shared:
            spec = PredictorSpec(bundle=bundle, config=serving_config(bundle.workload), workspace=ws, window=window,
                                 drift=not no_drift, shared_dir=shared, challenger=challenger, experiment=experiment)
            serve_foreground(build_predictor(spec), host, port, workers=workers)

    @s_app.command("start")
    def start(
        model: str = typer.Option(None, "--model", help="NAME, NAME@VERSION or NAME@ALIAS (default: the champion)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
        port: int = typer.Option(None, "--port", min=1, max=65535, help="HTTP port (default: a free one)."),
        workers: int = typer.Option(1, "--workers", min=1, max=32, help="Uvicorn worker processes (see `kindml serve run --help`)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Start the predictor in the background and wait until it is ready (idempotent)."""
        from kindml.runtime import RuntimeEnv
        from kindml.serving.bundle import fetch_bundle
        from kindml.serving.server import start_background

        cfg = state().config()
        ws = state().workspace(cfg).ensure()
        bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, model or default_model())
        # every worker imports KServe and loads the model on its own: give several workers longer to get ready
        st = start_background(ws, bundle.folder, bundle.name, bundle.version, host, port,
                              extra_args=["--workers", str(workers)] if workers > 1 else None, timeout=120.0 if workers == 1 else 300.0)
        d = st.__dict__ | {"url": st.url}
        emit(d, output, f"{st.model} v{st.version} ready at {st.url}/v1/models/{st.model}:predict (metrics: {st.url}/metrics, pid {st.pid})")

    @s_app.command("stop")
    def stop(output: Output = OUTPUT_OPTION) -> None:
        """Stop the background predictor (idempotent)."""
        from kindml.serving.server import stop_background

        st = stop_background(state().workspace().ensure())
        emit({"stopped": st is not None}, output, f"stopped pid {st.pid}" if st else "no predictor was running")

    @s_app.command("status")
    def status(output: Output = OUTPUT_OPTION) -> None:
        """Show the background predictor, if any."""
        from kindml.serving.server import alive, read_state

        st = read_state(state().workspace())
        if st is None or not alive(st.pid):
            emit({"running": False}, output, "no predictor running")
            return
        emit(st.__dict__ | {"running": True, "url": st.url}, output, f"{st.model} v{st.version} at {st.url} (pid {st.pid})")

    app.add_typer(s_app, name="serve")
