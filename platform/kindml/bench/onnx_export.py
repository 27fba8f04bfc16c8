"""torch → ONNX for the benchmark models (the dynamo exporter, quietly)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kindml.errors import ExportError


@contextlib.contextmanager
def quiet_torch_export() -> Iterator[None]:
    """Silence the exporter's warnings and 'torchvision is not installed' log lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.setLevel(lvl)


def export_module(
    module: Any,
    example: tuple[Any, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: dict[str, Any],
    opset: int = 18,
) -> None:
    import onnx
    import torch

    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with quiet_torch_export():
        try:
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(
                f"torch.onnx.export of {path.parent.name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                "The exporter needs onnxscript; check the installed torch/onnxscript versions.",
            ) from exc
    onnx.checker.check_model(str(path))
