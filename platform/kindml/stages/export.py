"""Stage ``export``: the servable bundle of a trained model.

ONNX export of the kit's module (dynamic batch), the kit's preprocessing next
to it (and inside the ONNX metadata), a parity check against PyTorch, the
optional quantize step, the drift reference profile (training rows scored by
the exported model, through the serving signature's monitored columns), the
explanation background and global importance (:mod:`kindml.explain`), request
examples and ``workload.json``: everything ``register`` stores and ``serve`` needs.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from kindml.errors import ExportError
from kindml.model.export import check_parity, export_onnx, onnx_session, run_onnx
from kindml.model.kit import ModelKit, frame_columns
from kindml.serving.predictor import WORKLOAD_FILE
from kindml.stages.context import carry_lineage
from kindml.workload.contract import Workload

log = logging.getLogger(__name__)

PARITY_ROWS = 2_000
EXAMPLES = 5


def run(wl: Workload, ref: str, model_dir: Path, holdout_dir: Path, out_dir: Path) -> dict[str, Any]:
    import onnx

    cfg = wl.cfg
    kit = wl.model_kit().load(model_dir)
    model = kit.recipe.load(model_dir / "model.pt")
    spec = kit.onnx_module(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    export_onnx(spec, onnx_path, cfg.export.opset)
    for name in kit.files:
        shutil.copy2(model_dir / name, out_dir / name)
    # small JSON preprocessing files also travel inside the ONNX file (metadata_props)
    proto = onnx.load(str(onnx_path))
    props = {"kindml.workload": ref, "kindml.inputs": ",".join(spec.inputs)}
    for name in kit.files:
        p = model_dir / name
        if p.suffix == ".json" and p.stat().st_size < 1_000_000:
            props[f"kindml.{p.stem}"] = p.read_text(encoding="utf-8")
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(onnx_path))
    holdout = pd.read_parquet(holdout_dir / "holdout.parquet")
    check_rows = kit.parity_frame(holdout.head(PARITY_ROWS))
    feeds = kit.feeds(frame_columns(check_rows))
    parity = check_parity(spec, onnx_path, feeds, cfg.export.parity_tolerance, cfg.export.opset)
    (out_dir / "parity.json").write_text(json.dumps(parity.to_dict(), indent=2), encoding="utf-8")
    if not parity.passed:
        raise ExportError(
            f"ONNX parity check failed: max abs error {parity.max_abs_error:.3g} > tolerance {parity.tolerance:.3g} on {parity.rows} rows",
            "Raise export.parity_tolerance only if the difference is understood; otherwise check the exporter opset.",
        )
    out: dict[str, Any] = {"onnx_path": str(onnx_path), "parity": parity.to_dict(), "inputs": spec.inputs, "outputs": spec.outputs}
    if cfg.quantize.enabled:
        out["quantization"] = quantize_step(kit, onnx_path, feeds, kit.labels(check_rows), cfg.quantize.accuracy_budget, out_dir)
    lineage = carry_lineage(model_dir, out_dir, parity=out_dir / "parity.json", quantization=out_dir / "quantization.json")
    feats = json.loads((lineage / "features.json").read_text(encoding="utf-8")) if (lineage / "features.json").is_file() else {}
    reference = pd.read_parquet(model_dir / "reference.parquet")
    profile = reference_profile(kit, onnx_path, reference, out_dir / "reference_profile.json")
    out["reference_rows"] = profile["rows"]
    out["explanations"] = explain_step(kit, onnx_path, reference, holdout, out_dir, cfg.train.seed)
    sig = kit.signature()
    (out_dir / "examples.json").write_text(json.dumps(sig.instances(holdout.head(EXAMPLES)), indent=2, default=str), encoding="utf-8")
    (out_dir / WORKLOAD_FILE).write_text(json.dumps({
        "workload": ref, "name": wl.name, "task": wl.task, "model_name": cfg.registry.model,
        "feature_service": sig.feature_service or feats.get("feature_service"), "inputs": spec.inputs, "outputs": spec.outputs,
        "request_fields": sig.fields, "response_outputs": sig.outputs,
    }, indent=2), encoding="utf-8")
    return out


def quantize_step(kit: ModelKit, onnx_path: Path, feeds: dict[str, Any], labels: Any, budget: float, out_dir: Path) -> dict[str, Any]:
    """Optional: INT8 variants timed side by side; the fastest within the quality budget becomes the served model.onnx.

    The FP32 file stays as model.fp32.onnx and quantization.json (all candidates' figures) goes to the registry with the version.
    """
    result = kit.quantize(onnx_path, feeds, labels, budget, out_dir / "quantized")
    shutil.copy2(out_dir / "quantized" / "quantization.json", out_dir / "quantization.json")
    if result["chosen"] != "ort_fp32_all":
        shutil.copy2(onnx_path, out_dir / "model.fp32.onnx")
        shutil.copy2(out_dir / "quantized" / "model.onnx", onnx_path)
    return {"chosen": result["chosen"], "reason": result["reason"]}


def reference_profile(kit: ModelKit, onnx_path: Path, frame: pd.DataFrame, out_path: Path) -> dict[str, Any]:
    """The drift reference stored with the version: the monitored columns and the score distribution of
    training rows, computed exactly as the predictor computes them on live requests."""
    import numpy as np

    from kindml.monitoring.profile import build_profile, save_profile

    cols = frame_columns(frame)
    feeds = kit.feeds(cols)
    outputs = run_onnx(onnx_session(onnx_path), feeds)
    probs = kit.probabilities(outputs)
    sig = kit.signature()
    numeric, categorical = sig.monitored(cols, feeds, outputs, probs)
    profile = build_profile({k: np.asarray(v, dtype=np.float64) for k, v in numeric.items()}, categorical, sig.score(probs))
    save_profile(profile, out_path)
    return profile


def explain_step(kit: ModelKit, onnx_path: Path, reference: pd.DataFrame, holdout: pd.DataFrame, out_dir: Path, seed: int) -> dict[str, Any]:
    """The explanation background (training reference rows) and the global importance (holdout rows) of the served
    model.onnx — after the quantize step, so they describe what is served. Both go to the registry with the version."""
    from kindml.explain.background import sample_background, save_background
    from kindml.explain.spec import BACKGROUND_FILE, IMPORTANCE_FILE

    spec = kit.explanation()
    if spec is None:
        return {"skipped": "the model kit declares no explanation (ModelKit.explanation)"}
    background = sample_background(spec, reference, seed)
    save_background(background, out_dir)
    out: dict[str, Any] = {"background": BACKGROUND_FILE, "background_rows": len(background)}
    try:
        import captum  # noqa: F401
    except ImportError:
        log.warning("captum is not installed: no global importance for this version (pip install 'kindml[explain]')")
        return {**out, "importance": "skipped: captum is not installed (pip install 'kindml[explain]')"}
    from kindml.explain.explainer import Explainer
    from kindml.explain.importance import global_importance, save_importance

    explainer = Explainer(kit, onnx_session(onnx_path), frame_columns(background), spec, seed=seed)
    doc = global_importance(explainer, holdout, seed)
    save_importance(doc, out_dir)
    return {**out, "importance": IMPORTANCE_FILE, "importance_rows": doc["rows"], "importance_seconds": doc["seconds"],
            "top": [p["name"] for p in doc["players"][:5]]}
