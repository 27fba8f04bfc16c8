from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def train(config_json: str, env_json: str, training_set: Input[Dataset], workers: int, epochs: int, tune_trials: int, seed: int,
          model: Output[Model], holdout: Output[Dataset], stats: Output[Metrics]):
    """Ray Tune (ASHA) over lr/width, then a Ray Train TorchTrainer DDP fit; tracked in MLflow."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import train as stage

    try:
        cfg, env = context.load(config_json, env_json, train__workers=workers, train__epochs=epochs, train__tune_trials=tune_trials, train__seed=seed)
        if env.target == "kind":  # a RayJob on KubeRay (kindml.stages.train_job)
            from kindml.stages import train_job

            out = train_job.submit_and_wait(cfg, env, Path(training_set.path), Path(model.path), Path(holdout.path), run_name=f"train-seed{seed}")
        else:
            out = stage.run(cfg, env, Path(training_set.path), Path(model.path), Path(holdout.path), run_name=f"train-seed{seed}")
    except Exception as exc:
        context.record_failure("train", exc)
        raise
    model.metadata.update({"framework": "pytorch", "mlflow_run_id": out["mlflow_run_id"], "best_params": out["best_params"]})
    stats.log_metric("val_auc", out["val_auc"])
    stats.log_metric("tune_trials", len(out["trials"]))
    context.save_metrics(stats)
