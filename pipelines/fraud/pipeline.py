"""The fraud capstone: ingest → validate → features → train → evaluate → export → register → deploy → monitor.

A plain KFP pipeline of kindml's reusable components, each given this
workload (``WORKLOAD``). It runs on the embedded default (``kindml run fraud``,
kfp.local) and compiles to KFP IR for a cluster (``kindml pipeline compile``).
Parameter defaults are the built-in config defaults; ``kindml run`` passes the
effective values from kindml.yaml / env / flags, and ``config_json`` carries
the rest of the effective config.
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl

from kindml.components import (
    deploy,
    evaluate,
    export,
    features,
    ingest,
    monitor,
    register,
    train,
    validate,
)
from kindml.pipeline.tasks import RESOURCES, on_cluster

WORKLOAD = "kindml.pipelines.fraud.workload"
TASK_RESOURCES = RESOURCES


@dsl.pipeline(name="kindml-fraud", description="Fraud detection capstone: ingest, GE validation, Feast features, Ray Tune + Train, "
              "evaluation gate, ONNX export, MLflow registry, KServe serving, drift monitoring.")
def pipeline(
    config_json: str = "{}",
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
    w = WORKLOAD
    t_ingest = on_cluster(ingest(workload=w, config_json=config_json, rows=rows, days=days, seed=seed, corruption_rate=corruption_rate), "ingest")
    t_validate = on_cluster(validate(workload=w, config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine), "validate")
    t_features = on_cluster(features(workload=w, config_json=config_json, clean=t_validate.outputs["clean"]), "features")
    t_train = on_cluster(train(workload=w, config_json=config_json, training_set=t_features.outputs["training_set"],
                               workers=workers, epochs=epochs, tune_trials=tune_trials, seed=seed), "train")
    t_eval = on_cluster(evaluate(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"],
                                 min_score=min_roc_auc), "evaluate")
    t_export = on_cluster(export(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]), "export")
    t_register = on_cluster(register(workload=w, config_json=config_json, pipeline_run_id=run_id, evaluation=t_eval.outputs["evaluation"],
                                     onnx_model=t_export.outputs["onnx_model"]), "register")
    # register IS cached (per run): a resumed run must not register the same model twice
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = on_cluster(deploy(workload=w, config_json=config_json, registered=t_register.outputs["registered"]), "deploy")
        t_deploy.set_caching_options(False)
        t_monitor = on_cluster(monitor(workload=w, config_json=config_json, drift=drift, deployed=t_deploy.outputs["deployed"]), "monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
