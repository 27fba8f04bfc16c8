"""Building the ONNX variants of a model and the sessions / timers that run them.

Recipes (the same for every model; the settings are recorded in the result):

- **preprocessing** for quantisation: ``quant_pre_process`` (symbolic shape
  inference, ORT basic optimisation, ONNX shape inference), as the ORT docs
  recommend; when symbolic shape inference cannot handle a graph it is
  retried without it (recorded in ``preprocess``);
- ``int8_dynamic``: ``quantize_dynamic``, weights S8 per-channel;
- ``int8_qdq``: ``quantize_static``, QDQ, S8 activations and weights
  (S8S8, ORT's recommended first choice), per-channel weights, MinMax
  calibration on real training samples;
- ``int8_qop``: as QDQ but QOperator format with U8 activations (U8S8, the
  x86 QOperator configuration; S8S8 QOperator is a known slow path) — a
  reference only;
- ``int8_qdq_symmetric``: QDQ with symmetric activations, for TensorRT's
  explicit INT8;
- ``fp16``: ``onnxruntime.transformers.float16.convert_float_to_float16``
  with FP32 inputs/outputs kept.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kindml.bench.catalog import CPU_EP, CUDA_EP, TRT_EP, VARIANTS, Variant
from kindml.bench.measure import Timer
from kindml.bench.models import ModelCase
from kindml.bench.providers import check_session_provider, session_providers
from kindml.errors import BenchmarkError

log = logging.getLogger(__name__)

RECIPES: dict[str, dict[str, Any]] = {
    "int8_dynamic": {"api": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True},
    "int8_qdq": {"api": "quantize_static", "format": "QDQ", "activation_type": "QInt8", "weight_type": "QInt8", "per_channel": True, "calibration": "MinMax"},
    "int8_qop": {"api": "quantize_static", "format": "QOperator", "activation_type": "QUInt8", "weight_type": "QInt8", "per_channel": True, "calibration": "MinMax"},
    "int8_qdq_symmetric": {"api": "quantize_static", "format": "QDQ", "activation_type": "QInt8", "weight_type": "QInt8", "per_channel": True, "calibration": "MinMax", "symmetric": True},
    "fp16": {"api": "convert_float_to_float16", "keep_io_types": True},
}


def calibration_reader(feeds: list[dict[str, np.ndarray]]) -> Any:
    """An ORT ``CalibrationDataReader`` over a list of feed dicts (ORT imported on use)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self, items: list[dict[str, np.ndarray]]) -> None:
            self.items = items
            self.it = iter(items)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

        def rewind(self) -> None:
            self.it = iter(self.items)

    return Reader(feeds)


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """The ORT quantiser logs through the root logger (one line per skipped LayerNorm axis...)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def preprocess_for_quantization(src: Path, dst: Path) -> str:
    """``quant_pre_process`` with a fallback; returns what was done."""
    from onnxruntime.quantization import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst))
        return "quant_pre_process (symbolic shape inference, optimisation, shape inference)"
    except Exception as exc:  # symbolic shape inference does not know every exported pattern
        log.info("symbolic shape inference failed on %s (%s); retrying without it", src.name, exc)
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return f"quant_pre_process without symbolic shape inference (it failed: {type(exc).__name__})"


@dataclass
class VariantFiles:
    """The ONNX file of each weights kind of one model, built on first use."""

    case: ModelCase
    work_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _pre: Path | None = None
    _pre_note: str = ""
    _recipes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _preprocessed(self) -> Path:
        if self._pre is None:
            dst = self.work_dir / "preprocessed.onnx"
            self._pre_note = preprocess_for_quantization(self.case.onnx_path, dst)
            self._pre = dst
        return self._pre

    def get(self, weights: str) -> Path:
        """The file for ``weights``; raises BenchmarkError (cached) when it cannot be built."""
        if weights in self.paths:
            return self.paths[weights]
        if weights in self.errors:
            raise BenchmarkError(self.errors[weights])
        t0 = time.perf_counter()
        try:
            with quiet_quantizer():
                path = self._build(weights)
        except BenchmarkError as exc:
            self.errors[weights] = exc.message
            raise
        except Exception as exc:
            self.errors[weights] = f"building {weights} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:240] if str(exc) else ''}"
            raise BenchmarkError(self.errors[weights]) from exc
        self.paths[weights] = path
        if weights != "fp32":
            self.notes[weights] = dict(RECIPES.get(weights, {})) | self._recipes.pop(weights, {}) | {"build_seconds": round(time.perf_counter() - t0, 2)}
            if weights.startswith("int8"):
                self.notes[weights]["preprocess"] = self._pre_note
            if weights in ("int8_qdq", "int8_qdq_symmetric", "ts_int8_qdq", "fused_int8_qdq"):
                self.notes[weights]["largest_activation_scales"] = largest_activation_scales(path)
        return path

    def _build_transformer(self, weights: str, out: Path) -> Path:
        """The TorchScript export, its fusion and their INT8 variants (kindml.bench.transformer)."""
        from kindml.bench import transformer as tf
        from kindml.bench.graph_rewrites import split_slow_cpu_kernels

        info = self.case.transformer
        if info is None:
            raise BenchmarkError(f"{weights}: {self.case.name} is not a transformer model")
        if weights == "ts_fp32":
            import torch

            example = {n: torch.from_numpy(v) for n, v in self.case.batch(2).items()}
            tf.export_for_fusion(self.case.net, example, out, output_names=self.case.output_names)
            self._recipes[weights] = {"api": "torch.onnx.export(dynamo=False)", "opset": tf.DEFAULT_OPSET, "dynamic_axes": "batch, sequence", "attention": "eager while exporting"}
            return out
        if weights == "fused_fp32":
            counts = tf.fuse(self.get("ts_fp32"), out, int(info["num_heads"]), int(info["hidden_size"]), info.get("model_type", "bert"))
            summary = tf.fusion_summary(counts)
            split = split_slow_cpu_kernels(out)
            self._recipes[weights] = {"api": "onnxruntime.transformers.optimizer.optimize_model", "model_type": info.get("model_type", "bert"), "attention_mask": "raw 2-D mask kept"} | summary | {"split_after_fusion": split}
            return out
        src = self.get("fused_fp32" if weights.startswith("fused_") else "ts_fp32")
        if weights.endswith("int8_dynamic"):
            self._recipes[weights] = tf.quantize_dynamic_model(src, out)
        elif weights == "fused_int8_smooth":
            from kindml.bench.smoothing import quantize_smooth_model

            self._recipes[weights] = quantize_smooth_model(src, out, self.case.calibration_chunks())
        else:
            self._recipes[weights] = tf.quantize_static_model(src, out, self.case.calibration_chunks(), info.get("mask_inputs"))
        return out

    def _build(self, weights: str) -> Path:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )

        self.work_dir.mkdir(parents=True, exist_ok=True)
        out = self.work_dir / f"model.{weights}.onnx"
        if weights == "fp32":
            return self.case.onnx_path
        if weights.startswith(("ts_", "fused_")):
            return self._build_transformer(weights, out)
        if weights == "fp16":
            import onnx
            from onnxruntime.transformers.float16 import convert_float_to_float16

            model = convert_float_to_float16(onnx.load(str(self.case.onnx_path)), keep_io_types=True)
            onnx.save(model, str(out))
            return out
        src = self._preprocessed()
        if weights == "int8_dynamic":
            quantize_dynamic(str(src), str(out), per_channel=True, weight_type=QuantType.QInt8)
            return out
        recipe = RECIPES[weights]
        extra = {"ActivationSymmetric": True, "WeightSymmetric": True} if recipe.get("symmetric") else None
        quantize_static(
            str(src),
            str(out),
            calibration_reader(self.case.calibration_chunks(limit=self.case.generic_calibration_rows)),
            quant_format=QuantFormat.QDQ if recipe["format"] == "QDQ" else QuantFormat.QOperator,
            per_channel=True,
            activation_type=getattr(QuantType, recipe["activation_type"]),
            weight_type=getattr(QuantType, recipe["weight_type"]),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options=extra,
        )
        return out


def largest_activation_scales(path: Path, top: int = 3) -> list[dict[str, Any]]:
    """The QuantizeLinear nodes with the largest per-tensor scales: a huge one (e.g. an
    additive attention mask of -3.4e38 calibrated by MinMax) means that tensor lost all resolution."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR:
            values[n.output[0]] = n.attribute[0].t
    found = []
    for n in model.graph.node:
        if n.op_type != "QuantizeLinear" or len(n.input) < 2 or n.input[1] not in values:
            continue
        scale = numpy_helper.to_array(values[n.input[1]])
        if scale.size == 1:
            found.append({"tensor": n.input[0], "scale": float(scale.reshape(-1)[0])})
    found.sort(key=lambda d: -d["scale"])
    return found[:top]


