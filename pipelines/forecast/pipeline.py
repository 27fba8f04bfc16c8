"""The demand-forecasting capstone: the platform's stages plus batch forecasts, given this workload.

ingest → validate → features → train → evaluate → export → register → batch → deploy → monitor.
``evaluate`` backtests over the holdout against seasonal-naive and gates on WAPE (a ceiling);
``batch`` forecasts every series with the served model (Ray Data) and writes the forecasts back to
Feast; ``deploy`` waits for it, so the predictor answers from the precomputed view (and forecasts
live whatever has no row there). ``kindml run forecast`` runs it on the embedded default;
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

WORKLOAD = "kindml.pipelines.forecast.workload"
TASK_RESOURCES = RESOURCES


@dsl.pipeline(name="kindml-forecast", description="Demand-forecasting capstone: GE validation of daily sales, Feast lag/rolling history and "
              "known-future plan, a global MLP with Ray Tune + Train, WAPE/MASE/sMAPE vs seasonal-naive, ONNX, Ray Data batch forecasts "
              "for every series written back to Feast, KServe with live fallback.")
def pipeline(
    config_json: str = "{}",
    run_id: str = "kfp-run",
    days: int = 180,
    seed: int = 42,
    corruption_rate: float = 0.0,
    quarantine: bool = False,
    workers: int = 2,
    epochs: int = 6,
    tune_trials: int = 2,
    drift: float = 1.0,
    serve: bool = True,
) -> str:
    w = WORKLOAD
    t_ingest = on_cluster(ingest(workload=w, config_json=config_json, days=days, seed=seed, corruption_rate=corruption_rate), "ingest")
    t_validate = on_cluster(validate(workload=w, config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine), "validate")
    t_features = on_cluster(features(workload=w, config_json=config_json, clean=t_validate.outputs["clean"]), "features")
    t_train = on_cluster(train(workload=w, config_json=config_json, training_set=t_features.outputs["training_set"], workers=workers, epochs=epochs,
                               tune_trials=tune_trials, seed=seed), "train")
    # the gate's ceiling on WAPE is evaluate.max_score in the config (lower is better): no min_score parameter here
    t_eval = on_cluster(evaluate(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]),
                        "evaluate")
    t_export = on_cluster(export(workload=w, config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]), "export")
    t_register = on_cluster(register(workload=w, config_json=config_json, pipeline_run_id=run_id, evaluation=t_eval.outputs["evaluation"],
                                     onnx_model=t_export.outputs["onnx_model"]), "register")
    t_batch = on_cluster(batch(workload=w, config_json=config_json, clean=t_validate.outputs["clean"], registered=t_register.outputs["registered"]),
                         "batch")
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = on_cluster(deploy(workload=w, config_json=config_json, registered=t_register.outputs["registered"]), "deploy")
        t_deploy.after(t_batch)  # the predictor reads the forecasts the batch wrote back
        t_deploy.set_caching_options(False)
        t_monitor = on_cluster(monitor(workload=w, config_json=config_json, drift=drift, deployed=t_deploy.outputs["deployed"]), "monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
