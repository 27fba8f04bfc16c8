"""Stage ``register``: a new MLflow model version with the ONNX file and lineage; alias only when the gate said promote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kindml import registry
from kindml.config import KindmlConfig
from kindml.runtime import RuntimeEnv


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def lineage_tags(
    cfg: KindmlConfig, env: RuntimeEnv, pipeline_run_id: str, ingest: dict[str, Any], validation: dict[str, Any],
    features: dict[str, Any], train: dict[str, Any], metrics: dict[str, Any], gate: dict[str, Any], parity: dict[str, Any],
) -> dict[str, str]:
    tags = {
        "kindml.pipeline_run_id": pipeline_run_id,
        "kindml.target": env.target,
        "kindml.data_hash": ingest["content_hash"],
        "kindml.data_rows": str(ingest["rows"]),
        "kindml.data_source": str(ingest.get("source", "")),
        "kindml.data_window": f"{ingest['window_start']}/{ingest['window_end']}",
        "kindml.feast_project": features["project"],
        "kindml.feast_feature_service": features["feature_service"],
        "kindml.feast_feature_views": ",".join(features["feature_views"]),
        "kindml.feast_registry": str(features.get("registry") or "file"),
        "kindml.validation_success": str(validation["success"]).lower(),
        "kindml.validation_summary": validation["summary"][:500],
        "kindml.validation_quarantined_rows": str(validation.get("quarantined_rows") or 0),
        "kindml.train_mlflow_run_id": train["mlflow_run_id"],
        "kindml.train_seed": str(train["seed"]),
        "kindml.roc_auc": f"{metrics['roc_auc']:.5f}",
        "kindml.pr_auc": f"{metrics['pr_auc']:.5f}",
        "kindml.gate": "promote" if gate["promote"] else "reject",
        "kindml.gate_reasons": "; ".join(gate["reasons"])[:500],
        "kindml.onnx_parity_max_abs_error": f"{parity['max_abs_error']:.3g}",
    }
    if env.git_commit:
        tags["kindml.git_commit"] = env.git_commit
    if ingest.get("seed") is not None:
        tags["kindml.data_seed"] = str(ingest["seed"])
    return tags


def reference_profile(training_dir: Path, model_dir: Path, export_dir: Path, train: dict[str, Any], out_path: Path,
                      window_start: str | None = None, max_rows: int = 50_000, warmup_days: int = 30) -> dict[str, Any]:
    """The drift reference stored with the version: binned training inputs, category mix and score distribution.

    Rows of the first ``warmup_days`` of the history are left out when enough
    remain: their 30-day aggregates cover a partial window (the history starts
    there), which live traffic never shows — keeping them would make every
    undrifted day look drifted.
    """
    import numpy as np
    import pandas as pd

    from kindml.model.export import onnx_predict, onnx_session
    from kindml.model.preprocess import Assembler, PreprocessingSpec, frame_columns
    from kindml.monitoring.profile import build_profile, save_profile
    from kindml.serving.monitored import monitored_columns

    df = pd.read_parquet(training_dir / "training_set.parquet")
    val_end = pd.Timestamp(train["split_boundaries"]["val_end"])
    df = df[df["event_timestamp"] <= val_end]  # train + validation split: never the holdout
    if window_start:
        settled = df[df["event_timestamp"] >= pd.Timestamp(window_start) + pd.Timedelta(days=warmup_days)]
        if len(settled) >= 500:
            df = settled
    if len(df) > max_rows:
        df = df.sample(max_rows, random_state=0)
    spec = PreprocessingSpec.load(model_dir / "preprocessing.json")
    cols = frame_columns(df)
    x = Assembler(spec).transform(cols)
    scores = onnx_predict(onnx_session(export_dir / "model.onnx"), x).astype(np.float64)
    numeric, categorical = monitored_columns(spec.inputs, x, cols)
    numeric["amount"] = cols["amount"].astype(np.float64)
    profile = build_profile(numeric, categorical, scores)
    save_profile(profile, out_path)
    return profile


def run(
    cfg: KindmlConfig, env: RuntimeEnv, pipeline_run_id: str, clean_dir: Path, validation_dir: Path, training_dir: Path,
    model_dir: Path, eval_dir: Path, export_dir: Path, out_dir: Path,
) -> dict[str, Any]:
    ingest = _read(clean_dir / "ingest.json")
    validation = _read(validation_dir / "summary.json")
    features = _read(training_dir / "features.json")
    train = _read(model_dir / "train_report.json")
    metrics = _read(eval_dir / "metrics.json")
    gate = _read(eval_dir / "gate.json")
    parity = _read(export_dir / "parity.json")
    tags = lineage_tags(cfg, env, pipeline_run_id, ingest, validation, features, train, metrics, gate, parity)
    if (export_dir / "quantization.json").is_file():
        from kindml.bench.quantize import registry_tags

        tags |= registry_tags(_read(export_dir / "quantization.json"))
    out_dir.mkdir(parents=True, exist_ok=True)
    reference_profile(training_dir, model_dir, export_dir, train, out_dir / "reference_profile.json", ingest.get("window_start"))
    extra = [out_dir / "reference_profile.json", export_dir / "preprocessing.json", export_dir / "parity.json", eval_dir / "metrics.json", eval_dir / "gate.json"]
    extra += [p for p in sorted(export_dir.glob("*.json")) if p not in extra]
    extra += [p for p in sorted(export_dir.glob("*.onnx")) if p.name != "model.onnx"]
    ref = registry.register_onnx(
        env.mlflow_tracking_uri,
        run_id=train["mlflow_run_id"],
        name=cfg.registry.model_name,
        onnx_path=export_dir / "model.onnx",
        extra_files=extra,
        tags=tags,
        description=f"capstone run {pipeline_run_id}: ROC AUC {metrics['roc_auc']:.4f} on the time-based holdout; gate {tags['kindml.gate']}.",
        promote=bool(gate["promote"]),
        alias=cfg.registry.champion_alias,
    )
    # a copy of the exact files served for this version, next to the run
    onnx_copy = out_dir / "model.onnx"
    shutil.copy2(export_dir / "model.onnx", onnx_copy)
    shutil.copy2(export_dir / "preprocessing.json", out_dir / "preprocessing.json")
    result = {
        "name": ref.name,
        "version": ref.version,
        "promoted": bool(gate["promote"]),
        "alias": cfg.registry.champion_alias if gate["promote"] else None,
        "model_uri": f"models:/{ref.name}/{ref.version}",
        "onnx_path": str(onnx_copy),
        "tags": tags,
    }
    (out_dir / "registered.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    # kind target: the stage results travel back to `kindml capstone --target kind` through the model's MLflow run
    from kindml.pipeline import outputs

    outputs.publish(env, train["mlflow_run_id"], {"raw": clean_dir, "validation": validation_dir, "model": model_dir, "evaluation": eval_dir,
                                                 "registered": out_dir}, pipeline_run_id=pipeline_run_id)
    return result
