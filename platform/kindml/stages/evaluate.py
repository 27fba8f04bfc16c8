"""Stage ``evaluate``: the task's metric set on the time-based holdout, baselines, and the promotion gate
(a floor, and not worse than the champion scored on the same holdout)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from kindml import registry
from kindml.model.gate import gate, label
from kindml.model.kit import frame_columns
from kindml.model.metrics import compute, curves, summary_metrics
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload

log = logging.getLogger(__name__)


def bundle_predictor(wl: Workload, folder: Path) -> tuple[Any, Any]:
    """(kit, predict) of an exported model (a registered version's files): ``predict(frame)`` through its own preprocessing."""
    from kindml.model.export import onnx_session, run_onnx

    kit = wl.model_kit().load(folder)
    onnx_path = next(iter(sorted(folder.rglob("model.onnx"))), None)
    if onnx_path is None:
        raise FileNotFoundError(f"model.onnx not found under {folder}")
    session = onnx_session(onnx_path)
    return kit, lambda frame: kit.probabilities(run_onnx(session, kit.feeds(frame_columns(frame))))


def read_history(holdout_dir: Path) -> pd.DataFrame:
    """The rows before the holdout (train + validation; empty for a holdout written before history.parquet existed)."""
    path = holdout_dir / "history.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def score(wl: Workload, kit: Any, predict: Any, holdout: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, Any]:
    """The holdout metrics of one model: the workload's own evaluation, or the task's per-row metric set."""
    custom = wl.evaluate(kit, predict, holdout, history if history is not None else pd.DataFrame())
    if custom is not None:
        return {"task": wl.task, **custom}
    return compute(wl.task, kit.labels(holdout), predict(holdout), wl.cfg.evaluate.threshold, kit.class_names)


def champion_score(wl: Workload, env: RuntimeEnv, holdout: pd.DataFrame, metric: str,
                   history: pd.DataFrame | None = None) -> tuple[float | None, str | None]:
    cfg = wl.cfg
    ref = registry.resolve(env.mlflow_tracking_uri, cfg.registry.model, alias=cfg.registry.champion_alias)
    if ref is None:
        return None, None
    try:
        with tempfile.TemporaryDirectory(dir=Path(env.workspace) / "tmp") as tmp:
            folder = registry.download(env.mlflow_tracking_uri, ref, Path(tmp))
            m = score(wl, *bundle_predictor(wl, folder), holdout, history)
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
    elif wl.task == "multiclass":
        md += [
            f"- rows: {m['rows']} over {len(m['classes'])} classes",
            f"- macro-F1: **{m['macro_f1']:.4f}**, accuracy {m['accuracy']:.4f}, weighted F1 {m['weighted_f1']:.4f}",
            f"- log loss {m['log_loss']:.4f}, ECE (top score) {m['ece']:.4f}",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---:|---:|---:|---:|",
            *[f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |" for c in m["per_class"]],
        ]
    else:
        if "users" in m:
            md.append(f"- users evaluated: {m['users']}")
        md += [f"- {label(k)}: {'**' if k == wl.gate_metric else ''}{v:.4f}{'**' if k == wl.gate_metric else ''}"
               for k, v in m.items() if isinstance(v, float)]
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
    history = read_history(holdout_dir)
    kit = wl.model_kit().load(model_dir)
    model = kit.recipe.load(model_dir / "model.pt")
    metrics = score(wl, kit, lambda frame: kit.predict(model, frame), holdout, history)
    per_row = "roc_auc" in metrics and wl.task == "binary"
    if wl.task == "binary":
        metrics["positive_label"] = wl.positive_label
    if metric not in metrics:
        from kindml.errors import ConfigError

        raise ConfigError(f"evaluate.metric {metric!r} is not a {wl.task} metric", f"Use one of: {', '.join(k for k, v in metrics.items() if isinstance(v, float))}.")
    baselines: dict[str, dict[str, Any]] = dict(metrics.pop("baselines", None) or {})  # from the workload's own evaluation
    if (model_dir / "baselines.json").is_file():  # fitted and scored on the same split by the train stage
        baselines |= json.loads((model_dir / "baselines.json").read_text(encoding="utf-8"))
    if baselines:
        metrics["baselines"] = baselines
    champ, champ_version = champion_score(wl, env, holdout, metric, history)
    decision = gate(metric, float(metrics[metric]), cfg.evaluate, champ, champ_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if per_row:
        (out_dir / "curves.json").write_text(json.dumps(curves(kit.labels(holdout), kit.predict(model, holdout))), encoding="utf-8")
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
