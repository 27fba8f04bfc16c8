from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def batch(workload: str, clean: Input[Dataset], registered: Input[Artifact], scores: Output[Dataset], stats: Output[Metrics],
                config_json: str = "{}", workers: int = 0):
    """Batch inference with the served (champion) ONNX model: Ray Data map_batches over the workload's entity rows,
    predictions.parquet, and the workload's Feast view written back and materialized.

    ``workers`` (> 0) overrides batch.workers, the Ray Data actors.
    """
    from pathlib import Path

    from kindml.stages import batch as stage
    from kindml.stages import context

    try:
        ctx = context.load(workload, config_json, batch__workers=workers or None)
        out = stage.run(ctx.workload, ctx.env, ctx.ref, Path(clean.path), Path(registered.path), Path(scores.path))
    except Exception as exc:
        context.record_failure("batch", exc)
        raise
    scores.metadata.update({"rows": out["rows"], "model": out["model"], "version": out["version"], "view": (out["sink"] or {}).get("view")})
    context.log_scalars(stats, {"rows": out["rows"], "rows_per_s": out["engine"]["rows_per_s"], "seconds": out["seconds"]["total"]})
