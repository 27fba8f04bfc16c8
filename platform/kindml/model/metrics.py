"""Metric sets per task, computed on a holdout: what ``evaluate`` reports and the gate compares.

Every set is a function ``(y, p, threshold) -> dict`` whose scalar entries are
the metrics (``METRIC_SETS[task]`` names them; the first is the headline) and
whose other entries (confusion, calibration bins, per-class tables) feed the
report. ``p`` is the positive-class probability (binary, shape ``(n,)``) or
the class probabilities (multiclass, shape ``(n, classes)``).

Ranking (top-K lists per user, :func:`ranking_metrics`) is computed by a ranking
workload's ``evaluate`` with the helpers at the end of this module: recall@K,
NDCG@K (binary relevance), precision@K, catalogue coverage, and the popularity
baseline (:func:`popularity_ranking`). Forecasts (many series, a horizon each) are scored by a
forecasting workload's ``evaluate`` with :func:`forecast_metrics`: WAPE, sMAPE, MASE (against the
in-sample seasonal-naive error), MAE, RMSE.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np

METRIC_SETS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "precision", "recall", "f1", "brier", "ece"),
    "multiclass": ("macro_f1", "accuracy", "weighted_f1", "log_loss", "ece"),
    # tasks whose workloads compute their metrics themselves (Workload.evaluate): lists and series, not rows
    "ranking": ("recall_at_10", "ndcg_at_10", "precision_at_10", "coverage", "recall_at_10_vs_popularity"),
    "regression": ("wape", "smape", "mase", "mae", "rmse"),
}
"""Scalar metrics of each task, headline first. Lower is better for ``brier``, ``ece`` and ``log_loss``."""
LOWER_IS_BETTER = frozenset({"brier", "ece", "log_loss", "wape", "smape", "mase", "mae", "rmse"})
SUMMARY_EXTRA: dict[str, tuple[str, ...]] = {"binary": ("rows", "positives"), "multiclass": ("rows", "classes"), "ranking": ("users", "k"),
                                             "regression": ("series", "horizon")}


def compute(task: str, y: np.ndarray, p: np.ndarray, threshold: float = 0.5, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The task's metric set."""
    if task == "binary":
        return {"task": task, **classification_metrics(y, p, threshold)}
    if task == "multiclass":
        return {"task": task, **multiclass_metrics(y, p, class_names)}
    raise ValueError(f"unknown task {task!r}")


def summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics of a metrics.json that go into summary.json (the same keys for every run of a task)."""
    task = metrics.get("task", "binary")
    keys = (*METRIC_SETS.get(task, ()), *SUMMARY_EXTRA.get(task, ()))
    return {k: metrics[k] for k in keys if k in metrics}


def multiclass_metrics(y: np.ndarray, p: np.ndarray, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, macro / weighted F1, log loss, per-class precision/recall/F1, confusion matrix, calibration of the top score."""
    from sklearn.metrics import (
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    n_classes = p.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    pred = p.argmax(axis=1)
    labels = list(range(n_classes))
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    conf = confusion_matrix(y, pred, labels=labels)
    top = p.max(axis=1)
    correct = (pred == y).astype(float)
    bins = np.linspace(0.0, 1.0, 11)
    which = np.clip(np.digitize(top, bins[1:-1]), 0, 9)
    ece, calib = 0.0, []
    for b in range(10):
        sel = which == b
        if sel.any():
            conf_b, acc_b = float(top[sel].mean()), float(correct[sel].mean())
            ece += sel.mean() * abs(conf_b - acc_b)
            calib.append({"bin": f"{bins[b]:.1f}-{bins[b + 1]:.1f}", "n": int(sel.sum()), "mean_score": conf_b, "accuracy": acc_b})
    return {
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(correct.mean()),
        "weighted_f1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1.0), labels=labels)),
        "ece": float(ece),
        "rows": int(len(y)),
        "classes": names,
        "per_class": [{"class": names[i], "precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
                      for i in labels],
        "confusion_matrix": conf.astype(int).tolist(),
        "calibration": calib,
    }


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
        calib.append({"bin": f"{bins[b]:.1f}-{bins[b + 1]:.1f}", "n": int(sel.sum()), "mean_score": conf, "positive_rate": acc})
    # recall at a fixed alert budget: what share of the positives is in the top 1% of scores
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


# --- ranking: top-K lists per user ------------------------------------------------------------------

def recall_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Share of a user's relevant items found in the first ``k`` recommendations (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    hits = sum(1 for item in list(recommended)[:k] if item in relevant)
    return hits / len(relevant)


def precision_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Share of the first ``k`` slots that hold a relevant item (a short list counts its empty slots as misses)."""
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(1 for item in list(recommended)[:k] if item in relevant) / k


def ndcg_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance: DCG = sum over hits at rank r (1-based) of
    1/log2(r+1), divided by the DCG of an ideal list (all relevant items first, at most ``k`` of them)."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(r + 2) for r, item in enumerate(list(recommended)[:k]) if item in relevant)
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return float(dcg / ideal)


def coverage(recommended: Iterable[Sequence[Any]], catalogue: int, k: int) -> float:
    """Share of the catalogue (``catalogue`` items) that appears in at least one user's first ``k`` recommendations."""
    if catalogue <= 0:
        raise ValueError("the catalogue must hold at least one item")
    seen: set[Any] = set()
    for rec in recommended:
        seen.update(list(rec)[:k])
    return len(seen) / catalogue


def ranking_metrics(recommended: Sequence[Sequence[Any]], relevant: Sequence[Collection[Any]], catalogue: int, k: int = 10,
                    curve: Sequence[int] = (1, 2, 3, 5, 10, 20, 50)) -> dict[str, Any]:
    """Mean recall / NDCG / precision at ``k`` over users (one list and one relevant set per user, users without
    relevant items left out), catalogue coverage at ``k``, and recall / NDCG at every K of ``curve`` (report plots)."""
    pairs = [(list(r), set(rel)) for r, rel in zip(recommended, relevant, strict=True) if rel]
    if not pairs:
        raise ValueError("no user has a relevant item: nothing to rank against")
    depth = max(len(r) for r, _ in pairs)
    ks = [c for c in curve if c <= depth]
    return {
        f"recall_at_{k}": float(np.mean([recall_at_k(r, rel, k) for r, rel in pairs])),
        f"ndcg_at_{k}": float(np.mean([ndcg_at_k(r, rel, k) for r, rel in pairs])),
        f"precision_at_{k}": float(np.mean([precision_at_k(r, rel, k) for r, rel in pairs])),
        "coverage": coverage((r for r, _ in pairs), catalogue, k),
        "users": len(pairs),
        "k": k,
        "curve": {"k": ks, "recall": [float(np.mean([recall_at_k(r, rel, c) for r, rel in pairs])) for c in ks],
                  "ndcg": [float(np.mean([ndcg_at_k(r, rel, c) for r, rel in pairs])) for c in ks]},
    }


def popularity_ranking(interactions: Sequence[Any], k: int, exclude: Sequence[Collection[Any]]) -> list[list[Any]]:
    """The popularity baseline: for each user (one ``exclude`` set each: what they already have), the ``k`` most
    frequent items of ``interactions`` (ties broken by the smaller item id) that are not excluded."""
    items, counts = np.unique(np.asarray(interactions), return_counts=True)
    order = items[np.lexsort((items, -counts))].tolist()  # most frequent first, then by id
    out = []
    for ex in exclude:
        row: list[Any] = []
        for item in order:
            if item not in ex:
                row.append(item)
                if len(row) == k:
                    break
        out.append(row)
    return out


# --- forecasting: many series, a horizon each ------------------------------------------------------

def wape(actual: Any, forecast: Any) -> float:
    """Weighted absolute percentage error: sum |actual - forecast| / sum |actual| over every point of every series
    (a share, not a percentage; NaN when the actuals are all zero)."""
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    f = np.asarray(forecast, dtype=np.float64).reshape(-1)
    denom = float(np.abs(a).sum())
    return float(np.abs(a - f).sum() / denom) if denom > 0 else float("nan")


def smape(actual: Any, forecast: Any) -> float:
    """Symmetric MAPE as a share in [0, 2]: mean of 2|a - f| / (|a| + |f|) over the points, a point where both are
    zero counting as 0 (a perfect forecast of no demand)."""
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    f = np.asarray(forecast, dtype=np.float64).reshape(-1)
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(2.0 * np.abs(a - f), denom, out=np.zeros_like(a), where=denom > 0)
    return float(terms.mean()) if len(a) else float("nan")


def seasonal_naive_scale(history: Any, season: int) -> float:
    """MASE's scale of one series: the in-sample mean absolute error of the seasonal-naive forecast
    (``|y[t] - y[t - season]|`` over the history); NaN when the history is not longer than one season."""
    h = np.asarray(history, dtype=np.float64).reshape(-1)
    if len(h) <= season:
        return float("nan")
    return float(np.abs(h[season:] - h[:-season]).mean())


def mase(actual: Sequence[Any], forecast: Sequence[Any], history: Sequence[Any], season: int) -> float:
    """Mean absolute scaled error over series: for each series (one array of actuals, forecasts and its history each),
    MAE of the forecast / :func:`seasonal_naive_scale` of its history, then the mean over series. Series whose scale
    is 0 or undefined (a constant or too short history) are left out; NaN when none is left."""
    out = []
    for a, f, h in zip(actual, forecast, history, strict=True):
        scale = seasonal_naive_scale(h, season)
        if np.isfinite(scale) and scale > 0:
            out.append(float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(f, dtype=np.float64)).mean()) / scale)
    return float(np.mean(out)) if out else float("nan")


def forecast_metrics(actual: Sequence[Any], forecast: Sequence[Any], history: Sequence[Any], season: int) -> dict[str, Any]:
    """The ``regression`` metric set of a forecast: WAPE, sMAPE, MASE (seasonal period ``season``), MAE and RMSE over
    every point; ``actual`` / ``forecast`` / ``history`` hold one array per series (the points of all its origins)."""
    a = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in actual]) if len(actual) else np.zeros(0)
    f = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in forecast]) if len(forecast) else np.zeros(0)
    if len(a) == 0:
        raise ValueError("no forecast point to score")
    return {"wape": wape(a, f), "smape": smape(a, f), "mase": mase(actual, forecast, history, season),
            "mae": float(np.abs(a - f).mean()), "rmse": float(np.sqrt(((a - f) ** 2).mean())), "series": len(actual), "points": int(len(a))}
