"""Stage ``export``: ONNX with the preprocessing spec inside, checked for parity with PyTorch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.config import KindmlConfig
from kindml.errors import ExportError
from kindml.model.export import check_parity, export_onnx
from kindml.model.net import load_model
from kindml.model.preprocess import Assembler, PreprocessingSpec, frame_columns

PARITY_ROWS = 2_000


def run(cfg: KindmlConfig, model_dir: Path, holdout_dir: Path, out_dir: Path) -> dict[str, Any]:
    import onnx

    spec = PreprocessingSpec.load(model_dir / "preprocessing.json")
    net = load_model(model_dir / "model.pt")
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    export_onnx(net, len(spec.inputs), onnx_path, cfg.export.opset)
    # the preprocessing spec also travels inside the ONNX file (metadata_props)
    model = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(model, {"kindml.preprocessing": spec.to_json(), "kindml.inputs": ",".join(spec.inputs)})
    onnx.save(model, str(onnx_path))
    shutil.copy2(model_dir / "preprocessing.json", out_dir / "preprocessing.json")
    holdout = pd.read_parquet(holdout_dir / "holdout.parquet").head(PARITY_ROWS)
    x = Assembler(spec).transform(frame_columns(holdout))
    parity = check_parity(net, onnx_path, x, cfg.export.parity_tolerance, cfg.export.opset)
    (out_dir / "parity.json").write_text(json.dumps(parity.to_dict(), indent=2), encoding="utf-8")
    if not parity.passed:
        raise ExportError(
            f"ONNX parity check failed: max abs error {parity.max_abs_error:.3g} > tolerance {parity.tolerance:.3g} on {parity.rows} rows",
            "Raise export.parity_tolerance only if the difference is understood; otherwise check the exporter opset.",
        )
    out: dict[str, Any] = {"onnx_path": str(onnx_path), "parity": parity.to_dict()}
    if cfg.quantize.enabled:
        out["quantization"] = quantize_step(cfg, onnx_path, x, holdout["is_fraud"].to_numpy(), out_dir)
    return out


def quantize_step(cfg: KindmlConfig, onnx_path: Path, x: Any, y: Any, out_dir: Path) -> dict[str, Any]:
    """Optional: INT8 variants timed side by side; the fastest within the AUC budget becomes the served model.onnx.

    Calibration rows are the first 512 holdout rows (activation ranges only); the
    AUC budget is checked on all parity rows. The FP32 file stays as model.fp32.onnx
    and quantization.json (all candidates' figures) goes to the registry with the version.
    """
    from kindml.bench.quantize import choose_variant

    result = choose_variant(onnx_path, x[:512], x, y, cfg.quantize.accuracy_budget, out_dir / "quantized")
    shutil.copy2(out_dir / "quantized" / "quantization.json", out_dir / "quantization.json")
    if result["chosen"] != "ort_fp32_all":
        shutil.copy2(onnx_path, out_dir / "model.fp32.onnx")
        shutil.copy2(out_dir / "quantized" / "model.onnx", onnx_path)
    return {"chosen": result["chosen"], "reason": result["reason"]}
