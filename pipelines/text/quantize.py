"""The text model's quantize step: the best ONNX variant that meets the quality bar (the generic chooser).

:func:`choose` hands the exported model (TorchScript export, inputs
``input_ids`` / ``attention_mask`` / ``context``, outputs ``probabilities`` /
``embedding``) to :func:`kindml.bench.transformer.choose_onnx_variant`, which
builds and measures side by side:

- ``ort_fp32_all``: the exported graph (ONNX Runtime's own optimisations);
- ``ort_int8_dynamic``: ``quantize_dynamic`` of that graph;
- ``ort_fused_fp32``: ORT's transformer optimizer (Attention, SkipLayerNorm,
  BiasGelu, EmbedLayerNorm fused; the raw 2-D mask kept, so any padding works);
- ``ort_fused_int8_dynamic``: ``quantize_dynamic`` of the fused graph (QAttention);
- ``ort_fused_int8_static_qdq``: static QDQ of the fused graph, MatMul inputs
  only, the attention-mask path excluded, calibrated on the first
  :data:`CALIBRATION_ROWS` rows.

Quality, on the holdout rows the export stage passes: the loss is the
**macro-F1 drop** vs FP32 (must be within ``quantize.accuracy_budget``), and a
variant must also keep the **top intent** of at least :data:`MIN_AGREEMENT` of
the rows and an **embedding** cosine of at least :data:`MIN_EMBEDDING_COSINE`
to FP32 (the drift monitor projects the embedding). Every batch is cut to its
longest text (:func:`~kindml.bench.transformer.trim_padding`), as the
predictor pads it, so quality and timing run at batch-sized sequence lengths.
Timing: one text and a batch of 32, interleaved, one intra-op thread. The
fastest eligible variant that is at least 1.05x faster than FP32 wins, else
FP32. The chosen file is checked once more for both outputs and for two
different sequence lengths. ``quantization.json`` has the generic chooser's
shape (``chosen``, ``reason``, ``candidates`` with ``quality_loss``,
``quality``, ``timing``, ``speedup_geo_mean``, ...), plus ``checks``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kindml.bench.quantize import QUANTIZATION_FILE

BATCHES = (1, 32)
REPEATS = 7
MIN_BLOCK_MS = 20.0
MIN_SPEEDUP = 1.05
CALIBRATION_ROWS = 64
CALIBRATION_CHUNK = 16
MIN_AGREEMENT = 0.98
MIN_EMBEDDING_COSINE = 0.99
METRIC = "macro_f1_drop"
MASK = "attention_mask"
OUTPUTS = ("probabilities", "embedding")


def macro_f1(labels: np.ndarray, probabilities: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, np.asarray(probabilities).argmax(axis=1), average="macro", zero_division=0))


def figures(labels: np.ndarray) -> Any:
    """Quality figures of a variant's outputs ``[probabilities, embedding]`` vs FP32's, on the holdout rows."""
    from kindml.bench.quality import cosine_rows

    def compute(outs: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
        f1, f1_ref = macro_f1(labels, outs[0]), macro_f1(labels, ref[0])
        cos = cosine_rows(outs[1], ref[1])
        return {"macro_f1": round(f1, 6), "macro_f1_delta": round(f1 - f1_ref, 6),
                "agreement": round(float((outs[0].argmax(axis=1) == ref[0].argmax(axis=1)).mean()), 6),
                "max_abs_probability_error": round(float(np.abs(outs[0] - ref[0]).max()), 6),
                "embedding_cosine": round(float(cos.mean()), 6), "embedding_cosine_min": round(float(cos.min()), 6)}

    return compute


def check_chosen(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The served file: both outputs, the three inputs, and answers at two different sequence lengths."""
    import onnxruntime as ort

    from kindml.bench.transformer import trim_padding
    from kindml.errors import ExportError
    from kindml.model.export import run_onnx

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = sorted(i.name for i in sess.get_inputs()), [o.name for o in sess.get_outputs()]
    if tuple(outputs) != OUTPUTS or inputs != sorted(feeds):
        raise ExportError(f"the quantized model {path.name} has inputs {inputs} and outputs {outputs}, not {sorted(feeds)} and {list(OUTPUTS)}",
                          "This is a bug in the chooser; turn quantize.enabled off to serve the FP32 model.")
    lengths = np.asarray(feeds[MASK]).sum(axis=1)
    short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
    seen = []
    for rows in ([short], [short, long]):
        batch = trim_padding({k: np.asarray(v)[rows] for k, v in feeds.items()}, MASK)
        probs, emb = run_onnx(sess, batch)
        if probs.shape != (len(rows), probs.shape[1]) or emb.shape[0] != len(rows) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise ExportError(f"the quantized model {path.name} answers badly at sequence length {batch[MASK].shape[1]}", "Turn quantize.enabled off to serve the FP32 model.")
        seen.append(int(batch[MASK].shape[1]))
    return {"outputs": outputs, "inputs": inputs, "sequence_lengths": seen}


def choose(onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path, encoder: dict[str, int], *,
           threads: int = 1, batches: tuple[int, ...] = BATCHES, repeats: int = REPEATS, min_block_ms: float = MIN_BLOCK_MS) -> dict[str, Any]:
    """Choose among FP32, fused and INT8 variants of the text model; write ``out_dir/model.onnx`` and ``quantization.json``.

    ``feeds``/``labels``: the holdout rows (tokenised, padded to the longest; context); ``encoder``:
    ``{"num_heads": .., "hidden_size": ..}`` of the exported encoder (the kit's ``OnnxSpec.transformer``).
    """
    from kindml.bench.transformer import choose_onnx_variant, trim_padding
    from kindml.errors import ExportError

    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if n == 0 or any(len(v) != n for v in feeds.values()):
        raise ExportError(f"the quantize step needs as many labels as holdout rows ({n} labels, inputs of {sorted({len(v) for v in feeds.values()})} rows)",
                          "Pass the holdout rows' feeds and their labels.")
    take = lambda lo, hi: trim_padding({k: np.asarray(v)[lo:hi] for k, v in feeds.items()}, MASK)  # noqa: E731
    calib = [take(i, min(i + CALIBRATION_CHUNK, n)) for i in range(0, min(CALIBRATION_ROWS, n), CALIBRATION_CHUNK)]
    transformer = {**encoder, "mask_inputs": [MASK]}
    result = choose_onnx_variant(
        onnx_path,
        calib,
        feeds,
        lambda out, ref: macro_f1(labels, ref) - macro_f1(labels, out),
        budget,
        out_dir,
        transformer=transformer,
        threads=threads,
        batches=batches,
        repeats=repeats,
        min_block_ms=min_block_ms,
        min_speedup=MIN_SPEEDUP,
        metric=METRIC,
        prepare=lambda f: trim_padding(f, MASK),
        figures=figures(labels),
        requirements={"agreement": MIN_AGREEMENT, "embedding_cosine": MIN_EMBEDDING_COSINE},
    )
    result["checks"] = check_chosen(Path(result["onnx_path"]), feeds)
    result["quality_metric"] = f"macro-F1 drop on {n} holdout rows (budget {budget}); top-intent agreement >= {MIN_AGREEMENT}, embedding cosine >= {MIN_EMBEDDING_COSINE}"
    (Path(out_dir) / QUANTIZATION_FILE).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result