_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def trt_options(variant: Variant, cache_dir: Path) -> dict[str, Any]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    return {
        "device_id": 0,
        "trt_fp16_enable": True,
        "trt_int8_enable": variant.precision == "int8",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
    }


def make_session(path: Path, variant: Variant, provider: str, threads: int, cache_dir: Path | None = None) -> Any:
    """An InferenceSession for one variant; raises BenchmarkError when it does not run on ``provider``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[variant.opt_level or "all"])
    so.log_severity_level = 3
    opts = trt_options(variant, cache_dir or path.parent / "trt_cache") if provider == TRT_EP else None
    try:
        sess = ort.InferenceSession(str(path), sess_options=so, providers=session_providers(provider, opts))
    except Exception as exc:
        raise BenchmarkError(f"session for {variant.name} on {provider} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:240] if str(exc) else ''}") from exc
    problem = check_session_provider(provider, sess.get_providers())
    if problem:
        raise BenchmarkError(problem)
    return sess


def ort_predict(sess: Any) -> Any:
    out = sess.get_outputs()[0].name
    return lambda feeds: sess.run([out], feeds)[0]


def ort_timer(sess: Any, feeds: dict[str, np.ndarray], provider: str) -> Timer:
    if provider in (CUDA_EP, TRT_EP):
        import onnxruntime as ort

        binding = sess.io_binding()
        keep = []
        for name, arr in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
            keep.append(value)
            binding.bind_ortvalue_input(name, value)
        for o in sess.get_outputs():
            binding.bind_output(o.name, "cuda", 0)

        def run_bound() -> None:
            _ = keep
            sess.run_with_iobinding(binding)

        return Timer(run_bound, sync=binding.synchronize_outputs)
    if provider != CPU_EP:
        raise BenchmarkError(f"unknown provider {provider}")
    names = [o.name for o in sess.get_outputs()]
    return Timer(lambda: sess.run(names, feeds))


def torch_timer(case: ModelCase, feeds: dict[str, np.ndarray], device: str) -> Timer:
    import torch

    args = case.torch_args(feeds, device)
    net = case.net
    sync = torch.cuda.synchronize if device == "cuda" else None
    return Timer(lambda: net(*args), sync=sync)


def torch_size_bytes(case: ModelCase, work_dir: Path) -> int:
    import torch

    path = work_dir / "torch_state_dict.pt"
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.save(case.net.state_dict(), path)
    return path.stat().st_size


def variant(name: str) -> Variant:
    return VARIANTS[name]
