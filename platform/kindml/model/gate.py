"""The promotion gate: a floor on the workload's gate metric, and not worse than the champion on the same holdout."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kindml.config import EvaluateConfig
from kindml.model.metrics import LOWER_IS_BETTER

LABELS = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "macro_f1": "macro-F1", "accuracy": "accuracy", "weighted_f1": "weighted F1",
          "f1": "F1", "precision": "precision", "recall": "recall"}


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


@dataclass
class GateDecision:
    promote: bool
    metric: str
    reasons: list[str] = field(default_factory=list)
    candidate: float = float("nan")
    champion: float | None = None
    champion_version: str | None = None
    floor: float = 0.0
    max_regression: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # the names earlier summaries used for a ROC AUC gate (kept for readers of older runs)
        if self.metric == "roc_auc":
            d |= {"candidate_roc_auc": self.candidate, "champion_roc_auc": self.champion}
        return d


def gate(metric: str, candidate: float, cfg: EvaluateConfig, champion: float | None = None, champion_version: str | None = None) -> GateDecision:
    """Promote only when the candidate clears the bound and is not worse than the champion (scored on the SAME holdout).

    Higher-is-better metrics (AUC, F1, recall@K) have a floor (``evaluate.min_score``); lower-is-better ones
    (``LOWER_IS_BETTER``: WAPE, log loss, ...) a ceiling (``evaluate.max_score``, required for them).
    """
    name = label(metric)
    lower = metric in LOWER_IS_BETTER
    if lower and cfg.max_score is None:
        from kindml.errors import ConfigError

        raise ConfigError(f"the gate metric {metric} is lower-is-better but evaluate.max_score is not set",
                          "Set evaluate.max_score (the workload's defaults usually do), e.g. --set evaluate.max_score=0.3.")
    bound = float(cfg.max_score) if lower else cfg.min_score
    reasons = []
    ok = True
    if not np.isfinite(candidate) or (candidate > bound if lower else candidate < bound):
        ok = False
        reasons.append(f"{name} {candidate:.4f} is {'above the ceiling' if lower else 'below the floor'} {bound:.4f}")
    else:
        reasons.append(f"{name} {candidate:.4f} clears the {'ceiling' if lower else 'floor'} {bound:.4f}")
    if champion is not None:
        worse = candidate > champion + cfg.max_regression if lower else candidate < champion - cfg.max_regression
        if worse:
            ok = False
            op = ">" if lower else "<"
            sign = "+" if lower else "-"
            reasons.append(f"worse than champion v{champion_version} ({candidate:.4f} {op} {champion:.4f} {sign} {cfg.max_regression})")
        else:
            reasons.append(f"not worse than champion v{champion_version} ({champion:.4f} on the same holdout)")
    else:
        reasons.append("no champion registered yet")
    return GateDecision(promote=ok, metric=metric, reasons=reasons, candidate=float(candidate), champion=champion,
                        champion_version=champion_version, floor=bound, max_regression=cfg.max_regression)
