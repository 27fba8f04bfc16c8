"""Correctness of a variant against the FP32 reference, and when it counts as acceptable.

Each model case has one *primary* metric and reports it with its delta vs the
FP32 reference (PyTorch eager FP32 outputs on the same inputs); its
:class:`QualityRule` says which figure must stay above which floor. The
platform's cases:

- ``digits_cnn``: ``accuracy`` on the held-out split, ``accuracy_delta``; plus
  ``top1_agreement`` with the reference predictions;
- ``minilm_l6``: ``cosine_to_fp32`` (mean cosine similarity of each embedding
  to the FP32 one), ``cosine_to_fp32_delta`` (vs 1.0), ``cosine_to_fp32_min``
  and ``nn_agreement``: the share of sentences whose nearest neighbour (other
  than itself) in the set is the same as with FP32 embeddings.

A binary classifier (a workload's tabular case) reports :func:`binary_quality`:
``roc_auc`` on held-out rows, ``roc_auc_delta`` and ``max_abs_diff`` of the
score. A result document records each model's rule (``models.<name>.quality_rule``),
so reports re-render without knowing the case that produced it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# A delta rule's floor when a result did not record its rule (results written before rules were):
# the issue's goal for accuracy-like metrics (a drop of at most 0.5 pt), the capstones' default AUC budget.
DEFAULT_DELTA_FLOOR = -0.005


@dataclass(frozen=True)
class QualityRule:
    """``primary``: the metric whose ``<primary>_delta`` is a record's ``quality_delta``;
    a variant is acceptable when ``quality[key] >= floor``."""

    primary: str
    key: str
    floor: float

    def acceptable(self, quality: Mapping[str, Any]) -> bool | None:
        """Whether a variant's quality is within tolerance (None when not measured)."""
        value = quality.get(self.key)
        if value is None or value != value:  # missing or NaN
            return None
        return bool(value >= self.floor)

    def primary_delta(self, quality: Mapping[str, Any]) -> float | None:
        """The delta vs FP32 of the primary metric (what the speed/accuracy plot uses)."""
        value = quality.get(f"{self.primary}_delta")
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {"primary_metric": self.primary, "acceptable": {"metric": self.key, "min": self.floor}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityRule:
        return cls(str(d["primary_metric"]), str(d["acceptable"]["metric"]), float(d["acceptable"]["min"]))


# the goals: accuracy drop <= 0.5 pt, cosine >= 0.99
PLATFORM_RULES: dict[str, QualityRule] = {
    "digits_cnn": QualityRule("accuracy", "accuracy_delta", -0.005),
    "minilm_l6": QualityRule("cosine_to_fp32", "cosine_to_fp32", 0.99),
}


def infer_rule(qualities: Iterable[Mapping[str, Any]]) -> QualityRule | None:
    """The rule of a result that did not record one: the primary metric is the one figure reported with
    a ``_delta`` partner; acceptable when that delta is >= :data:`DEFAULT_DELTA_FLOOR`."""
    for q in qualities:
        primaries = [k for k in q if not k.endswith("_delta") and f"{k}_delta" in q]
        if len(primaries) == 1:
            return QualityRule(primaries[0], f"{primaries[0]}_delta", DEFAULT_DELTA_FLOOR)
    return None


def rules_of(doc: Mapping[str, Any]) -> dict[str, QualityRule]:
    """Each model's rule in a result document: recorded, else the platform's, else inferred from its records."""
    out: dict[str, QualityRule] = {}
    metas = doc.get("models") or {}
    for model in dict.fromkeys([*metas, *(r["model"] for r in doc.get("results", []))]):
        recorded = (metas.get(model) or {}).get("quality_rule")
        if recorded:
            out[model] = QualityRule.from_dict(recorded)
        elif model in PLATFORM_RULES:
            out[model] = PLATFORM_RULES[model]
        else:
            rule = infer_rule(r["quality"] for r in doc.get("results", []) if r["model"] == model)
            if rule is not None:
                out[model] = rule
    return out


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).reshape(-1)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score, dtype=np.float64).reshape(-1)))


def accuracy(y: np.ndarray, logits: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(y).reshape(-1)))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)


def nearest_neighbours(emb: np.ndarray) -> np.ndarray:
    """Index of each row's most cosine-similar other row."""
    e = np.asarray(emb, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    return np.argmax(sim, axis=1)


def binary_quality(y: np.ndarray, prob: np.ndarray, ref_prob: np.ndarray) -> dict[str, float]:
    """A binary classifier's score vs the reference score: ROC AUC, its delta, the largest score difference."""
    auc = roc_auc(y, prob)
    ref = roc_auc(y, ref_prob)
    return {
        "roc_auc": round(auc, 6),
        "roc_auc_delta": round(auc - ref, 6),
        "max_abs_diff": float(np.max(np.abs(np.asarray(prob, np.float64).reshape(-1) - np.asarray(ref_prob, np.float64).reshape(-1)))),
    }


def digits_quality(y: np.ndarray, logits: np.ndarray, ref_logits: np.ndarray) -> dict[str, float]:
    acc = accuracy(y, logits)
    ref = accuracy(y, ref_logits)
    agree = float(np.mean(np.argmax(logits, axis=1) == np.argmax(ref_logits, axis=1)))
    return {"accuracy": round(acc, 6), "accuracy_delta": round(acc - ref, 6), "top1_agreement": round(agree, 6)}


def minilm_quality(emb: np.ndarray, ref_emb: np.ndarray) -> dict[str, float]:
    cos = cosine_rows(emb, ref_emb)
    nn = nearest_neighbours(emb)
    ref_nn = nearest_neighbours(ref_emb)
    mean = float(np.mean(cos))
    return {
        "cosine_to_fp32": round(mean, 6),
        "cosine_to_fp32_delta": round(mean - 1.0, 6),
        "cosine_to_fp32_min": round(float(np.min(cos)), 6),
        "nn_agreement": round(float(np.mean(nn == ref_nn)), 6),
    }
