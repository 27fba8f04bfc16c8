from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def evaluate(config_json: str, env_json: str, model: Input[Model], holdout: Input[Dataset], min_roc_auc: float,
             evaluation: Output[Artifact], report: Output[Markdown], stats: Output[Metrics]):
    """Holdout metrics (ROC/PR AUC, precision/recall, calibration) and the promotion gate."""
    import shutil
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import evaluate as stage

    try:
        cfg, env = context.load(config_json, env_json, evaluate__min_roc_auc=min_roc_auc)
        out = stage.run(cfg, env, Path(model.path), Path(holdout.path), Path(evaluation.path))
    except Exception as exc:
        context.record_failure("evaluate", exc)
        raise
    shutil.copy2(Path(evaluation.path) / "evaluation.md", report.path)
    for k in ("roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "ece"):
        stats.log_metric(k, float(out["metrics"][k]))
    stats.log_metric("promote", 1.0 if out["gate"]["promote"] else 0.0)
    context.save_metrics(stats)
