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
    """Promote only when the candidate clears the floor and is not worse than the champion (scored on the SAME holdout)."""
    if metric in LOWER_IS_BETTER:
        raise ValueError(f"the gate needs a higher-is-better metric, got {metric}")
    name = label(metric)
    reasons = []
    ok = True
    if not np.isfinite(candidate) or candidate < cfg.min_score:
        ok = False
        reasons.append(f"{name} {candidate:.4f} is below the floor {cfg.min_score:.4f}")
    else:
        reasons.append(f"{name} {candidate:.4f} clears the floor {cfg.min_score:.4f}")
    if champion is not None:
        if candidate < champion - cfg.max_regression:
            ok = False
            reasons.append(f"worse than champion v{champion_version} ({candidate:.4f} < {champion:.4f} - {cfg.max_regression})")
        else:
            reasons.append(f"not worse than champion v{champion_version} ({champion:.4f} on the same holdout)")
    else:
        reasons.append("no champion registered yet")
    return GateDecision(promote=ok, metric=metric, reasons=reasons, candidate=float(candidate), champion=champion,
                        champion_version=champion_version, floor=cfg.min_score, max_regression=cfg.max_regression)
