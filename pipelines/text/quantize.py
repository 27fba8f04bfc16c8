"""The text model's quantize step: INT8 dynamic next to FP32, timed side by side, kept if it is faster within the budget.

Candidates: ``ort_fp32_all`` (the exported graph, ORT_ENABLE_ALL) and
``ort_int8_dynamic`` (onnxruntime.quantization.quantize_dynamic: INT8 weights of
the MatMul / Gemm nodes, activations quantised at run time — the recipe that
suits a transformer on CPU). Quality: macro-F1 on the holdout rows the export
stage passes, and agreement of the top intent with FP32; the quality loss is
the macro-F1 drop. Timing: one text (what the predictor serves) and a batch of
32, interleaved repeats, median per call.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from kindml.bench.quantize import QUANTIZATION_FILE

MIN_SPEEDUP = 1.05
BATCHES = (1, 32)
REPEATS = 15


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _slice(feeds: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    out = {k: v[:n] for k, v in feeds.items()}
    if "attention_mask" in out:  # trim padding to the longest text of the slice, as the predictor does
        width = int(out["attention_mask"].sum(axis=1).max())
        out["input_ids"], out["attention_mask"] = out["input_ids"][:, :width], out["attention_mask"][:, :width]
    return out


def choose(kit: Any, onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sklearn.metrics import f1_score

    from kindml.model.export import run_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"ort_fp32_all": onnx_path, "ort_int8_dynamic": out_dir / "model.int8_dynamic.onnx"}
    quantize_dynamic(str(onnx_path), str(paths["ort_int8_dynamic"]), weight_type=QuantType.QInt8, per_channel=True)
    sessions = {name: _session(p) for name, p in paths.items()}
    probs = {name: kit.probabilities(run_onnx(s, feeds)) for name, s in sessions.items()}
    pred = {name: p.argmax(axis=1) for name, p in probs.items()}
    f1 = {name: float(f1_score(labels, pred[name], average="macro", zero_division=0)) for name in paths}
    timings: dict[str, dict[int, list[float]]] = {name: {b: [] for b in BATCHES} for name in paths}
    for _ in range(REPEATS):  # interleaved: both variants see the same machine load
        for b in BATCHES:
            sl = _slice(feeds, b)
            for name, s in sessions.items():
                t0 = time.perf_counter()
                run_onnx(s, sl)
                timings[name][b].append((time.perf_counter() - t0) * 1000)
    p50 = {name: {str(b): round(float(np.median(v)), 3) for b, v in t.items()} for name, t in timings.items()}
    candidates = []
    for name in paths:
        speedups = [p50["ort_fp32_all"][str(b)] / p50[name][str(b)] for b in BATCHES]
        candidates.append({
            "variant": name, "path": str(paths[name]), "p50_ms": p50[name], "bytes": paths[name].stat().st_size,
            "speedup_geo_mean": round(float(np.exp(np.mean(np.log(speedups)))), 4),
            "quality": {"macro_f1": round(f1[name], 5), "macro_f1_delta": round(f1[name] - f1["ort_fp32_all"], 5),
                        "agreement": round(float((pred[name] == pred["ort_fp32_all"]).mean()), 5),
                        "max_abs_probability_error": round(float(np.abs(probs[name] - probs["ort_fp32_all"]).max()), 5)},
        })
    int8 = candidates[1]
    ok_quality = -int8["quality"]["macro_f1_delta"] <= budget
    ok_speed = int8["speedup_geo_mean"] >= MIN_SPEEDUP
    chosen = "ort_int8_dynamic" if ok_quality and ok_speed else "ort_fp32_all"
    reason = (f"INT8 dynamic is {int8['speedup_geo_mean']}x FP32 (batch 1 and 32) with a macro-F1 change of "
              f"{int8['quality']['macro_f1_delta']:+.4f} (budget {budget})" + ("" if chosen != "ort_fp32_all" else
              ": kept FP32 (" + ("quality" if not ok_quality else f"speed-up below {MIN_SPEEDUP}x") + ")"))
    result = {"chosen": chosen, "reason": reason, "accuracy_budget": budget, "quality_metric": "macro_f1 on holdout rows",
              "rows": int(len(labels)), "batches": list(BATCHES), "threads": 1, "candidates": candidates}
    shutil.copy2(paths[chosen], out_dir / "model.onnx")
    (out_dir / QUANTIZATION_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
