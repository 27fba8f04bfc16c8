from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def ingest(workload: str, raw: Output[Dataset], stats: Output[Metrics], config_json: str = "{}", rows: int = 0, days: int = 0,
           seed: int = -1, corruption_rate: float = -1.0):
    """Generate (seeded, the workload's generator) or load the raw tables; row counts, time window, content hash."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import ingest as stage

    try:
        ctx = context.load(workload, config_json, data__rows=rows or None, data__days=days or None, data__seed=seed if seed >= 0 else None,
                           data__corruption__rate=corruption_rate if corruption_rate >= 0 else None)
        out = stage.run(ctx.workload, Path(raw.path))
    except Exception as exc:
        context.record_failure("ingest", exc)
        raise
    raw.metadata.update({"rows": out["rows"], "content_hash": out["content_hash"], "workload": out["workload"]})
    context.log_scalars(stats, {k: v for k, v in out.items() if k not in ("seed", "days", "history_drift")})
