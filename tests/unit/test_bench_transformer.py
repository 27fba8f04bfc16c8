"""The transformer family of the benchmark and the generic ONNX variant chooser, on small graphs and fixed figures.

A hand-built attention block (mask → additive bias → Add → Softmax, weight and
activation MatMuls) checks the mask-path analysis and the static recipe; the
chooser's decision, the fusion-statistics summary, the per-thread speed-ups and
the goals are checked on fixed numbers. No timing assertions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kindml.bench.catalog import (
    CPU_EP,
    SUITE_SETTINGS,
    VARIANTS,
    is_transformer_variant,
    variant_applies,
)
from kindml.errors import KindmlError

pytestmark = pytest.mark.unit

H = 8  # hidden size of the toy block


def _attention_block() -> Any:
    """x [B,S,H] float, attention_mask [B,S] int64 → out [B,S,H]; the HF-style additive mask path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (H, H)).astype(np.float32), "W")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    neg = numpy_helper.from_array(np.array(np.finfo(np.float32).min, np.float32), "neg")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"], name="shape_x"),
        helper.make_node("Unsqueeze", ["attention_mask", "axes"], ["m1"], name="mask_unsqueeze"),
        helper.make_node("Cast", ["m1"], ["m2"], to=TensorProto.FLOAT, name="mask_cast"),
        helper.make_node("Sub", ["one", "m2"], ["m3"], name="mask_invert"),
        helper.make_node("Mul", ["m3", "neg"], ["bias"], name="mask_scale"),
        helper.make_node("MatMul", ["x", "W"], ["q"], name="query"),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),  # unnamed on purpose
        helper.make_node("MatMul", ["q", "qt"], ["scores"], name="scores"),
        helper.make_node("Add", ["scores", "bias"], ["masked"], name="add_mask"),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["probs", "q"], ["ctx"], name="context"),
        helper.make_node("MatMul", ["ctx", "W"], ["out"], name="output_dense"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", H]), helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "s", H])],
        [w, one, neg, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def _feeds(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((n, 6), np.int64)
    for i in range(n):
        mask[i, : rng.integers(2, 7)] = 1  # right padding, as a tokenizer does
    return {"x": rng.normal(0, 1, (n, 6, H)).astype(np.float32), "attention_mask": mask}


def test_mask_path_and_activation_matmuls_of_an_attention_block() -> None:
    from kindml.bench.transformer import (
        activation_matmuls,
        mask_inputs_of,
        mask_path_nodes,
        name_nodes,
        static_exclusions,
    )

    model = _attention_block()
    assert mask_inputs_of(model) == ["attention_mask"]
    assert name_nodes(model) == 1 and all(n.name for n in model.graph.node)
    path = mask_path_nodes(model)
    assert path["mask_only"] == ["mask_unsqueeze", "mask_cast", "mask_invert", "mask_scale"]
    assert path["consumers"] == ["add_mask"]  # the softmax-bias Add: mask bias + attention scores
    assert path["after"] == ["softmax"]
    assert "query" not in path["mask_only"] + path["consumers"] + path["after"]
    assert activation_matmuls(model) == ["scores", "context"]
    excl = static_exclusions(model)
    assert set(excl["mask_path"]) == {"mask_unsqueeze", "mask_cast", "mask_invert", "mask_scale", "add_mask", "softmax"}
    # no mask input: nothing on the mask path
    assert mask_path_nodes(model, mask_inputs=[]) == {"mask_inputs": [], "mask_only": [], "consumers": [], "after": []}


def test_static_recipe_keeps_the_mask_path_and_matmul_outputs_in_fp32(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from kindml.bench.machine import read_cpuinfo
    from kindml.bench.transformer import quantize_static_model
    from kindml.bench.variants import largest_activation_scales

    src = tmp_path / "block.onnx"
    onnx.save(_attention_block(), str(src))
    dst = tmp_path / "block.qdq.onnx"
    recipe = quantize_static_model(src, dst, [_feeds(16, 1), _feeds(16, 2)])
    assert recipe["reduce_range"] is read_cpuinfo().u8s8_saturates  # 7-bit weights only where U8 x S8 saturates
    assert recipe["excluded_mask_path_nodes"] == 6 and recipe["excluded_activation_matmuls"] == 2
    assert recipe["calibration_samples"] == 32 and recipe["quantize_matmul_outputs"] is False
    q = onnx.load(str(dst))
    producers = {o: n for n in q.graph.node for o in n.output}
    consts = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    quantized = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized, "the weight MatMuls' inputs are quantized"
    assert not quantized & {"bias", "masked", "m2", "m3", "probs", "scores", "q", "qt"}  # mask path, act x act, outputs
    for n in q.graph.node:
        if n.op_type == "MatMul" and n.name in ("query", "output_dense"):
            assert all(producers[i].op_type == "DequantizeLinear" for i in n.input), n.name
            w_dq = producers[n.input[1]]
            assert consts[w_dq.input[1]].shape == (H,)  # per-channel weight scales
            # 7-bit weights exactly when reduce_range is on; 8-bit otherwise
            assert bool(np.abs(consts[w_dq.input[0]].astype(int)).max() <= 64) is recipe["reduce_range"], n.name
    assert all(s["scale"] < 1.0 for s in largest_activation_scales(dst))  # no mask-sized (1e36) scale
    feeds = _feeds(8, 3)
    fp32 = ort.InferenceSession(str(src), providers=[CPU_EP]).run(None, feeds)[0]
    int8 = ort.InferenceSession(str(dst), providers=[CPU_EP]).run(None, feeds)[0]
    cos = np.sum(fp32 * int8) / (np.linalg.norm(fp32) * np.linalg.norm(int8))
    assert cos > 0.99
    # the other setting, asked for explicitly, is honoured and recorded whatever this CPU is
    other = quantize_static_model(src, tmp_path / "other.qdq.onnx", [_feeds(16, 1), _feeds(16, 2)], reduce_range=not recipe["reduce_range"])
    assert other["reduce_range"] is not recipe["reduce_range"]
    w = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "other.qdq.onnx")).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert w and (max(int(np.abs(a.astype(int)).max()) for a in w) <= 64) is other["reduce_range"]


def test_fusion_summary_of_fused_and_unfused_graphs() -> None:
    from kindml.bench.transformer import fusion_summary

    fused = {"EmbedLayerNormalization": 1, "Attention": 6, "MultiHeadAttention": 0, "BiasGelu": 6, "SkipLayerNormalization": 12, "LayerNormalization": 0, "QOrderedAttention": 0}
    s = fusion_summary(fused)
    assert s == {"fused": {"Attention": 6, "SkipLayerNormalization": 12, "EmbedLayerNormalization": 1, "BiasGelu": 6}, "attention": 6, "fully_fused": True}
    dynamo = {"Attention": 0, "BiasGelu": 6, "LayerNormalization": 13, "SkipLayerNormalization": 0}  # the torch.export graph (stack-facts probe)
    s = fusion_summary(dynamo)
    assert s["attention"] == 0 and s["fully_fused"] is False and s["fused"] == {"BiasGelu": 6, "LayerNormalization": 13}
    assert fusion_summary({})["fully_fused"] is False


def _cand(loss: float | None, speed: float | None, error: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"quality_loss": loss, "speedup_geo_mean": speed}
    if error:
        c["error"] = error
    return c


def test_chooser_picks_the_fastest_variant_within_budget() -> None:
    from kindml.bench.transformer import pick

    cands = {
        "ort_fp32_all": _cand(0.0, 1.0),
        "ort_fused_fp32": _cand(0.0, 1.1),
        "ort_int8_dynamic": _cand(0.007, 2.2),
        "ort_fused_int8_dynamic": _cand(0.008, 2.4),
        "ort_fused_int8_static_qdq": _cand(0.03, 2.9),  # fastest but over budget
    }
    chosen, reason = pick(cands, budget=0.01, min_speedup=1.05)
    assert chosen == "ort_fused_int8_dynamic" and "2.4x" in reason
    assert cands["ort_fused_int8_static_qdq"]["within_budget"] is False and cands["ort_fused_int8_static_qdq"]["eligible"] is False
    assert cands["ort_fp32_all"]["eligible"] is True
    # a tight budget leaves only the lossless fused graph
    chosen, _ = pick(cands, budget=0.0, min_speedup=1.05)
    assert chosen == "ort_fused_fp32"
    # within budget but not faster enough than FP32 (noise), or failed to build: FP32
    cands = {"ort_fp32_all": _cand(0.0, 1.0), "ort_int8_dynamic": _cand(0.001, 1.03), "ort_fused_fp32": _cand(None, None, "no Attention fused")}
    chosen, reason = pick(cands, budget=0.01, min_speedup=1.05)
    assert chosen == "ort_fp32_all" and "no variant" in reason
    assert cands["ort_fused_fp32"]["eligible"] is False
    # a NaN loss is never within budget
    cands = {"ort_fp32_all": _cand(0.0, 1.0), "ort_int8_dynamic": _cand(float("nan"), 3.0)}
    assert pick(cands, budget=0.5, min_speedup=1.05)[0] == "ort_fp32_all"


def test_chooser_requirements_on_quality_figures() -> None:
    """Figures beyond the loss (top-class agreement, embedding cosine) can bar a variant that is within the loss budget."""
    from kindml.bench.transformer import pick

    def cand(loss: float, speed: float, agreement: float | None) -> dict[str, Any]:
        return _cand(loss, speed) | {"quality": {"loss": loss, **({} if agreement is None else {"agreement": agreement})}}

    cands = {"ort_fp32_all": cand(0.0, 1.0, 1.0), "ort_int8_dynamic": cand(0.002, 2.0, 0.99), "ort_fused_int8_dynamic": cand(0.001, 2.6, 0.95),
             "ort_fused_fp32": cand(0.0, 1.2, None)}
    chosen, _ = pick(cands, budget=0.01, min_speedup=1.05, requirements={"agreement": 0.98})
    assert chosen == "ort_int8_dynamic"
    assert cands["ort_fused_int8_dynamic"]["within_budget"] is False and cands["ort_fused_int8_dynamic"]["failed_requirements"] == ["agreement 0.95 < 0.98"]
    assert cands["ort_fused_fp32"]["eligible"] is False  # a missing figure never meets a requirement
    assert pick(cands, budget=0.01, min_speedup=1.05)[0] == "ort_fused_int8_dynamic"  # without requirements: the loss alone


def test_trim_padding_cuts_only_all_padding_positions() -> None:
    from kindml.bench.transformer import trim_padding

    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    feeds = {"input_ids": np.arange(10).reshape(2, 5), "attention_mask": mask, "context": np.ones((2, 5), np.float32)[:, :3]}
    out = trim_padding(feeds)
    assert out["input_ids"].shape == (2, 3) and out["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert out["context"].shape == (2, 3)  # not a sequence input (another width): untouched
    left = {"input_ids": np.arange(10).reshape(2, 5), "attention_mask": np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])}
    assert trim_padding(left)["input_ids"].shape == (2, 5)  # left padding: nothing at the end to cut
    wide_context = {"input_ids": np.zeros((2, 5), np.int64), "attention_mask": mask, "context": np.ones((2, 5), np.float32)}
    assert trim_padding(wide_context)["context"].shape == (2, 3)  # same width as the sequence: taken for one (documented)


def test_fusion_blockers_name_opset18_reductions(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kindml.bench.transformer import fusion_blockers

    def graph(opset: int) -> Path:
        axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
        node = helper.make_node("ReduceL2", ["x", "axes"], ["y"], keepdims=1) if opset >= 18 else helper.make_node("ReduceL2", ["x"], ["y"], axes=[1], keepdims=1)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 1])], [axes] if opset >= 18 else [])
        path = tmp_path / f"r{opset}.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), str(path))
        return path

    blockers = fusion_blockers(graph(18))
    assert len(blockers) == 1 and "ReduceL2 at opset 18" in blockers[0]
    assert fusion_blockers(graph(17)) == []


