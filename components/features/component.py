from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def features(workload: str, clean: Input[Dataset], training_set: Output[Dataset], stats: Output[Metrics], config_json: str = "{}"):
    """Feast: the workload's offline tables, apply its definitions, point-in-time training set, materialize the online store."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import features as stage

    try:
        ctx = context.load(workload, config_json)
        out = stage.run(ctx.workload, ctx.env, Path(clean.path), Path(training_set.path))
    except Exception as exc:
        context.record_failure("features", exc)
        raise
    training_set.metadata.update({"feature_service": out["feature_service"], "rows": out["rows"]})
    context.log_scalars(stats, {"rows": out["rows"], "rows_without_features": out["rows_without_features"]})
