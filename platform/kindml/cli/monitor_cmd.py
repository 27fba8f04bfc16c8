"""`kindml monitor watch|render-rules` and `kindml loadgen`."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import ServingError, UsageError


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
        from kindml.pipeline.local import run_capstone
        from kindml.runtime import RuntimeEnv
        from kindml.serving.bundle import fetch_bundle
        from kindml.serving.server import alive, read_state, start_background, stop_background

        cfg = state().config()
        ws = state().workspace(cfg).ensure()
        st = read_state(ws)
        if st is None or not alive(st.pid):
            raise ServingError("no predictor is running", "Start one with `kindml serve start` (or run `kindml capstone`).")
        rules = write_local_rules(ws.serving / "watch" / "rules.yml")

        def on_promote(decision: dict) -> None:
            stop_background(ws)
            bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, f"{cfg.registry.model_name}@{cfg.registry.champion_alias}")
            start_background(ws, bundle.folder, bundle.name, bundle.version, st.host, st.port)

        with LocalPrometheus(ws.serving / "watch", [f"{st.host}:{st.port}"], rules) as prom:
            decisions = watch(cfg, ws, prom.alerts, run_capstone, on_promote, interval, timeout, max_retrains, cooldown)
        lines = [f"retrained: run {d['challenger_run']} v{d['challenger_version']} auc={d['roc_auc']} -> {'PROMOTED' if d['promoted'] else 'kept the champion'}" for d in decisions]
        emit(decisions, output, "\n".join(lines) or "no drift alert fired")

    app.add_typer(m_app, name="monitor")

    @app.command("loadgen")
    def loadgen(
        rps: float = typer.Option(200.0, "--rps", help="Requests per second (one transaction each)."),
        duration: float = typer.Option(30.0, "--duration", help="Seconds to run (at most 600)."),
        drift: float = typer.Option(0.0, "--drift", min=0.0, max=3.0, help="Drift severity of the generated traffic."),
        threads: int = typer.Option(4, "--threads", min=1, max=64, help="Client threads."),
        url: str = typer.Option(None, "--url", help="Predictor URL (default: the one `kindml serve` started). Loopback only."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Bounded, loopback-only load on the local predictor; prints latency percentiles and error counts."""
        from kindml.config import DriftSpec
        from kindml.data.generate import build_world, generate_live
        from kindml.serving.loadgen import payloads, run_load
        from kindml.serving.server import alive, read_state

        cfg = state().config()
        ws = state().workspace(cfg)
        st = read_state(ws)
        if url is None:
            if st is None or not alive(st.pid):
                raise ServingError("no predictor is running", "Start one with `kindml serve start`, or pass --url.")
            url, model = st.url, st.model
        else:
            model = cfg.registry.model_name
        if not 0 < duration <= 600 or not 0 < rps <= 5000:
            raise UsageError("--rps must be in (0, 5000] and --duration in (0, 600]", "Pick a bounded load, e.g. --rps 200 --duration 60.")
        d = cfg.data
        world = build_world(d.seed, d.accounts, d.merchants, d.days, d.end_date)
        n = min(int(rps * duration), 20_000)
        bodies = payloads(generate_live(world, n, DriftSpec.from_severity(drift) if drift else None, stream=21))
        stats = run_load(url, model, bodies, rps=rps, duration=duration, threads=threads)
        s = stats.summary()
        emit(s, output, f"{s['requests']} requests in {s['seconds']} s ({s['achieved_rps']} rps), errors {s['errors']}, "
                        f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, p99 {s['p99_ms']} ms")
