"""The capstone pipeline: ingest → validate → features → train → evaluate → export → register → deploy → monitor.

The same pipeline runs on the embedded default (``kindml capstone``, kfp.local
SubprocessRunner) and compiles to KFP IR for a cluster (``kindml pipeline
compile``). Defaults of the parameters are the built-in config defaults; the
local driver passes the effective values from kindml.yaml / env / flags.
``config_json`` carries the rest of the effective config, ``env_json`` where
things live (empty on a cluster: the in-cluster services).
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl, kubernetes

from kindml.cluster import endpoints
from kindml.components.deploy import deploy
from kindml.components.evaluate import evaluate
from kindml.components.export import export
from kindml.components.features import features
from kindml.components.ingest import ingest
from kindml.components.monitor import monitor
from kindml.components.register import register
from kindml.components.train import train
from kindml.components.validate import validate

STAGES = ("ingest", "validate", "features", "train", "evaluate", "export", "register", "deploy", "monitor")

# Requests and limits of each task's pod on the cluster: (cpu request, memory request, cpu limit, memory limit).
# kfp.local ignores them. `train` only creates the RayJob and waits for it (the RayJob's
# pods carry the training resources, kindml.cluster.templates.RayJobParams), so it asks for little.
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    "ingest": ("250m", "512M", "1", "2G"),
    "validate": ("250m", "1G", "1", "2G"),
    "features": ("500m", "1G", "2", "4G"),
    "train": ("100m", "512M", "1", "2G"),
    "evaluate": ("250m", "1G", "1", "2G"),
    "export": ("250m", "1G", "1", "2G"),
    "register": ("250m", "1G", "1", "2G"),
    "deploy": ("100m", "512M", "1", "1G"),
    "monitor": ("250m", "512M", "1", "2G"),
}


def _on_cluster(task: dsl.PipelineTask, stage: str) -> dsl.PipelineTask:
    """Display name, resources, and the in-cluster addresses (ConfigMap kindml-runtime-env:
    MLflow, Redis, the Feast registry server, Prometheus) as environment variables."""
    cpu, mem, cpu_max, mem_max = RESOURCES[stage]
    task.set_display_name(stage).set_cpu_request(cpu).set_memory_request(mem).set_cpu_limit(cpu_max).set_memory_limit(mem_max)
    kubernetes.use_config_map_as_env(task, endpoints.RUNTIME_ENV_CONFIGMAP, {k: k for k in endpoints.RUNNER_ENV})
    return task


@dsl.pipeline(name="kindml-capstone", description="Fraud detection capstone: ingest, GE validation, Feast features, Ray Tune + Train, evaluation gate, ONNX export, MLflow registry.")
def capstone(
    config_json: str = "{}",
    env_json: str = "",
    run_id: str = "kfp-run",
    rows: int = 60_000,
    days: int = 60,
    seed: int = 42,
    corruption_rate: float = 0.0,
    quarantine: bool = False,
    workers: int = 2,
    epochs: int = 6,
    tune_trials: int = 4,
    min_roc_auc: float = 0.80,
    drift: float = 1.0,
    serve: bool = True,
) -> str:
    t_ingest = _on_cluster(ingest(config_json=config_json, rows=rows, days=days, seed=seed, corruption_rate=corruption_rate), "ingest")
    t_validate = _on_cluster(validate(config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine), "validate")
    t_features = _on_cluster(features(config_json=config_json, env_json=env_json, clean=t_validate.outputs["clean"]), "features")
    t_train = _on_cluster(train(
        config_json=config_json, env_json=env_json, training_set=t_features.outputs["training_set"],
        workers=workers, epochs=epochs, tune_trials=tune_trials, seed=seed,
    ), "train")
    t_eval = _on_cluster(evaluate(
        config_json=config_json, env_json=env_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"], min_roc_auc=min_roc_auc,
    ), "evaluate")
    t_export = _on_cluster(export(config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]), "export")
    t_register = _on_cluster(register(
        config_json=config_json, env_json=env_json, pipeline_run_id=run_id,
        clean=t_validate.outputs["clean"], validation=t_validate.outputs["validation"], training_set=t_features.outputs["training_set"],
        model=t_train.outputs["model"], evaluation=t_eval.outputs["evaluation"], onnx_model=t_export.outputs["onnx_model"],
    ), "register")
    # register IS cached (per run): a resumed run must not register the same model twice
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = _on_cluster(deploy(config_json=config_json, env_json=env_json, clean=t_validate.outputs["clean"],
                                      registered=t_register.outputs["registered"]), "deploy")
        t_deploy.set_caching_options(False)
        t_monitor = _on_cluster(monitor(config_json=config_json, env_json=env_json, drift=drift, deployed=t_deploy.outputs["deployed"]), "monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
