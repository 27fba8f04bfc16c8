"""`kindml experiment start|status|stop`: an A/B, canary or shadow experiment between the champion and a challenger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.cli.serve_cmd import serving_config

METRICS = ("accuracy", "catch_rate", "false_alarm_rate", "auc")  # kindml.serving.experiment.METRICS


def _env() -> tuple[Any, Any, Any]:
    from kindml.runtime import RuntimeEnv

    cfg = state().config()
    ws = state().workspace(cfg).ensure()
    return cfg, ws, RuntimeEnv.local(cfg, ws)


def restart_predictor(cfg: Any, ws: Any, env: Any, model: str) -> dict[str, Any] | None:
    """Restart the background predictor (if one runs) on ``model``'s champion, so it picks up the experiment record."""
    from kindml.serving.bundle import fetch_bundle
    from kindml.serving.server import alive, read_state, start_background, stop_background

    st = read_state(ws)
    if st is None or not alive(st.pid):
        return None
    stop_background(ws)
    bundle = fetch_bundle(cfg, ws, env.mlflow_tracking_uri, f"{model}@{cfg.registry.champion_alias}")
    new = start_background(ws, bundle.folder, bundle.name, bundle.version, st.host, st.port)
    return {"url": new.url, "pid": new.pid, "version": new.version}


def _read_spec(path: Path) -> dict[str, Any]:
    import json

    import yaml

    from kindml.experiments.errors import ExperimentError

    if not path.is_file():
        raise ExperimentError(f"no experiment spec at {path}", "Pass a YAML or JSON file with the ExperimentSpec fields (see docs/experiments.md).")
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else yaml.safe_load(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        raise ExperimentError(f"cannot read {path}: {exc}", "Fix the file's syntax.") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{path} must hold a mapping of ExperimentSpec fields", "See docs/experiments.md for an example.")
    return data


def register(app: typer.Typer) -> None:
    x_app = typer.Typer(help="A/B, canary and shadow experiments on the local predictor, decided by a sequential test.",
                        no_args_is_help=True)

    @x_app.command("start")
    def start(
        challenger: str = typer.Option(..., "--challenger", help="The challenger: NAME@VERSION or NAME@ALIAS (e.g. my-model@7)."),
        mode: str = typer.Option("ab", "--mode", help="ab (split entities), canary (a small split) or shadow (the champion answers; "
                                 "the challenger's predictions are only recorded)."),
        split: float = typer.Option(None, "--split", help="The challenger's share of entities (default: ab 0.5, canary 0.05, shadow 1.0)."),
        metric: str = typer.Option(None, "--metric", help=f"The decision metric on labelled outcomes: {', '.join(METRICS)} "
                                   "(default: auc for a binary model, else accuracy)."),
        baseline: float = typer.Option(None, "--baseline", help="The champion's expected value of the metric (default: its holdout "
                                       "value in the registry, where the evaluate stage computed it)."),
        mde: float = typer.Option(0.05, "--mde", help="Minimum detectable effect, relative to the baseline (0.05 = 5 %)."),
        min_samples: int = typer.Option(200, "--min-samples", min=30, help="Labelled outcomes each arm needs before the first look."),
        name: str = typer.Option(None, "--name", help="Experiment name (default: <model>-v<challenger>-<time>)."),
        spec_file: Path = typer.Option(None, "--spec", help="A YAML/JSON ExperimentSpec instead of the options above "
                                       "(name, salt and models are filled in when missing)."),
        reason: str = typer.Option("A/B experiment", "--reason", help="Why (recorded with the challenger alias)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Start an experiment: the design (sample size, looks) is shown up front; a running predictor is restarted to route."""
        import contextlib

        from kindml import approvals, audit
        from kindml.errors import RegistryError
        from kindml.experiments import live
        from kindml.serving.bundle import fetch_bundle
        from kindml.serving.experiment import begin, spec_data

        cfg, ws, env = _env()
        chall = fetch_bundle(cfg, ws, env.mlflow_tracking_uri, challenger)
        champ = fetch_bundle(cfg, ws, env.mlflow_tracking_uri, f"{chall.name}@{cfg.registry.champion_alias}")
        wcfg = serving_config(champ.workload)
        if spec_file is not None:
            data = _read_spec(spec_file)
        else:
            from kindml.workload.loader import instantiate

            data = spec_data(instantiate(champ.workload, wcfg).task, champ.folder, mode=mode, split=split, metric=metric,
                             baseline=baseline, mde=mde, min_samples=min_samples)
            if name:
                data["name"] = name
        rec = begin(wcfg, ws, champ, chall, data, audit.current_user())
        with contextlib.suppress(RegistryError):  # already @challenger
            approvals.set_alias(env, cfg.registry, f"{chall.name}@{chall.version}", cfg.registry.challenger_alias, reason)
        served = restart_predictor(cfg, ws, env, champ.name)
        rep = live.report(rec) | {"predictor": served}
        emit(rep, output, f"experiment {rec['name']} started: {champ.name} v{champ.version} vs v{chall.version} ({rep['mode']}, "
                          f"challenger share {rep['split']:g})\n{rep['design_text']}"
                          + ("" if served else "\nno predictor is running: `kindml serve start` serves the experiment"))

    @x_app.command("status")
    def status(
        apply: bool = typer.Option(True, "--apply/--no-apply", help="Act on a final decision in the registry (audited)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Count the labelled outcomes, take a look, and act on a final decision (promote / rollback / stop for futility)."""
        from kindml.experiments import live
        from kindml.experiments.errors import ExperimentError
        from kindml.monitoring.feedback import log_path
        from kindml.monitoring.quality import PredictionLog

        cfg, ws, env = _env()
        rec = live.load(ws.serving)
        if rec is None:
            raise ExperimentError("no experiment in this workspace", "Start one with `kindml experiment start --challenger NAME@VERSION`.")
        if log_path(ws.serving).is_file():
            rec = live.evaluate(ws.serving, PredictionLog(log_path(ws.serving))) or rec
        applied = live.apply_decision(ws.serving, env, cfg.registry) if apply else None
        if applied is not None:
            rec = live.load(ws.serving) or rec
            applied = applied | {"predictor": restart_predictor(cfg, ws, env, rec["model"])}
        rep = live.report(rec) | {"applied_now": applied}
        d = rep["decision"] or {}
        cur = rep.get("current") or {}
        text = (f"experiment {rep['name']} ({rep['mode']}): {rep['status']}; labelled outcomes per arm "
                f"{rep['outcomes_per_arm']}; {rep['metric']} {cur.get('rate', '-')}; decision: "
                f"{d.get('action', 'keep running') if isinstance(d, dict) else d}")
        if applied:
            text += f"\napplied: {applied['message']}"
        emit(rep, output, text)

    @x_app.command("stop")
    def stop(
        reason: str = typer.Option(..., "--reason", help="Why the experiment ends without a decision (recorded)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """End the experiment without a statistical decision: the champion stays and serves alone."""
        from kindml import audit
        from kindml.experiments import live

        cfg, ws, env = _env()
        rec = live.stop(ws.serving, reason, audit.current_user())
        served = restart_predictor(cfg, ws, env, rec["model"])
        emit({**rec, "predictor": served}, output, f"experiment {rec['name']} stopped ({reason}); archived to {rec['archived_to']}")

    app.add_typer(x_app, name="experiment")
