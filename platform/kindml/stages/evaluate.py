"""Stage ``evaluate``: the task's metric set on the time-based holdout, baselines, and the promotion gate
(a floor, and not worse than the champion scored on the same holdout)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml import registry
from kindml.model.gate import gate, label
from kindml.model.kit import frame_columns
from kindml.model.metrics import compute, curves, summary_metrics
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload

log = logging.getLogger(__name__)


def score_bundle(wl: Workload, folder: Path, holdout: pd.DataFrame) -> np.ndarray:
    """Probabilities of an exported model (a registered version's files) on ``holdout``, through its own preprocessing."""
    from kindml.model.export import onnx_session, run_onnx

    kit = wl.model_kit().load(folder)
    onnx_path = next(iter(sorted(folder.rglob("model.onnx"))), None)
    if onnx_path is None:
        raise FileNotFoundError(f"model.onnx not found under {folder}")
    return kit.probabilities(run_onnx(onnx_session(onnx_path), kit.feeds(frame_columns(holdout))))


def champion_score(wl: Workload, env: RuntimeEnv, holdout: pd.DataFrame, metric: str) -> tuple[float | None, str | None]:
    cfg = wl.cfg
    ref = registry.resolve(env.mlflow_tracking_uri, cfg.registry.model, alias=cfg.registry.champion_alias)
    if ref is None:
        return None, None
    try:
        with tempfile.TemporaryDirectory(dir=Path(env.workspace) / "tmp") as tmp:
            folder = registry.download(env.mlflow_tracking_uri, ref, Path(tmp))
            p = score_bundle(wl, folder, holdout)
            m = compute(wl.task, wl.model_kit().load(folder).labels(holdout), p, cfg.evaluate.threshold)
    except Exception as exc:  # a champion we cannot score must not block a healthy candidate silently
        log.warning("could not score champion v%s on the holdout: %s", ref.version, exc)
        return None, ref.version
    return float(m[metric]), ref.version


def markdown(wl: Workload, metrics: dict[str, Any], decision: Any, baselines: dict[str, dict[str, Any]]) -> str:
    m = metrics
    md = ["# Evaluation on the time-based holdout", ""]
    if wl.task == "binary":
        md += [
            f"- rows: {m['rows']} ({m['positives']} {wl.positive_label})",
            f"- ROC AUC: **{m['roc_auc']:.4f}**, PR AUC: {m['pr_auc']:.4f}",
            f"- at threshold {m['threshold']}: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}",
            f"- recall in the top 1% of scores: {m['recall_at_1pct_alerts']:.3f}",
            f"- calibration: Brier {m['brier']:.4f}, ECE {m['ece']:.4f}",
        ]
    else:
        md += [
            f"- rows: {m['rows']} over {len(m['classes'])} classes",
            f"- macro-F1: **{m['macro_f1']:.4f}**, accuracy {m['accuracy']:.4f}, weighted F1 {m['weighted_f1']:.4f}",
            f"- log loss {m['log_loss']:.4f}, ECE (top score) {m['ece']:.4f}",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---:|---:|---:|---:|",
            *[f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |" for c in m["per_class"]],
        ]
    if baselines:
        md += ["", "Baselines on the same holdout:", ""]
        for name, b in baselines.items():
            md.append(f"- {name}: {label(wl.gate_metric)} {b.get(wl.gate_metric, float('nan')):.4f}"
                      + (f" — {b['note']}" if b.get("note") else ""))
    md.append(f"- gate: **{'PROMOTE' if decision.promote else 'REJECT'}** — " + "; ".join(decision.reasons))
    return "\n".join(md) + "\n"


def run(wl: Workload, env: RuntimeEnv, model_dir: Path, holdout_dir: Path, out_dir: Path) -> dict[str, Any]:
    cfg = wl.cfg
    metric = cfg.evaluate.metric or wl.gate_metric
    holdout = pd.read_parquet(holdout_dir / "holdout.parquet")
    kit = wl.model_kit().load(model_dir)
    model = kit.recipe.load(model_dir / "model.pt")
    y = kit.labels(holdout)
    p = kit.predict(model, holdout)
    metrics = compute(wl.task, y, p, cfg.evaluate.threshold, kit.class_names)
    if wl.task == "binary":
        metrics["positive_label"] = wl.positive_label
    if metric not in metrics:
        from kindml.errors import ConfigError

        raise ConfigError(f"evaluate.metric {metric!r} is not a {wl.task} metric", f"Use one of: {', '.join(k for k, v in metrics.items() if isinstance(v, float))}.")
    baselines: dict[str, dict[str, Any]] = {}
    if (model_dir / "baselines.json").is_file():  # fitted and scored on the same split by the train stage
        baselines = json.loads((model_dir / "baselines.json").read_text(encoding="utf-8"))
    if baselines:
        metrics["baselines"] = baselines
    champ, champ_version = champion_score(wl, env, holdout, metric)
    decision = gate(metric, float(metrics[metric]), cfg.evaluate, champ, champ_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if wl.task == "binary":
        (out_dir / "curves.json").write_text(json.dumps(curves(y, p)), encoding="utf-8")
    (out_dir / "gate.json").write_text(json.dumps(decision.to_dict(), indent=2), encoding="utf-8")
    (out_dir / "evaluation.md").write_text(markdown(wl, metrics, decision, baselines), encoding="utf-8")
    train_report = json.loads((model_dir / "train_report.json").read_text(encoding="utf-8"))
    from kindml.registry import mlflow_env

    scalars = summary_metrics(metrics)
    with mlflow_env(env.mlflow_tracking_uri) as mlflow, mlflow.start_run(run_id=train_report["mlflow_run_id"]):
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in scalars.items() if isinstance(v, float)})
        mlflow.set_tag("kindml.gate", "promote" if decision.promote else "reject")
        mlflow.log_artifact(str(out_dir / "evaluation.md"))
    return {"metrics": {k: v for k, v in scalars.items() if not isinstance(v, list)}, "gate": decision.to_dict()}
