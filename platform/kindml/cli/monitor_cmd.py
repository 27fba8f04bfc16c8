"""`kindml monitor watch|render-rules` and `kindml loadgen`."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import ServingError, UsageError


def served_pipeline(st):  # type: ignore[no-untyped-def]
    """The pipeline (and the config) of the model the background predictor serves: its workload's capstone,
    or a pipeline of its own workload file."""
    from pathlib import Path

    from kindml.pipeline.source import from_module
    from kindml.pipelines import CAPSTONES
    from kindml.serving.predictor import ModelBundle
    from kindml.workload.loader import workload_config

    bundle = ModelBundle.from_folder(Path(st.model_dir), st.model, st.version)
    cfg = workload_config(bundle.workload, state().config_path)
    for c in CAPSTONES.values():
        if c.workload == bundle.workload:
            return from_module(c.name, c.pipeline, c.workload), cfg
    pipeline_file = Path(bundle.workload).with_name("pipeline.py") if bundle.workload.endswith(".py") else None
    if pipeline_file is not None and pipeline_file.is_file():
        from kindml.pipeline.source import from_path

        return from_path(str(pipeline_file)), cfg
    raise UsageError(f"the served model's workload {bundle.workload!r} has no pipeline kindml knows",
                     "Retrain by hand with `kindml run YOUR_PIPELINE.py`.")


def register(app: typer.Typer) -> None:
    m_app = typer.Typer(help="Drift monitoring: alert rules and automated retraining.", no_args_is_help=True)

    @m_app.command("render-rules")
    def render_rules(
        out: Path = typer.Option(None, "--out", help="Write the local rule file here (default: print the cluster PrometheusRule)."),
        profile: str = typer.Option("local", help="Rule profile for --out: local (short for: durations) or cluster."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Render the one rule source as the cluster PrometheusRule or a local Prometheus rule file."""
        from kindml.monitoring.rules import render_prometheusrule, write_local_rules

        if profile not in ("local", "cluster"):
            raise UsageError(f"--profile {profile!r} is unknown", "Use --profile local or --profile cluster.")
        if out is None:
            text = render_prometheusrule()
            emit({"prometheusrule": text}, output, text)
            return
        path = write_local_rules(out, profile)
        emit({"path": str(path)}, output, f"wrote {path}")

    @m_app.command("watch")
    def watch_cmd(
        interval: float = typer.Option(5.0, min=0.5, help="Seconds between alert polls."),
        timeout: float = typer.Option(None, min=1, help="Stop after this many seconds (default: run until Ctrl-C)."),
        max_retrains: int = typer.Option(1, min=1, help="Stop after this many retraining runs."),
        cooldown: float = typer.Option(300.0, min=0, help="Seconds after a retraining before another may start."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Watch the served model's drift alerts (a local Prometheus scraping `kindml serve`); retrain and promote through the gate.

        Needs a running predictor (`kindml serve start` or a capstone run).
        Decisions are appended to .kindml/monitoring/decisions.jsonl.
        """
        from kindml.monitoring.prometheus import LocalPrometheus
        from kindml.monitoring.rules import write_local_rules
        from kindml.monitoring.watch import watch
        from kindml.pipeline.local import run_pipeline
        from kindml.runtime import RuntimeEnv
        from kindml.serving.bundle import fetch_bundle
        from kindml.serving.server import alive, read_state, start_background, stop_background

        ws = state().workspace().ensure()
        st = read_state(ws)
        if st is None or not alive(st.pid):
            raise ServingError("no predictor is running", "Start one with `kindml serve start` (or run `kindml capstone`).")
        source, cfg = served_pipeline(st)
        ws = state().workspace(cfg).ensure()
        rules = write_local_rules(ws.serving / "watch" / "rules.yml")

        def run_capstone(c, w, serve=True):  # type: ignore[no-untyped-def]
            return run_pipeline(source, c, w, serve=serve)

        def on_promote(decision: dict) -> None:
            stop_background(ws)
            bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, f"{st.model}@{cfg.registry.champion_alias}")
            start_background(ws, bundle.folder, bundle.name, bundle.version, st.host, st.port)

        with LocalPrometheus(ws.serving / "watch", [f"{st.host}:{st.port}"], rules) as prom:
            decisions = watch(cfg, ws, prom.alerts, run_capstone, on_promote, interval, timeout, max_retrains, cooldown)
        lines = [f"retrained: run {d['challenger_run']} v{d['challenger_version']} {d['metric']}={d['score']} -> "
                 f"{'PROMOTED' if d['promoted'] else 'kept the champion'}" for d in decisions]
        emit(decisions, output, "\n".join(lines) or "no drift alert fired")

    app.add_typer(m_app, name="monitor")

    @app.command("loadgen")
    def loadgen(
        rps: float = typer.Option(200.0, "--rps", help="Requests per second (one transaction each)."),
        duration: float = typer.Option(30.0, "--duration", help="Seconds to run (at most 600)."),
        drift: float = typer.Option(0.0, "--drift", min=0.0, max=3.0, help="Drift severity of the generated traffic."),
        threads: int = typer.Option(4, "--threads", min=1, max=64, help="Client threads."),
        url: str = typer.Option(None, "--url", help="Predictor URL (default: the one `kindml serve` started; its model's workload makes the traffic). Loopback only."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Bounded, loopback-only load on the local predictor; prints latency percentiles and error counts."""
        from kindml.serving.loadgen import payloads, run_load
        from kindml.serving.server import alive, read_state
        from kindml.workload.loader import instantiate

        ws = state().workspace()
        st = read_state(ws)
        if st is None or not alive(st.pid):
            raise ServingError("no predictor is running", "Start one with `kindml serve start` (its workload makes the traffic).")
        source, cfg = served_pipeline(st)
        url, model = url or st.url, st.model
        if not 0 < duration <= 600 or not 0 < rps <= 5000:
            raise UsageError("--rps must be in (0, 5000] and --duration in (0, 600]", "Pick a bounded load, e.g. --rps 200 --duration 60.")
        n = min(int(rps * duration), 20_000)
        bodies = payloads(instantiate(source.workload, cfg).traffic(n, drift, stream=21))
        stats = run_load(url, model, bodies, rps=rps, duration=duration, threads=threads)
        s = stats.summary()
        emit(s, output, f"{s['requests']} requests in {s['seconds']} s ({s['achieved_rps']} rps), errors {s['errors']}, "
                        f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, p99 {s['p99_ms']} ms")
