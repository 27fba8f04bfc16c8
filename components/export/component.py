from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kindml.images import RUNTIME_IMAGE


@dsl.component(base_image=RUNTIME_IMAGE, install_kfp_package=False)
def export(config_json: str, model: Input[Model], holdout: Input[Dataset], onnx_model: Output[Model], stats: Output[Metrics]):
    """ONNX export (dynamic batch) with the preprocessing spec inside, parity-checked against PyTorch."""
    from pathlib import Path

    from kindml.stages import context
    from kindml.stages import export as stage

    try:
        cfg, _ = context.load(config_json, "")
        out = stage.run(cfg, Path(model.path), Path(holdout.path), Path(onnx_model.path))
    except Exception as exc:
        context.record_failure("export", exc)
        raise
    onnx_model.metadata.update({"framework": "onnx", "opset": cfg.export.opset})
    stats.log_metric("parity_max_abs_error", float(out["parity"]["max_abs_error"]))
    context.save_metrics(stats)
