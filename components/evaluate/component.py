from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def evaluate(workload: str, model: Input[Model], holdout: Input[Dataset], evaluation: Output[Artifact], report: Output[Markdown],
             stats: Output[Metrics], config_json: str = "{}", min_score: float = -1.0):
    """The task's metrics on the time-based holdout (and the workload's baselines), then the promotion gate.

    ``min_score`` (≥ 0) overrides evaluate.min_score, the floor of the gate's metric.
    """
    import shutil
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import evaluate as stage

    try:
        ctx = context.load(workload, config_json, evaluate__min_score=min_score if min_score >= 0 else None)
        out = stage.run(ctx.workload, ctx.env, Path(model.path), Path(holdout.path), Path(evaluation.path))
    except Exception as exc:
        context.record_failure("evaluate", exc)
        raise
    shutil.copy2(Path(evaluation.path) / "evaluation.md", report.path)
    context.log_scalars(stats, {**out["metrics"], "promote": out["gate"]["promote"]})
