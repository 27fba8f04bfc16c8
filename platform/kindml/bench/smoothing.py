"""INT8 dynamic quantization of a fused transformer that keeps nearest neighbours: SmoothQuant + sensitivity.

``quantize_dynamic`` quantizes every MatMul's *input* with one scale per tensor,
computed at run time. In a post-LayerNorm encoder the LayerNorm outputs (the
input of the Q/K/V projection and of the first FFN MatMul) have a few outlier
channels 4-20x larger than the median channel, so one per-tensor scale leaves
the ordinary channels with a handful of levels. On all-MiniLM-L6-v2 that costs
a cosine of 0.9926 to FP32 and a nearest-neighbour agreement of ~0.90.

Two steps, both from calibration inputs only (never the evaluation set):

1. **SmoothQuant** (Xiao et al., 2023, arXiv:2211.10438): for every MatMul /
   Attention whose input is a LayerNorm output, per input channel ``j``,
   ``s_j = max|X_j|^alpha / max|W_j|^(1-alpha)``; the weight rows are scaled by
   ``s`` (then quantized per output channel as before) and a ``Mul`` by ``1/s``
   is inserted on the activation (the LayerNorm output also feeds the residual,
   so it cannot be folded into gamma/beta). The product is unchanged in FP32; the
   outliers move into the weights, where per-channel scales absorb them.
   ``alpha`` 0.75 (the default) was best of 0.5/0.75/0.85 on MiniLM. The second
   FFN MatMul (input: GELU output) is not smoothed: migrating its range into
   the weights made it worse (cosine 0.9877 at 0.5).
2. **Sensitivity-guided exclusion**: if the smoothed INT8 model is still more
   than ``target_loss`` (1 - cosine) from FP32 on the calibration inputs, each
   quantizable node is quantized *alone* and its loss measured; the most
   sensitive nodes stay FP32, in that order, until the sum of the remaining
   nodes' losses is within the target (at most ``max_excluded`` nodes).

Importing this module does no work (onnx and onnxruntime load on use).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kindml.errors import BenchmarkError

DEFAULT_ALPHA = 0.75
DEFAULT_TARGET_LOSS = 0.0025  # 1 - cosine on the calibration inputs
DEFAULT_MAX_EXCLUDED = 3
LAYERNORM_OPS = ("LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization")
QUANTIZED_OPS = ("MatMul", "Attention")


def _initializers(model: Any) -> dict[str, Any]:
    return {i.name: i for i in model.graph.initializer}


def smoothing_targets(model: Any) -> list[Any]:
    """MatMul (constant 2-D weight) and Attention nodes whose first input is a LayerNorm's first output."""
    inits = _initializers(model)
    ln_outputs = {n.output[0] for n in model.graph.node if n.op_type in LAYERNORM_OPS and n.output}
    out = []
    for n in model.graph.node:
        if n.op_type not in QUANTIZED_OPS or len(n.input) < 2 or n.input[0] not in ln_outputs:
            continue
        w = inits.get(n.input[1])
        if w is not None and len(w.dims) == 2:
            out.append(n)
    return out


