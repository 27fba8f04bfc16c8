"""ONNX export with a parity check against PyTorch."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import ExportError

log = logging.getLogger(__name__)
INPUT_NAME = "features"
OUTPUT_NAME = "fraud_probability"


@dataclass
class ParityReport:
    rows: int
    max_abs_error: float
    mean_abs_error: float
    tolerance: float
    passed: bool
    opset: int
    onnx_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(model: Any, n_inputs: int, path: Path, opset: int) -> None:
    """Export with a dynamic batch axis (input ``features`` float32[N, n_inputs])."""
    import torch

    model.eval()
    example = torch.zeros(2, n_inputs, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=1_000_000)}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", "Check the model definition; the exporter needs onnxscript installed.") from exc
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def onnx_session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_predict(session: Any, x: np.ndarray) -> np.ndarray:
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0].reshape(-1)


def check_parity(model: Any, onnx_path: Path, x: np.ndarray, tolerance: float, opset: int) -> ParityReport:
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy().reshape(-1)
    got = onnx_predict(onnx_session(onnx_path), x)
    err = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    report = ParityReport(
        rows=int(len(x)),
        max_abs_error=float(err.max()) if len(err) else 0.0,
        mean_abs_error=float(err.mean()) if len(err) else 0.0,
        tolerance=tolerance,
        passed=bool(len(err) and err.max() <= tolerance),
        opset=opset,
        onnx_bytes=onnx_path.stat().st_size,
    )
    return report
