from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def monitor(workload: str, deployed: Input[Artifact], monitoring: Output[Artifact], stats: Output[Metrics], config_json: str = "{}",
            drift: float = -1.0):
    """Replay the workload's clean, then drifted traffic through the predictor; Prometheus scrapes it and evaluates the alert rules.

    ``drift`` (≥ 0) overrides data.drift, the severity of the drifted phase.
    """
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import monitor as stage

    try:
        ctx = context.load(workload, config_json, data__drift=drift if drift >= 0 else None)
        out = stage.run(ctx.workload, ctx.env, Path(deployed.path), Path(monitoring.path))
    except Exception as exc:
        context.record_failure("monitor", exc)
        raise
    context.log_scalars(stats, {"p50_ms": out["serving"]["p50_ms"], "p99_ms": out["serving"]["p99_ms"], "errors": out["serving"]["errors"],
                                "alerts_fired": len(out["drift"]["alerts_fired"])})
