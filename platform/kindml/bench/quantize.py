"""The export stage's optional quantize step for a tabular binary classifier: the fastest variant within an AUC budget.

(For a model with several inputs or a transformer, see the generic
:func:`kindml.bench.transformer.choose_onnx_variant`; it writes the same
``quantization.json`` shape, so :func:`registry_tags` serves both.)

:func:`choose_variant` builds the INT8 dynamic and INT8 static QDQ variants of
an exported FP32 ONNX model (same recipes as ``kindml bench``), checks each
one's ROC AUC on held-out rows against the FP32 model, times FP32 and both
INT8 variants with the bench harness (interleaved, quick settings) and keeps
the fastest INT8 variant whose AUC drop is within ``accuracy_budget`` and
whose speed-up is at least ``min_speedup`` (so timing noise cannot pick a
variant that is not really faster) — otherwise FP32. It writes the chosen
``model.onnx`` (metadata of the original kept, plus ``kindml.quantization``)
and ``quantization.json`` with every candidate's figures into ``out_dir``
and returns the same dict.

It serves a model kit with one float input matrix and a sigmoid score (the
default :meth:`kindml.model.kit.ModelKit.quantize`). Typical wiring (export
stage): calibration and evaluation rows through the kit's preprocessing,
labels from the holdout; register ``out_dir/model.onnx`` and attach
``quantization.json`` to the model version.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from kindml.bench.catalog import CPU_EP, VARIANTS
from kindml.errors import BenchmarkError

CANDIDATES: tuple[str, ...] = ("ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq")
DEFAULT_BATCHES: tuple[int, ...] = (1, 32)
QUANTIZATION_FILE = "quantization.json"


def _geo_mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return round(float(math.exp(sum(math.log(v) for v in vals) / len(vals))), 4) if vals else None


def choose_variant(
    onnx_path: Path,
    calibration_x: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    accuracy_budget: float,
    out_dir: Path,
    *,
    threads: int = 1,
    batches: tuple[int, ...] = DEFAULT_BATCHES,
    repeats: int = 5,
    min_block_ms: float = 20.0,
    min_speedup: float = 1.05,
) -> dict[str, Any]:
    """Build, check and time the INT8 variants of ``onnx_path``; write and return the choice.

    ``calibration_x``: float32 rows for static calibration (training data, a few hundred);
    ``eval_x`` / ``eval_y``: held-out rows and 0/1 labels (both classes present);
    ``accuracy_budget``: the largest allowed ROC AUC drop vs FP32 (e.g. 0.005).
    """
    import onnx
    import onnxruntime as ort

    from kindml.bench import quality as q
    from kindml.bench.machine import read_cpuinfo
    from kindml.bench.measure import measure_interleaved, speedup
    from kindml.bench.models import ModelCase
    from kindml.bench.variants import VariantFiles, make_session, ort_predict, ort_timer

    onnx_path = Path(onnx_path)
    out_dir = Path(out_dir)
    if not onnx_path.is_file():
        raise BenchmarkError(f"no ONNX model at {onnx_path}", "Run the export stage first.")
    if accuracy_budget < 0:
        raise BenchmarkError(f"accuracy budget {accuracy_budget} is negative", "Use the largest allowed AUC drop, e.g. 0.005.")
    eval_y = np.asarray(eval_y).reshape(-1)
    if len(np.unique(eval_y)) < 2:
        raise BenchmarkError("the evaluation labels have a single class: ROC AUC is undefined", "Use more held-out rows.")
    if len(calibration_x) == 0 or len(eval_x) != len(eval_y):
        raise BenchmarkError("need calibration rows and as many evaluation rows as labels", "Pass training rows for calibration and the holdout with its labels.")
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "quantize-work"
    input_name = ort.InferenceSession(str(onnx_path), providers=[CPU_EP]).get_inputs()[0].name
    case = ModelCase(
        name="binary_tabular",
        onnx_path=onnx_path,
        net=None,
        input_names=(input_name,),
        eval_inputs={input_name: np.ascontiguousarray(eval_x, dtype=np.float32)},
        calibration={input_name: np.ascontiguousarray(calibration_x, dtype=np.float32)},
        score=lambda out, ref: q.binary_quality(eval_y, out.reshape(-1), ref.reshape(-1)),
    )
    files = VariantFiles(case, work)
    sessions: dict[str, Any] = {}
    candidates: dict[str, dict[str, Any]] = {}
    try:
        for name in CANDIDATES:
            v = VARIANTS[name]
            try:
                path = files.get(v.weights)
                sessions[name] = make_session(path, v, CPU_EP, threads)
            except BenchmarkError as exc:
                candidates[name] = {"variant": name, "error": exc.message, "eligible": False}
                continue
            candidates[name] = {"variant": name, "path": path, "size_bytes": path.stat().st_size}
        if "ort_fp32_all" not in sessions:
            raise BenchmarkError(f"the FP32 model {onnx_path} does not load in ONNX Runtime: {candidates['ort_fp32_all'].get('error')}", "Check the export stage's output.")
        case.reference = case.run_eval(ort_predict(sessions["ort_fp32_all"]))
        for name, sess in sessions.items():
            candidates[name]["quality"] = case.quality(case.run_eval(ort_predict(sess)))
        timing: dict[str, dict[int, Any]] = {name: {} for name in sessions}
        for batch in batches:
            feeds = case.batch(batch)
            stats = measure_interleaved({n: ort_timer(s, feeds, CPU_EP) for n, s in sessions.items()}, batch, 2, repeats, min_block_ms, 5_000, 0.10)
            for name, st in stats.items():
                timing[name][batch] = st
    finally:
        sessions.clear()
    for name, per_batch in timing.items():
        c = candidates[name]
        c["timing"] = {str(b): {"p50_ms": st.p50_ms, "p99_ms": st.p99_ms, "throughput_per_s": st.throughput_per_s, "cv": st.cv, "noisy": st.noisy} for b, st in per_batch.items()}
        c["speedup_vs_fp32"] = {str(b): speedup(st.throughput_per_s, timing["ort_fp32_all"][b].throughput_per_s) for b, st in per_batch.items()}
        c["speedup_geo_mean"] = _geo_mean(list(c["speedup_vs_fp32"].values()))
        delta = c["quality"]["roc_auc_delta"]
        c["within_budget"] = bool(delta >= -accuracy_budget)
        c["eligible"] = name == "ort_fp32_all" or (c["within_budget"] and (c["speedup_geo_mean"] or 0.0) >= min_speedup)
    eligible = [c for n, c in candidates.items() if n != "ort_fp32_all" and c.get("eligible")]
    chosen = max(eligible, key=lambda c: c["speedup_geo_mean"]) if eligible else candidates["ort_fp32_all"]
    if chosen["variant"] == "ort_fp32_all":
        reason = f"no INT8 variant is both within the AUC budget and at least {min_speedup:.2f}x faster"
    else:
        reason = f"fastest variant within the AUC budget ({chosen['speedup_geo_mean']}x geometric-mean speed-up over batches {list(batches)})"
    target = out_dir / "model.onnx"
    original = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in original.metadata_props}
    if chosen["variant"] == "ort_fp32_all":
        if target.resolve() != onnx_path.resolve():
            shutil.copy2(onnx_path, target)
    else:
        if target.resolve() == onnx_path.resolve():
            shutil.copy2(onnx_path, out_dir / "model.fp32.onnx")
        model = onnx.load(str(chosen["path"]))
        onnx.helper.set_model_props(model, props | {"kindml.quantization": chosen["variant"]})
        onnx.save(model, str(target))
    cpu = read_cpuinfo()
    result: dict[str, Any] = {
        "chosen": chosen["variant"],
        "reason": reason,
        "onnx_path": str(target),
        "source_onnx": str(onnx_path),
        "accuracy_budget": accuracy_budget,
        "metric": "roc_auc",
        "min_speedup": min_speedup,
        "candidates": [{k: (str(v) if isinstance(v, Path) else v) for k, v in c.items() if k != "path"} for c in candidates.values()],
        "recipes": files.notes,
        "settings": {"batches": list(batches), "repeats": repeats, "threads": threads, "min_block_ms": min_block_ms, "calibration_rows": int(len(calibration_x)), "eval_rows": int(len(eval_y))},
        "machine": {"cpu_model": cpu.model, "cpu_flags": list(cpu.flags), "isa": cpu.isa, "onnxruntime_version": ort.__version__},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out_dir / QUANTIZATION_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return result


def registry_tags(result: dict[str, Any]) -> dict[str, str]:
    """Flat string tags for an MLflow model version (the full figures go in quantization.json)."""
    chosen = next((c for c in result["candidates"] if c["variant"] == result["chosen"]), {})
    tags = {
        "kindml.quantization": result["chosen"],
        "kindml.quantization.accuracy_budget": str(result["accuracy_budget"]),
    }
    if chosen.get("speedup_geo_mean") is not None:
        tags["kindml.quantization.speedup"] = str(chosen["speedup_geo_mean"])
    quality = chosen.get("quality") or {}
    if "roc_auc_delta" in quality:
        tags["kindml.quantization.roc_auc_delta"] = str(quality["roc_auc_delta"])
    if chosen.get("quality_loss") is not None:  # the generic chooser (kindml.bench.transformer.choose_onnx_variant)
        tags["kindml.quantization.metric"] = str(result.get("metric", "quality_loss"))
        tags["kindml.quantization.quality_loss"] = str(chosen["quality_loss"])
    return tags
