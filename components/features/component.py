from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def features(config_json: str, env_json: str, clean: Input[Dataset], training_set: Output[Dataset], stats: Output[Metrics]):
    """Feast: build offline tables, apply the repo, point-in-time training set, materialize the online store."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import features as stage

    try:
        cfg, env = context.load(config_json, env_json)
        out = stage.run(cfg, env, Path(clean.path), Path(training_set.path))
    except Exception as exc:
        context.record_failure("features", exc)
        raise
    training_set.metadata.update({"feature_service": out["feature_service"], "rows": out["rows"]})
    stats.log_metric("rows", out["rows"])
    stats.log_metric("rows_without_features", out["rows_without_features"])
    context.save_metrics(stats)
