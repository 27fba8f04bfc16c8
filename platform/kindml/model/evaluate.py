"""Holdout evaluation and the promotion gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kindml.config import EvaluateConfig


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """ROC AUC, PR AUC, precision/recall/F1 at the threshold, calibration (Brier, ECE, bins)."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        confusion_matrix,
        roc_auc_score,
    )

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    bins = np.linspace(0.0, 1.0, 11)
    which = np.clip(np.digitize(p, bins[1:-1]), 0, 9)
    calib = []
    ece = 0.0
    for b in range(10):
        sel = which == b
        if not sel.any():
            continue
        conf, acc = float(p[sel].mean()), float(y[sel].mean())
        ece += sel.mean() * abs(conf - acc)
        calib.append({"bin": f"{bins[b]:.1f}-{bins[b + 1]:.1f}", "n": int(sel.sum()), "mean_score": conf, "fraud_rate": acc})
    # recall at a fixed alert budget: what share of fraud is in the top 1% of scores
    top = max(1, int(round(0.01 * len(p))))
    order = np.argsort(-p, kind="stable")
    recall_at_1pct = float(y[order[:top]].sum() / max(y.sum(), 1))
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "threshold": threshold,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "recall_at_1pct_alerts": recall_at_1pct,
        "brier": float(brier_score_loss(y, p)),
        "ece": float(ece),
        "positives": int(y.sum()),
        "rows": int(len(y)),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "calibration": calib,
    }


def curves(y: np.ndarray, p: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """Down-sampled ROC and PR curves for reports."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    prec, rec, _ = precision_recall_curve(y, p)
    idx_roc = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    idx_pr = np.unique(np.linspace(0, len(prec) - 1, min(points, len(prec))).astype(int))
    return {
        "roc_fpr": fpr[idx_roc].round(5).tolist(),
        "roc_tpr": tpr[idx_roc].round(5).tolist(),
        "pr_recall": rec[idx_pr].round(5).tolist(),
        "pr_precision": prec[idx_pr].round(5).tolist(),
    }


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    candidate_roc_auc: float = float("nan")
    champion_roc_auc: float | None = None
    champion_version: str | None = None
    floor: float = 0.0
    max_regression: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(candidate_auc: float, cfg: EvaluateConfig, champion_auc: float | None = None, champion_version: str | None = None) -> GateDecision:
    """Promote only when the candidate clears the floor and is not worse than the champion.

    The champion is scored on the SAME holdout as the candidate, so the
    comparison is fair even when the data moved.
    """
    reasons = []
    ok = True
    if not np.isfinite(candidate_auc) or candidate_auc < cfg.min_roc_auc:
        ok = False
        reasons.append(f"ROC AUC {candidate_auc:.4f} is below the floor {cfg.min_roc_auc:.4f}")
    else:
        reasons.append(f"ROC AUC {candidate_auc:.4f} clears the floor {cfg.min_roc_auc:.4f}")
    if champion_auc is not None:
        if candidate_auc < champion_auc - cfg.max_regression:
            ok = False
            reasons.append(
                f"worse than champion v{champion_version} ({candidate_auc:.4f} < {champion_auc:.4f} - {cfg.max_regression})"
            )
        else:
            reasons.append(f"not worse than champion v{champion_version} ({champion_auc:.4f} on the same holdout)")
    else:
        reasons.append("no champion registered yet")
    return GateDecision(
        promote=ok,
        reasons=reasons,
        candidate_roc_auc=float(candidate_auc),
        champion_roc_auc=champion_auc,
        champion_version=champion_version,
        floor=cfg.min_roc_auc,
        max_regression=cfg.max_regression,
    )
