"""Stage ``register``: a new MLflow model version with the exported bundle and lineage.

The champion alias moves only when the gate said promote and ``registry.require_approval`` is off; with it on, a
version the gate passed gets the staging alias and waits for ``kindml models approve`` (:mod:`kindml.approvals`).
The gate's decision and the alias move are events of the audit log (:mod:`kindml.audit`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kindml import approvals
from kindml.model.gate import label
from kindml.model.metrics import METRIC_SETS
from kindml.runtime import RuntimeEnv
from kindml.stages.context import read_lineage
from kindml.workload.contract import Workload


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def lineage_tags(wl: Workload, ref: str, env: RuntimeEnv, pipeline_run_id: str, lineage: dict[str, Any], metrics: dict[str, Any],
                 gate: dict[str, Any]) -> dict[str, str]:
    ingest, validation, features = lineage["ingest"], lineage["validation"], lineage["features"]
    train, parity = lineage["train_report"], lineage["parity"]
    tags = {
        "kindml.pipeline_run_id": pipeline_run_id,
        "kindml.target": env.target,
        "kindml.workload": wl.name,
        "kindml.workload_ref": ref,
        "kindml.task": wl.task,
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
        "kindml.gate_metric": str(gate.get("metric", "")),
        "kindml.gate": "promote" if gate["promote"] else "reject",
        "kindml.gate_reasons": "; ".join(gate["reasons"])[:500],
        "kindml.onnx_parity_max_abs_error": f"{parity['max_abs_error']:.3g}",
    }
    for key in METRIC_SETS[wl.task]:
        if isinstance(metrics.get(key), float):
            tags[f"kindml.{key}"] = f"{metrics[key]:.5f}"
    if env.git_commit:
        tags["kindml.git_commit"] = env.git_commit
    if ingest.get("seed") is not None:
        tags["kindml.data_seed"] = str(ingest["seed"])
    if "quantization" in lineage:
        from kindml.bench.quantize import registry_tags

        tags |= registry_tags(lineage["quantization"])
    return tags


def run(wl: Workload, ref: str, env: RuntimeEnv, pipeline_run_id: str, eval_dir: Path, bundle_dir: Path, out_dir: Path) -> dict[str, Any]:
    cfg = wl.cfg
    lineage = read_lineage(bundle_dir)
    missing = [k for k in ("ingest", "validation", "features", "train_report", "parity") if k not in lineage]
    if missing:
        from kindml.errors import PipelineFailed

        raise PipelineFailed(f"the exported bundle has no lineage for {', '.join(missing)}",
                             "register takes the output of kindml's export component (its lineage/ folder comes from ingest → export).")
    metrics = _read(eval_dir / "metrics.json")
    gate = _read(eval_dir / "gate.json")
    tags = lineage_tags(wl, ref, env, pipeline_run_id, lineage, metrics, gate)
    train = lineage["train_report"]
    extra = [p for p in sorted(bundle_dir.iterdir()) if p.is_file() and p.name != "model.onnx"]
    extra += [eval_dir / "metrics.json", eval_dir / "gate.json"]
    metric = gate.get("metric") or wl.gate_metric
    # the promotion decision (the gate and registry.require_approval) and its audit events: kindml.approvals
    ver, decision, warnings = approvals.register_candidate(
        env, cfg.registry,
        name=cfg.registry.model,
        mlflow_run_id=train["mlflow_run_id"],
        pipeline_run_id=pipeline_run_id,
        onnx_path=bundle_dir / "model.onnx",
        extra_files=extra,
        tags=tags,
        description=f"{wl.name} run {pipeline_run_id}: {label(metric)} {float(metrics[metric]):.4f} on the time-based holdout; gate {tags['kindml.gate']}.",
        gate=gate,
        model_description=f"{wl.title or wl.name} (kindml workload {wl.name}).",
    )
    tags = ver.tags
    # a copy of the exact files served for this version, next to the run
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_copy = out_dir / "model.onnx"
    shutil.copy2(bundle_dir / "model.onnx", onnx_copy)
    result = {
        "name": ver.name,
        "version": ver.version,
        "workload": wl.name,
        "promoted": decision.champion_moves,  # the champion moved to this version
        "alias": decision.alias,
        "approval": decision.status,  # auto | pending | gate_rejected (kindml.approvals)
        "awaiting_approval": decision.status == approvals.PENDING,
        "decision": decision.why,
        "audit_warnings": warnings,
        "model_uri": f"models:/{ver.name}/{ver.version}",
        "onnx_path": str(onnx_copy),
        "tags": tags,
    }
    (out_dir / "registered.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if env.target == "kind":  # the stage results travel back to `kindml run --target kind` through the model's MLflow run
        from kindml.pipeline import outputs

        with tempfile.TemporaryDirectory() as tmp:
            folders = {"raw": Path(tmp) / "raw", "validation": Path(tmp) / "validation", "model": Path(tmp) / "model"}
            for name, (src, dst) in {"raw": ("ingest", "ingest.json"), "validation": ("validation", "summary.json"),
                                     "model": ("train_report", "train_report.json")}.items():
                folders[name].mkdir(parents=True)
                (folders[name] / dst).write_text(json.dumps(lineage[src]), encoding="utf-8")
            outputs.publish(env, train["mlflow_run_id"], {**folders, "evaluation": eval_dir, "registered": out_dir},
                            pipeline_run_id=pipeline_run_id)
    return result
