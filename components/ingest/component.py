from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def ingest(config_json: str, rows: int, days: int, seed: int, corruption_rate: float, raw: Output[Dataset], stats: Output[Metrics]):
    """Generate (seeded) or load the raw transactions and accounts; record row counts and a content hash."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import ingest as stage

    try:
        cfg, _ = context.load(config_json, "", data__rows=rows, data__days=days, data__seed=seed, data__corruption__rate=corruption_rate)
        out = stage.run(cfg, Path(raw.path))
    except Exception as exc:
        context.record_failure("ingest", exc)
        raise
    raw.metadata.update({"rows": out["rows"], "content_hash": out["content_hash"]})
    stats.log_metric("rows", out["rows"])
    stats.log_metric("accounts", out["accounts"])
    stats.log_metric("fraud_rate", out["fraud_rate"])
    context.save_metrics(stats)
