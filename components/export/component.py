from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def export(workload: str, model: Input[Model], holdout: Input[Dataset], onnx_model: Output[Model], stats: Output[Metrics],
           config_json: str = "{}"):
    """The servable bundle: ONNX (dynamic batch) with the preprocessing, parity-checked against PyTorch, optional INT8,
    the drift reference profile and request examples."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import export as stage

    try:
        ctx = context.load(workload, config_json)
        out = stage.run(ctx.workload, ctx.ref, Path(model.path), Path(holdout.path), Path(onnx_model.path))
    except Exception as exc:
        context.record_failure("export", exc)
        raise
    onnx_model.metadata.update({"framework": "onnx", "opset": ctx.cfg.export.opset, "inputs": out["inputs"]})
    context.log_scalars(stats, {"parity_max_abs_error": out["parity"]["max_abs_error"]})
