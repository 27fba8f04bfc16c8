"""Graph rewrites for ORT's CPU kernels and the SmoothQuant INT8 recipe, on small hand-built graphs.

- splitting ``SkipLayerNormalization`` / ``BiasGelu`` keeps the outputs, and ORT's level-``all``
  session optimisations do not fuse the split nodes back into ``SkipLayerNormalization`` (the
  speed-up would silently vanish with an ORT that does: this test would say so);
- SmoothQuant leaves the FP32 function unchanged, moves a LayerNorm output's outlier channel into
  the weights, and the sensitivity step excludes the node it ranks first.

No timing assertions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kindml.errors import KindmlError

pytestmark = pytest.mark.unit

H = 16
MS = "com.microsoft"


def _run(model: Any, feeds: dict[str, np.ndarray], optimized_path: Path | None = None) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _encoder_block(opset: int = 17) -> Any:
    """x → MatMul(+bias via SkipLayerNorm) + residual → LN; → MatMul → BiasGelu → MatMul: a BERT layer's shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (H, H)).astype(np.float32), "W_o"),
        numpy_helper.from_array(rng.normal(0, 0.1, (H,)).astype(np.float32), "b_o"),
        numpy_helper.from_array(rng.normal(1, 0.1, (H,)).astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.normal(0, 0.1, (H,)).astype(np.float32), "beta"),
        numpy_helper.from_array(rng.normal(0, 0.3, (H, 4 * H)).astype(np.float32), "W_1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (4 * H,)).astype(np.float32), "b_1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (4 * H, H)).astype(np.float32), "W_2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W_o"], ["attn_out"], name="out_proj"),
        helper.make_node("SkipLayerNormalization", ["attn_out", "x", "gamma", "beta", "b_o"], ["h"], name="sln", domain=MS, epsilon=1e-12),
        helper.make_node("MatMul", ["h", "W_1"], ["f1"], name="ffn1"),
        helper.make_node("BiasGelu", ["f1", "b_1"], ["g"], name="gelu", domain=MS),
        helper.make_node("MatMul", ["g", "W_2"], ["y"], name="ffn2"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _x(rows: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).normal(0, 1, (rows, 5, H)).astype(np.float32)}


def test_split_keeps_outputs_and_ort_does_not_fuse_it_back(tmp_path: Path) -> None:
    import onnx

    from kindml.bench.graph_rewrites import split_slow_cpu_kernels

    model = _encoder_block()
    onnx.save(model, str(tmp_path / "fused.onnx"))
    ref = _run(model, _x())
    counts = split_slow_cpu_kernels(tmp_path / "fused.onnx", tmp_path / "split.onnx")
    assert counts["SkipLayerNormalization"] == 1 and counts["BiasGelu"] == 1
    split = onnx.load(str(tmp_path / "split.onnx"))
    ops = [n.op_type for n in split.graph.node]
    assert "SkipLayerNormalization" not in ops and "BiasGelu" not in ops
    assert ops.count("LayerNormalization") == 1 and "Gelu" in ops
    np.testing.assert_allclose(_run(split, _x(), tmp_path / "optimized.onnx"), ref, rtol=1e-4, atol=1e-5)
    after_ort = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert "SkipLayerNormalization" not in after_ort, f"ONNX Runtime fused the split LayerNorm back: {after_ort}"


def test_split_needs_opset_17_and_says_so(tmp_path: Path) -> None:
    import onnx

    from kindml.bench.graph_rewrites import split_slow_cpu_kernels

    onnx.save(_encoder_block(opset=16), str(tmp_path / "old.onnx"))
    counts = split_slow_cpu_kernels(tmp_path / "old.onnx")
    assert counts["SkipLayerNormalization"] == 0 and "opset 16" in counts["note"]
    assert counts["BiasGelu"] == 1  # Gelu is a contrib op: no opset needed
    with pytest.raises(KindmlError, match="no ONNX model"):
        split_slow_cpu_kernels(tmp_path / "missing.onnx")


def _ln_block() -> Any:
    """x → LayerNormalization → MatMul (W) → y, plus a MatMul fed by the raw input (not a smoothing target)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    gamma = np.ones(H, np.float32)
    gamma[3] = 25.0  # an outlier channel, as LayerNorm outputs of BERT-style encoders have
    inits = [
        numpy_helper.from_array(gamma, "gamma"),
        numpy_helper.from_array(np.zeros(H, np.float32), "beta"),
        numpy_helper.from_array(rng.normal(0, 0.3, (H, H)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(0, 0.3, (H, H)).astype(np.float32), "V"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], name="ln", axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["h", "W"], ["hw"], name="after_ln"),
        helper.make_node("MatMul", ["x", "V"], ["xv"], name="raw_input"),
        helper.make_node("Add", ["hw", "xv"], ["y"], name="sum"),
    ]
    graph = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", H])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_smoothing_keeps_the_fp32_function_and_flattens_the_outlier_channel() -> None:
    from kindml.bench.smoothing import smooth, smoothing_targets

    model = _ln_block()
    assert [n.name for n in smoothing_targets(model)] == ["after_ln"]  # the raw-input MatMul is left alone
    ref = _run(model, _x())
    calib = [_x(8, seed=s) for s in (3, 4)]
    done = smooth(model, calib, alpha=0.75)
    assert done["smoothed"] == 1 and done["ops"] == ["MatMul"]
    assert done["channel_spread_median_after"] < done["channel_spread_median_before"] / 3
    ops = [n.op_type for n in model.graph.node]
    assert ops.index("Mul") < ops.index("MatMul")  # the 1/s Mul sits on the MatMul's input
    np.testing.assert_allclose(_run(model, _x()), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(KindmlError, match="alpha"):
        smooth(_ln_block(), calib, alpha=1.5)
    with pytest.raises(KindmlError, match="calibration"):
        smooth(_ln_block(), [], alpha=0.5)


def test_smooth_int8_excludes_the_node_it_ranks_most_sensitive(tmp_path: Path) -> None:
    import onnx

    from kindml.bench.smoothing import quantize_smooth_model
    from kindml.bench.transformer import cosine_loss

    onnx.save(_encoder_block(), str(tmp_path / "fp32.onnx"))
    calib = [_x(8, seed=s) for s in (5, 6)]
    loose = quantize_smooth_model(tmp_path / "fp32.onnx", tmp_path / "loose.onnx", calib, target_loss=1.0)
    assert loose["excluded"] == [] and "sensitivity" not in loose  # already within the target: no ranking
    strict = quantize_smooth_model(tmp_path / "fp32.onnx", tmp_path / "strict.onnx", calib, target_loss=0.0, max_excluded=1)
    ranked = strict["sensitivity"]
    assert len(ranked) == 3 and ranked == sorted(ranked, key=lambda r: -r["loss"])
    assert strict["excluded"] == [ranked[0]["node"]]
    assert strict["calibration_loss"] <= strict["calibration_loss_all_quantized"] + 1e-9
    quantized = onnx.load(str(tmp_path / "strict.onnx"))
    assert any(n.op_type == "MatMul" for n in quantized.graph.node)  # the excluded one stays FP32
    assert cosine_loss(_run(quantized, _x()), _run(_encoder_block(), _x())) < 0.05
    with pytest.raises(KindmlError, match="calibration"):
        quantize_smooth_model(tmp_path / "fp32.onnx", tmp_path / "x.onnx", [])
