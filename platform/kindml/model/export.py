"""ONNX export of a model kit's module, ONNX Runtime sessions, and the parity check against PyTorch."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import ExportError
from kindml.model.kit import OnnxSpec

log = logging.getLogger(__name__)


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


def export_onnx(spec: OnnxSpec, path: Path, opset: int) -> None:
    """Export ``spec.module``: batch axis 0 of every input (and ``dynamic_axes``) dynamic.

    ``spec.exporter`` picks torch.export (``dynamo``) or the TorchScript exporter (``torchscript``).
    """
    import torch

    spec.module.eval()
    example = tuple(torch.from_numpy(np.ascontiguousarray(spec.example[name])) for name in spec.inputs)
    if spec.exporter == "torchscript":
        _export_torchscript(spec, example, path, opset)
        return
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    dims: dict[str, Any] = {}
    shapes: dict[str, dict[int, Any]] = {}
    for name in spec.inputs:
        axes = {0: batch}
        for axis, dim_name in (spec.dynamic_axes.get(name) or {}).items():
            if axis != 0:
                axes[axis] = dims.setdefault(dim_name, torch.export.Dim(dim_name, min=1, max=4096))
        shapes[name] = axes
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(spec.module, example, str(path), input_names=list(spec.inputs), output_names=list(spec.outputs),
                              dynamic_shapes=shapes, opset_version=opset, dynamo=True, external_data=False, verbose=False)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                              "Check the model definition; the exporter needs onnxscript installed.") from exc
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def _export_torchscript(spec: OnnxSpec, example: tuple[Any, ...], path: Path, opset: int) -> None:
    import torch

    axes: dict[str, dict[int, str]] = {}
    for name in spec.inputs:
        axes[name] = {0: "batch", **{int(k): v for k, v in (spec.dynamic_axes.get(name) or {}).items()}}
    for name in spec.outputs:
        axes[name] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad():
                torch.onnx.export(spec.module, example, str(path), input_names=list(spec.inputs), output_names=list(spec.outputs),
                                  dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export (TorchScript) failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                              "Check the model definition and the opset.") from exc
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def onnx_session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """All outputs of ``session`` for ``feeds`` (each input cast to the dtype the graph declares)."""
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(double)": np.float64,
             "tensor(bool)": np.bool_}
    inputs = {}
    for i in session.get_inputs():
        if i.name not in feeds:
            raise ExportError(f"the ONNX model needs input {i.name!r}; the kit produced {', '.join(feeds)}",
                              "The model kit's feeds() must return every input of its ONNX module.")
        inputs[i.name] = np.ascontiguousarray(feeds[i.name], dtype=types.get(i.type))
    return session.run(None, inputs)


def check_parity(spec: OnnxSpec, onnx_path: Path, feeds: Mapping[str, np.ndarray], tolerance: float, opset: int) -> ParityReport:
    """Compare the first output of the torch module and of ONNX Runtime on the same feeds."""
    import torch

    with torch.no_grad():
        ref = spec.module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in spec.inputs))
    ref = (ref[0] if isinstance(ref, tuple | list) else ref).numpy().astype(np.float64).reshape(-1)
    got = np.asarray(run_onnx(onnx_session(onnx_path), feeds)[0], dtype=np.float64).reshape(-1)
    err = np.abs(ref - got)
    return ParityReport(
        rows=int(len(next(iter(feeds.values())))),
        max_abs_error=float(err.max()) if len(err) else 0.0,
        mean_abs_error=float(err.mean()) if len(err) else 0.0,
        tolerance=tolerance,
        passed=bool(len(err) and err.max() <= tolerance),
        opset=opset,
        onnx_bytes=onnx_path.stat().st_size,
    )
