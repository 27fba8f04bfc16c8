from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def register(workload: str, evaluation: Input[Artifact], onnx_model: Input[Model], registered: Output[Artifact],
             config_json: str = "{}", pipeline_run_id: str = "") -> str:
    """A new MLflow model version with the exported bundle and lineage tags; the champion alias moves only if the gate promoted it."""
    import json
    import os
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import register as stage

    try:
        ctx = context.load(workload, config_json)
        run_id = pipeline_run_id or os.environ.get("KINDML_RUN_ID", "") or "unnamed"
        out = stage.run(ctx.workload, ctx.ref, ctx.env, run_id, Path(evaluation.path), Path(onnx_model.path), Path(registered.path))
    except Exception as exc:
        context.record_failure("register", exc)
        raise
    registered.metadata.update({"name": out["name"], "version": out["version"], "promoted": out["promoted"]})
    return json.dumps({k: v for k, v in out.items() if k != "tags"})
