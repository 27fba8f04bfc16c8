"""The capstone pipeline: ingest → validate → features → train → evaluate → export → register → deploy → monitor.

The same pipeline runs on the embedded default (``kindml capstone``, kfp.local
SubprocessRunner) and compiles to KFP IR for a cluster (``kindml pipeline
compile``). Defaults of the parameters are the built-in config defaults; the
local driver passes the effective values from kindml.yaml / env / flags.
``config_json`` carries the rest of the effective config, ``env_json`` where
things live (empty on a cluster: the in-cluster services).
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl

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
    t_ingest = ingest(config_json=config_json, rows=rows, days=days, seed=seed, corruption_rate=corruption_rate).set_display_name("ingest")
    t_validate = validate(config_json=config_json, raw=t_ingest.outputs["raw"], quarantine=quarantine).set_display_name("validate")
    t_features = features(config_json=config_json, env_json=env_json, clean=t_validate.outputs["clean"]).set_display_name("features")
    t_train = train(
        config_json=config_json, env_json=env_json, training_set=t_features.outputs["training_set"],
        workers=workers, epochs=epochs, tune_trials=tune_trials, seed=seed,
    ).set_display_name("train")
    t_train.set_cpu_request("2").set_memory_request("4G").set_memory_limit("8G")
    t_eval = evaluate(
        config_json=config_json, env_json=env_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"], min_roc_auc=min_roc_auc,
    ).set_display_name("evaluate")
    t_export = export(config_json=config_json, model=t_train.outputs["model"], holdout=t_train.outputs["holdout"]).set_display_name("export")
    t_register = register(
        config_json=config_json, env_json=env_json, pipeline_run_id=run_id,
        clean=t_validate.outputs["clean"], validation=t_validate.outputs["validation"], training_set=t_features.outputs["training_set"],
        model=t_train.outputs["model"], evaluation=t_eval.outputs["evaluation"], onnx_model=t_export.outputs["onnx_model"],
    ).set_display_name("register")
    # register IS cached (per run): a resumed run must not register the same model twice
    with dsl.If(serve == True, name="serve-and-monitor"):  # noqa: E712 - a KFP condition, not Python
        t_deploy = deploy(config_json=config_json, env_json=env_json, clean=t_validate.outputs["clean"],
                          registered=t_register.outputs["registered"]).set_display_name("deploy")
        t_deploy.set_caching_options(False)
        t_monitor = monitor(config_json=config_json, env_json=env_json, drift=drift, deployed=t_deploy.outputs["deployed"]).set_display_name("monitor")
        t_monitor.set_caching_options(False)
    return t_register.outputs["Output"]
