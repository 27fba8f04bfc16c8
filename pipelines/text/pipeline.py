"""The text capstone: support tickets → intent with transfer learning, the platform's nine stages.

The same reusable components as every kindml pipeline, given this workload.
``kindml run text`` runs it on the embedded default; ``kindml pipeline compile``
writes its IR for a cluster.
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

WORKLOAD = "kindml.pipelines.text.workload"
# the encoder runs in train (embeddings), export (ONNX, parity, INT8) and evaluate: more memory than the tabular capstone
TASK_RESOURCES = TEXT_RESOURCES = {**RESOURCES, "train": ("100m", "1G", "2", "4G"), "evaluate": ("250m", "2G", "2", "4G"), "export": ("250m", "2G", "2", "4G")}


@dsl.pipeline(name="kindml-text", description="Ticket-intent capstone: GE validation of texts, Feast customer context, MiniLM transfer "
              "learning with Ray Tune + Train, baseline comparison, ONNX + INT8, KServe serving, embedding drift.")
def pipeline(
    config_json: str = "{}",
    run_id: str = "kfp-run",
    rows: int = 8_000,
    days: int = 60,
    seed: int = 42,
    corruption_rate: float = 0.0,
    quarantine: bool = False,
    workers: int = 2,
    epochs: int = 12,
    tune_trials: int = 3,
    min_score: float = 0.85,
    drift: float = 1.0,
    serve: bool = True,
) -> str:
    w = WORKLOAD

    def task(t: dsl.PipelineTask, stage: str) -> dsl.PipelineTask:
        return on_cluster(t, stage, TEXT_RESOURCES)

    t_ingest = task(ingest(workload=w, config_json=config_json, rows=rows, days=days, seed=seed, corruption_rate=corruption_rate), "ingest")
    t_validate = task(validate(workload=w, config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine), "validate")
    t_features = task(features(workload=w, config_json=config_json, clean=t_validate.outputs["clean"]), "features")
    t_train = task(train(workload=w, config_json=config_json, training_set=t_features.outputs["training_set"], workers=workers, epochs=epochs,
                         tune_trials=tune_trials, seed=seed), "train")
    t_eval = task(evaluate(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"],
                           min_score=min_score), "evaluate")
    t_export = task(export(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]), "export")
    t_register = task(register(workload=w, config_json=config_json, pipeline_run_id=run_id, evaluation=t_eval.outputs["evaluation"],
                               onnx_model=t_export.outputs["onnx_model"]), "register")
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = task(deploy(workload=w, config_json=config_json, registered=t_register.outputs["registered"]), "deploy")
        t_deploy.set_caching_options(False)
        t_monitor = task(monitor(workload=w, config_json=config_json, drift=drift, deployed=t_deploy.outputs["deployed"]), "monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