def test_chooser_end_to_end_on_a_small_block(tmp_path: Path) -> None:
    """The whole chooser on the toy block: prepare, figures from all outputs, requirements, the written files."""
    import json

    import onnx

    from kindml.bench.transformer import choose_onnx_variant, cosine_loss, trim_padding

    src = tmp_path / "block.onnx"
    onnx.save(_attention_block(), str(src))
    seen: list[int] = []

    def prepare(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = trim_padding(feeds)
        seen.append(out["attention_mask"].shape[1])
        return out

    def figures(outs: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
        assert len(outs) == len(ref) == 1
        return {"max_abs": float(np.abs(outs[0] - ref[0]).max())}

    short = _feeds(24, 2)
    short["attention_mask"][:, 4:] = 0  # every text at most 4 tokens, padded to 6
    res = choose_onnx_variant(src, [_feeds(16, 1)], short, cosine_loss, 0.5, tmp_path / "out", batches=(1, 4), repeats=5, min_block_ms=0.5,
                              prepare=prepare, figures=figures, requirements={"max_abs": -1.0}, metric="1-cosine")
    cands = {c["variant"]: c for c in res["candidates"]}
    assert set(cands) == {"ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq"}
    assert all("max_abs" in c["quality"] and "1-cosine" in c["quality"] for c in cands.values() if "error" not in c)
    assert cands["ort_fp32_all"]["quality"]["max_abs"] == 0.0
    assert seen and max(seen) <= 4  # every chunk and timing batch cut to its longest row (x along with the mask)
    assert res["chosen"] in cands and res["requirements"] == {"max_abs": -1.0}
    # an impossible requirement bars every variant: FP32 stays
    strict = choose_onnx_variant(src, [_feeds(16, 1)], _feeds(24, 2), cosine_loss, 0.5, tmp_path / "strict", batches=(1,), repeats=5, min_block_ms=0.5,
                                 figures=figures, requirements={"max_abs": 1.0e9})
    assert strict["chosen"] == "ort_fp32_all"
    assert all(c.get("failed_requirements") for c in strict["candidates"] if c["variant"] != "ort_fp32_all" and "error" not in c)
    assert json.loads((tmp_path / "strict" / "quantization.json").read_text())["chosen"] == "ort_fp32_all"


def test_chooser_refuses_a_variant_that_loses_an_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: a quantizer that drops a graph output never produces the served file."""
    import onnx

    from kindml.bench import transformer as tf

    model = _attention_block()
    model.graph.output.append(onnx.helper.make_tensor_value_info("q", onnx.TensorProto.FLOAT, ["b", "s", H]))  # a second output
    src = tmp_path / "two.onnx"
    onnx.save(model, str(src))

    def lossy(src_path: Path, dst: Path) -> dict[str, Any]:
        m = onnx.load(str(src_path))
        del m.graph.output[1]
        onnx.save(m, str(dst))
        return {"api": "drops an output"}

    monkeypatch.setattr(tf, "quantize_dynamic_model", lossy)
    res = tf.choose_onnx_variant(src, [_feeds(8, 1)], _feeds(8, 2), tf.cosine_loss, 1.0, tmp_path / "out", batches=(1,), repeats=5, min_block_ms=0.5)
    cands = {c["variant"]: c for c in res["candidates"]}
    assert "differ from the FP32 model" in cands["ort_int8_dynamic"]["error"] and cands["ort_int8_dynamic"]["eligible"] is False
    import onnxruntime as ort

    served = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=[CPU_EP])
    assert [o.name for o in served.get_outputs()] == ["out", "q"]


def test_chooser_input_errors(tmp_path: Path) -> None:
    import onnx

    from kindml.bench.transformer import choose_onnx_variant, cosine_loss

    src = tmp_path / "block.onnx"
    onnx.save(_attention_block(), str(src))
    feeds = _feeds(4, 0)
    bad = [
        dict(fp32_path=tmp_path / "missing.onnx"),
        dict(budget=-0.1),
        dict(budget=float("nan")),
        dict(calib_feeds=[]),
        dict(eval_feeds={"x": feeds["x"], "attention_mask": feeds["attention_mask"][:2]}),
        dict(transformer={"num_heads": 2}),
        dict(threads=0),
    ]
    for override in bad:
        kw: dict[str, Any] = dict(fp32_path=src, calib_feeds=[feeds], eval_feeds=feeds, quality_loss=cosine_loss, budget=0.01, out_dir=tmp_path / "out") | override
        with pytest.raises(KindmlError) as exc:
            choose_onnx_variant(**kw)
        assert exc.value.hint, override
    assert cosine_loss(np.ones((3, 4)), np.ones((3, 4))) == pytest.approx(0.0, abs=1e-12)
    assert cosine_loss(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)


def test_registry_tags_of_a_generic_choice() -> None:
    from kindml.bench.quantize import registry_tags

    result = {"chosen": "ort_fused_int8_dynamic", "accuracy_budget": 0.01, "metric": "1-cosine", "candidates": [{"variant": "ort_fused_int8_dynamic", "speedup_geo_mean": 2.3, "quality_loss": 0.008, "quality": {"1-cosine": 0.008}}]}
    tags = registry_tags(result)
    assert tags == {
        "kindml.quantization": "ort_fused_int8_dynamic",
        "kindml.quantization.accuracy_budget": "0.01",
        "kindml.quantization.speedup": "2.3",
        "kindml.quantization.metric": "1-cosine",
        "kindml.quantization.quality_loss": "0.008",
    }
    fraud = {"chosen": "ort_int8_dynamic", "accuracy_budget": 0.005, "candidates": [{"variant": "ort_int8_dynamic", "speedup_geo_mean": 1.2, "quality": {"roc_auc_delta": -0.0001}}]}
    assert registry_tags(fraud)["kindml.quantization.roc_auc_delta"] == "-0.0001" and "kindml.quantization.quality_loss" not in registry_tags(fraud)


def test_transformer_variants_run_only_on_minilm() -> None:
    fused = [v for v in VARIANTS if is_transformer_variant(v)]
    assert set(fused) == {"ort_ts_fp32", "ort_ts_int8_dynamic", "ort_ts_int8_static_qdq", "ort_fused_fp32", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq", "ort_fused_int8_smooth"}
    assert all(variant_applies(v, "minilm_l6") and not variant_applies(v, "digits_cnn") for v in fused)
    quick = SUITE_SETTINGS["quick"]
    assert "ort_fused_int8_static_qdq" in quick.variants_for("minilm_l6") and "ort_fp32_basic" not in quick.variants_for("minilm_l6")
    assert "ort_fused_fp32" not in quick.variants_for("fraud_mlp") and "ort_fp32_basic" in quick.variants_for("fraud_mlp")
    assert set(SUITE_SETTINGS["full"].variants_for("minilm_l6")) >= {*fused, "ort_fp32_basic", "ort_int8_static_qdq"}


def test_threads_parsing_and_validation() -> None:
    from kindml.bench.suite import BenchRequest, parse_threads, thread_counts, validate_request
    from kindml.errors import UsageError

    assert parse_threads(None) is None and parse_threads("2") == (2,) and parse_threads("1,2") == (1, 2) and parse_threads(3) == (3,)
    assert thread_counts(BenchRequest()) == (1,) and thread_counts(BenchRequest(threads=(1, 2))) == (1, 2)
    for bad in ("x", "", "1,a"):
        with pytest.raises(UsageError):
            parse_threads(bad)
    for threads in ((1, 1), (0, 2), ()):
        with pytest.raises(UsageError):
            validate_request(BenchRequest(threads=threads))
    validate_request(BenchRequest(threads=(1, 2)))


def _r(variant: str, batch: int, tput: float, threads: int, cos: float = 1.0, nn: float = 1.0, precision: str = "fp32") -> dict[str, Any]:
    provider = "torch-cpu" if variant == "torch_eager" else CPU_EP
    return {
        "model": "minilm_l6",
        "variant": variant,
        "provider": provider,
        "batch": batch,
        "threads": threads,
        "throughput_per_s": tput,
        "precision": precision,
        "quality": {"cosine_to_fp32": cos, "nn_agreement": nn},
    }


def test_speedups_and_goals_per_thread_count() -> None:
    from kindml.bench.report import evaluate_goals
    from kindml.bench.suite import fill_speedups

    recs = []
    for t, scale in ((1, 1.0), (2, 1.8)):
        recs += [
            _r("torch_eager", 32, 9.0 * scale, t),
            _r("ort_fp32_all", 32, 10.0 * scale, t),
            _r("ort_int8_dynamic", 32, 22.0 * scale, t, 0.9927, 0.93, "int8"),  # NN agreement under 0.95
            _r("ort_fused_int8_dynamic", 32, 26.0 * scale if t == 1 else 20.0 * scale, t, 0.9925, 0.96, "int8"),
            _r("ort_fused_int8_static_qdq", 32, 24.0 * scale, t, 0.9914, 0.95, "int8"),
            _r("ort_int8_static_qdq", 32, 21.0 * scale, t, 0.40, 0.5, "int8"),
        ]
    fill_speedups(recs)
    by = {(r["variant"], r["threads"]): r for r in recs}
    assert by[("ort_fused_int8_dynamic", 1)]["speedup_vs_fp32"] == 2.6
    assert by[("ort_fused_int8_dynamic", 2)]["speedup_vs_fp32"] == 2.0  # against FP32 at 2 threads, not at 1
    assert by[("ort_fp32_all", 2)]["speedup_vs_torch"] == pytest.approx(1.1111, abs=1e-4)
    doc = {"device": "cpu", "settings": {"threads": 1, "thread_counts": [1, 2]}, "results": recs}
    goals = {(g["goal"], g["threads"]): g for g in evaluate_goals(doc)}
    best = goals[("MiniLM best INT8 (cosine >= 0.99, NN agreement >= 0.95) vs ORT FP32 (unfused)", 1)]
    assert best["met"] is True and best["measured"] == 2.6 and "ort_fused_int8_dynamic" in best["detail"]
    best2 = goals[("MiniLM best INT8 (cosine >= 0.99, NN agreement >= 0.95) vs ORT FP32 (unfused)", 2)]
    assert best2["met"] is False and best2["measured"] == 2.4 and "ort_fused_int8_static_qdq" in best2["detail"]
    static = goals[("MiniLM static INT8 QDQ cosine similarity to FP32 (best static recipe)", 1)]
    assert static["met"] is True and static["measured"] == 0.9914 and "ort_int8_static_qdq 0.4" in static["detail"]
    assert ("MiniLM static INT8 QDQ cosine similarity to FP32 (best static recipe)", 2) not in goals  # a quality goal: once
    vs_torch = goals[("MiniLM best ORT variant (cosine >= 0.99) vs PyTorch eager", 1)]
    assert vs_torch["measured"] == pytest.approx(2.8889, abs=1e-4) and vs_torch["met"] is False
