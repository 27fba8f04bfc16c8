from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def monitor(config_json: str, env_json: str, drift: float, deployed: Input[Artifact], monitoring: Output[Artifact], stats: Output[Metrics]):
    """Replay clean then drifted traffic through the predictor; Prometheus scrapes it and evaluates the alert rules."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import monitor as stage

    try:
        cfg, env = context.load(config_json, env_json, data__drift=drift)
        out = stage.run(cfg, env, Path(deployed.path), Path(monitoring.path))
    except Exception as exc:
        context.record_failure("monitor", exc)
        raise
    stats.log_metric("p50_ms", out["serving"]["p50_ms"])
    stats.log_metric("p99_ms", out["serving"]["p99_ms"])
    stats.log_metric("errors", out["serving"]["errors"])
    stats.log_metric("alerts_fired", len(out["drift"]["alerts_fired"]))
    context.save_metrics(stats)
