"""Stage ``evaluate``: holdout metrics and the promotion gate (floor + not worse than the champion)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml import registry
from kindml.config import KindmlConfig
from kindml.model.evaluate import classification_metrics, curves, gate
from kindml.model.preprocess import Assembler, PreprocessingSpec, frame_columns
from kindml.runtime import RuntimeEnv

log = logging.getLogger(__name__)


def score_torch(model_dir: Path, holdout: pd.DataFrame) -> np.ndarray:
    import torch

    from kindml.model.net import load_model

    spec = PreprocessingSpec.load(model_dir / "preprocessing.json")
    x = Assembler(spec).transform(frame_columns(holdout))
    net = load_model(model_dir / "model.pt")
    with torch.no_grad():
        return net(torch.from_numpy(x)).squeeze(1).numpy()


def score_onnx(folder: Path, holdout: pd.DataFrame) -> np.ndarray:
    from kindml.model.export import onnx_predict, onnx_session

    spec = PreprocessingSpec.load(_find(folder, "preprocessing.json"))
    x = Assembler(spec).transform(frame_columns(holdout))
    return onnx_predict(onnx_session(_find(folder, "model.onnx")), x)


def _find(folder: Path, name: str) -> Path:
    hits = sorted(folder.rglob(name))
    if not hits:
        raise FileNotFoundError(f"{name} not found under {folder}")
    return hits[0]


def champion_auc(cfg: KindmlConfig, env: RuntimeEnv, holdout: pd.DataFrame) -> tuple[float | None, str | None]:
    ref = registry.resolve(env.mlflow_tracking_uri, cfg.registry.model_name, alias=cfg.registry.champion_alias)
    if ref is None:
        return None, None
    try:
        with tempfile.TemporaryDirectory(dir=Path(env.workspace) / "tmp") as tmp:
            folder = registry.download(env.mlflow_tracking_uri, ref, Path(tmp))
            p = score_onnx(folder, holdout)
    except Exception as exc:  # a champion we cannot score must not block a healthy candidate silently
        log.warning("could not score champion v%s on the holdout: %s", ref.version, exc)
        return None, ref.version
    return float(classification_metrics(holdout["is_fraud"].to_numpy(), p, cfg.evaluate.threshold)["roc_auc"]), ref.version


def run(cfg: KindmlConfig, env: RuntimeEnv, model_dir: Path, holdout_dir: Path, out_dir: Path) -> dict[str, Any]:
    holdout = pd.read_parquet(holdout_dir / "holdout.parquet")
    y = holdout["is_fraud"].to_numpy()
    p = score_torch(model_dir, holdout)
    metrics = classification_metrics(y, p, cfg.evaluate.threshold)
    champ_auc, champ_version = champion_auc(cfg, env, holdout)
    decision = gate(metrics["roc_auc"], cfg.evaluate, champ_auc, champ_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (out_dir / "curves.json").write_text(json.dumps(curves(y, p)), encoding="utf-8")
    (out_dir / "gate.json").write_text(json.dumps(decision.to_dict(), indent=2), encoding="utf-8")
    md = [
        "# Evaluation on the time-based holdout",
        "",
        f"- rows: {metrics['rows']} ({metrics['positives']} fraud)",
        f"- ROC AUC: **{metrics['roc_auc']:.4f}**, PR AUC: {metrics['pr_auc']:.4f}",
        f"- at threshold {metrics['threshold']}: precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}, F1 {metrics['f1']:.3f}",
        f"- recall in the top 1% of scores: {metrics['recall_at_1pct_alerts']:.3f}",
        f"- calibration: Brier {metrics['brier']:.4f}, ECE {metrics['ece']:.4f}",
        f"- gate: **{'PROMOTE' if decision.promote else 'REJECT'}** — " + "; ".join(decision.reasons),
    ]
    (out_dir / "evaluation.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    train_report = json.loads((model_dir / "train_report.json").read_text(encoding="utf-8"))
    from kindml.registry import mlflow_env

    with mlflow_env(env.mlflow_tracking_uri) as mlflow, mlflow.start_run(run_id=train_report["mlflow_run_id"]):
        mlflow.log_metrics({f"test_{k}": float(metrics[k]) for k in ("roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "ece")})
        mlflow.set_tag("kindml.gate", "promote" if decision.promote else "reject")
        mlflow.log_artifact(str(out_dir / "evaluation.md"))
    return {"metrics": {k: v for k, v in metrics.items() if k != "calibration"}, "gate": decision.to_dict()}
