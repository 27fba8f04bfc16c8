from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def register(config_json: str, env_json: str, pipeline_run_id: str, clean: Input[Dataset], validation: Input[Artifact],
             training_set: Input[Dataset], model: Input[Model], evaluation: Input[Artifact], onnx_model: Input[Model],
             registered: dsl.Output[Artifact]) -> str:
    """A new MLflow model version with the ONNX file and lineage tags; the champion alias moves only if the gate promoted it."""
    import json
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import register as stage

    try:
        cfg, env = context.load(config_json, env_json)
        out = stage.run(cfg, env, pipeline_run_id, Path(clean.path), Path(validation.path), Path(training_set.path),
                        Path(model.path), Path(evaluation.path), Path(onnx_model.path), Path(registered.path))
    except Exception as exc:
        context.record_failure("register", exc)
        raise
    registered.metadata.update({"name": out["name"], "version": out["version"], "promoted": out["promoted"]})
    return json.dumps({k: v for k, v in out.items() if k != "tags"})