def _session(model_bytes: bytes, optimized: bool = True) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimized:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def channel_absmax(model: Any, tensors: Sequence[str], calib_feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per last-axis channel, the largest |value| of each tensor over the calibration batches (FP32 run)."""
    import onnx
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = _session(probe.SerializeToString(), optimized=False)
    names = [o.name for o in sess.get_outputs()]
    amax: dict[str, np.ndarray] = {}
    for feeds in calib_feeds:
        got = dict(zip(names, sess.run(None, dict(feeds)), strict=True))
        for t in tensors:
            v = np.abs(np.asarray(got[t], dtype=np.float32))
            m = v.reshape(-1, v.shape[-1]).max(axis=0)
            amax[t] = m if t not in amax else np.maximum(amax[t], m)
    return amax


def smooth(model: Any, calib_feeds: Sequence[Mapping[str, np.ndarray]], alpha: float = DEFAULT_ALPHA) -> dict[str, Any]:
    """SmoothQuant the LayerNorm-fed MatMul / Attention inputs of ``model`` in place; returns what it did."""
    from onnx import helper, numpy_helper

    if not 0.0 < alpha < 1.0:
        raise BenchmarkError(f"SmoothQuant alpha {alpha} must be between 0 and 1", "Use 0.5-0.85; 0.75 is the default.")
    if not calib_feeds:
        raise BenchmarkError("SmoothQuant needs calibration inputs", "Pass a few batches of real inputs.")
    targets = smoothing_targets(model)
    if not targets:
        return {"alpha": alpha, "smoothed": 0}
    amax = channel_absmax(model, sorted({n.input[0] for n in targets}), calib_feeds)
    inits = _initializers(model)
    inserted: dict[str, Any] = {}
    spread_before: list[float] = []
    spread_after: list[float] = []
    for node in targets:
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        a = amax[node.input[0]].astype(np.float64)
        if a.shape[0] != w.shape[0]:
            raise BenchmarkError(f"SmoothQuant: {node.name} input has {a.shape[0]} channels, its weight {w.shape[0]} rows")
        w_max = np.abs(w).max(axis=1).astype(np.float64)
        s = np.clip(np.maximum(a, 1e-8) ** alpha / np.maximum(w_max, 1e-8) ** (1.0 - alpha), 1e-5, 1e5).astype(np.float32)
        base = node.name or node.output[0]
        new_w = f"{node.input[1]}/smoothed"
        model.graph.initializer.append(numpy_helper.from_array((w * s[:, None]).astype(np.float32), new_w))
        inv = f"{base}/smooth_inv_scale"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
        x_smoothed = f"{base}/smoothed_input"
        inserted[node.name] = helper.make_node("Mul", [node.input[0], inv], [x_smoothed], name=f"{base}/smooth")
        spread_before.append(float(a.max() / max(np.median(a), 1e-12)))
        a_after = a / s
        spread_after.append(float(a_after.max() / max(np.median(a_after), 1e-12)))
        node.input[0] = x_smoothed
        node.input[1] = new_w
    nodes = []
    for n in model.graph.node:
        if n.name in inserted:
            nodes.append(inserted[n.name])
        nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return {
        "alpha": alpha,
        "smoothed": len(targets),
        "ops": sorted({n.op_type for n in targets}),
        "channel_spread_median_before": round(float(np.median(spread_before)), 2),
        "channel_spread_median_after": round(float(np.median(spread_after)), 2),
    }


def _first_outputs(path: Path | bytes, calib_feeds: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    sess = _session(path if isinstance(path, bytes) else Path(path).read_bytes())
    return np.concatenate([np.asarray(sess.run(None, dict(f))[0]) for f in calib_feeds], axis=0)


def _quantize(pre: Path, dst: Path, **kw: Any) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=QuantType.QInt8, extra_options=extra, **kw)


def quantize_smooth_model(
    src: Path,
    dst: Path,
    calib_feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    alpha: float = DEFAULT_ALPHA,
    target_loss: float = DEFAULT_TARGET_LOSS,
    max_excluded: int = DEFAULT_MAX_EXCLUDED,
) -> dict[str, Any]:
    """SmoothQuant + INT8 dynamic + sensitivity-guided exclusion of ``src`` (a fused FP32 graph) → ``dst``.

    Returns the recipe: what was smoothed, the calibration loss before / after exclusion, every
    node's sensitivity when one was needed, the excluded nodes.
    """
    import onnx

    from kindml.bench.transformer import _preprocess, _quiet, cosine_loss

    if not calib_feeds:
        raise BenchmarkError("the smooth INT8 recipe needs calibration inputs", "Pass a few batches of real inputs (e.g. 64 tokenised sentences).")
    if not (target_loss >= 0 and max_excluded >= 0):
        raise BenchmarkError(f"target_loss {target_loss} and max_excluded {max_excluded} must be >= 0")
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    reference = _first_outputs(src, calib_feeds)
    smoothed = dst.with_suffix(".smoothed.onnx")
    pre = dst.with_suffix(".pre.onnx")
    probe = dst.with_suffix(".probe.onnx")
    try:
        with _quiet():
            model = onnx.load(str(src))
            smoothing = smooth(model, calib_feeds, alpha)
            onnx.save(model, str(smoothed))
            note = _preprocess(smoothed, pre)
            _quantize(pre, dst)
        loss_all = cosine_loss(_first_outputs(dst, calib_feeds), reference)
        recipe: dict[str, Any] = {
            "api": "SmoothQuant (kindml.bench.smoothing) + quantize_dynamic",
            "weight_type": "QInt8",
            "per_channel": True,
            "smoothing": smoothing,
            "target_loss": target_loss,
            "calibration_loss_all_quantized": round(loss_all, 6),
            "excluded": [],
            "preprocess": note,
        }
        if loss_all > target_loss and max_excluded > 0:
            pre_model = onnx.load(str(pre))
            weights = set(_initializers(pre_model))  # only nodes quantize_dynamic quantizes (constant weight)
            candidates = [n.name for n in pre_model.graph.node if n.op_type in QUANTIZED_OPS and n.name and len(n.input) > 1 and n.input[1] in weights]
            ranked: list[tuple[float, str]] = []
            with _quiet():
                for name in candidates:
                    _quantize(pre, probe, nodes_to_quantize=[name])
                    ranked.append((cosine_loss(_first_outputs(probe, calib_feeds), reference), name))
            ranked.sort(reverse=True)
            estimate = sum(loss for loss, _ in ranked)
            excluded: list[str] = []
            for loss, name in ranked:
                if estimate <= target_loss or len(excluded) >= max_excluded:
                    break
                excluded.append(name)
                estimate -= loss
            recipe["sensitivity"] = [{"node": n, "loss": round(v, 6)} for v, n in ranked]
            recipe["excluded"] = excluded
            if excluded:
                with _quiet():
                    _quantize(pre, dst, nodes_to_exclude=excluded)
            recipe["calibration_loss"] = round(cosine_loss(_first_outputs(dst, calib_feeds), reference), 6)
        else:
            recipe["calibration_loss"] = round(loss_all, 6)
    finally:
        for p in (smoothed, pre, probe):
            p.unlink(missing_ok=True)
    recipe["build_seconds"] = round(time.perf_counter() - t0, 2)
    return recipe
