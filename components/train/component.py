from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def train(workload: str, training_set: Input[Dataset], model: Output[Model], holdout: Output[Dataset], stats: Output[Metrics],
          config_json: str = "{}", workers: int = 0, epochs: int = 0, tune_trials: int = 0, seed: int = -1):
    """Ray Tune (ASHA) over the workload's search space, then a Ray Train TorchTrainer DDP fit; tracked in MLflow.

    On the kind target the same function runs as a KubeRay RayJob.
    """
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import train as stage

    try:
        ctx = context.load(workload, config_json, train__workers=workers or None, train__epochs=epochs or None,
                           train__tune_trials=tune_trials or None, train__seed=seed if seed >= 0 else None)
        run_name = f"{ctx.workload.name}-train-seed{ctx.cfg.train.seed}"
        if ctx.env.target == "kind":  # a RayJob on KubeRay (kindml.stages.train_job)
            from kindml.stages import train_job

            out = train_job.submit_and_wait(ctx.ref, ctx.cfg, ctx.env, Path(training_set.path), Path(model.path), Path(holdout.path),
                                            run_name=run_name)
        else:
            out = stage.run(ctx.workload, ctx.env, Path(training_set.path), Path(model.path), Path(holdout.path), run_name=run_name)
    except Exception as exc:
        context.record_failure("train", exc)
        raise
    model.metadata.update({"framework": "pytorch", "mlflow_run_id": out["mlflow_run_id"], "best_params": out["best_params"]})
    context.log_scalars(stats, {out["val_metric"]: out[out["val_metric"]], "tune_trials": len(out["trials"])})
