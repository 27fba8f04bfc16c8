"""The recommendation capstone: the platform's stages plus batch inference, given this workload.

ingest → validate → features → train → evaluate → export → register → batch → deploy → monitor.
``batch`` scores every user with the served model (Ray Data) and writes the top-K back to
Feast; ``deploy`` waits for it, so the predictor answers from the precomputed view (and scores
live whoever has no row there). ``kindml run recsys`` runs it on the embedded default;
``kindml pipeline compile`` writes its IR for a cluster.
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl

from kindml.components import (
    batch,
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

WORKLOAD = "kindml.pipelines.recsys.workload"
TASK_RESOURCES = RESOURCES


@dsl.pipeline(name="kindml-recsys", description="Recommendation capstone: GE validation of ratings, Feast user/item snapshots, a two-tower "
              "model with Ray Tune + Train, recall@K vs popularity, ONNX, Ray Data batch top-K written back to Feast, KServe with live fallback.")
def pipeline(
    config_json: str = "{}",
    run_id: str = "kfp-run",
    rows: int = 100_000,
    days: int = 60,
    seed: int = 42,
    corruption_rate: float = 0.0,
    quarantine: bool = False,
    workers: int = 2,
    epochs: int = 4,
    tune_trials: int = 2,
    min_score: float = 0.05,
    drift: float = 1.0,
    serve: bool = True,
) -> str:
    w = WORKLOAD
    t_ingest = on_cluster(ingest(workload=w, config_json=config_json, rows=rows, days=days, seed=seed, corruption_rate=corruption_rate), "ingest")
    t_validate = on_cluster(validate(workload=w, config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine), "validate")
    t_features = on_cluster(features(workload=w, config_json=config_json, clean=t_validate.outputs["clean"]), "features")
    t_train = on_cluster(train(workload=w, config_json=config_json, training_set=t_features.outputs["training_set"], workers=workers, epochs=epochs,
                               tune_trials=tune_trials, seed=seed), "train")
    t_eval = on_cluster(evaluate(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"],
                                 min_score=min_score), "evaluate")
    t_export = on_cluster(export(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]), "export")
    t_register = on_cluster(register(workload=w, config_json=config_json, pipeline_run_id=run_id, evaluation=t_eval.outputs["evaluation"],
                                     onnx_model=t_export.outputs["onnx_model"]), "register")
    t_batch = on_cluster(batch(workload=w, config_json=config_json, clean=t_validate.outputs["clean"], registered=t_register.outputs["registered"]),
                         "batch")
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = on_cluster(deploy(workload=w, config_json=config_json, registered=t_register.outputs["registered"]), "deploy")
        t_deploy.after(t_batch)  # the predictor reads the recommendations the batch wrote back
        t_deploy.set_caching_options(False)
        t_monitor = on_cluster(monitor(workload=w, config_json=config_json, drift=drift, deployed=t_deploy.outputs["deployed"]), "monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
