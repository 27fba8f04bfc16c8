"""Correctness of a variant against the FP32 reference.

Each model has one *primary* metric and reports it with its delta vs the FP32
reference (PyTorch eager FP32 outputs on the same inputs):

- ``fraud_mlp``: ``roc_auc`` on the held-out (newest) rows, ``roc_auc_delta``;
  plus ``max_abs_diff`` of the fraud probability;
- ``digits_cnn``: ``accuracy`` on the held-out split, ``accuracy_delta``; plus
  ``top1_agreement`` with the reference predictions;
- ``minilm_l6``: ``cosine_to_fp32`` (mean cosine similarity of each embedding
  to the FP32 one), ``cosine_to_fp32_delta`` (vs 1.0), ``cosine_to_fp32_min``
  and ``nn_agreement``: the share of sentences whose nearest neighbour (other
  than itself) in the set is the same as with FP32 embeddings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PRIMARY_METRIC = {"fraud_mlp": "roc_auc", "digits_cnn": "accuracy", "minilm_l6": "cosine_to_fp32"}

# When a variant's quality counts as acceptable (for "best variant" picks and the
# report's quality column): the goals (accuracy drop <= 0.5 pt, cosine
# >= 0.99) and the capstone's default AUC budget (quantize.accuracy_budget).
ACCEPTABLE = {
    "fraud_mlp": ("roc_auc_delta", -0.005),
    "digits_cnn": ("accuracy_delta", -0.005),
    "minilm_l6": ("cosine_to_fp32", 0.99),
}


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


def fraud_quality(y: np.ndarray, prob: np.ndarray, ref_prob: np.ndarray) -> dict[str, float]:
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


def acceptable(model: str, quality: dict[str, Any]) -> bool | None:
    """Whether a variant's quality is within the model's tolerance (None when not measured)."""
    key, floor = ACCEPTABLE[model]
    value = quality.get(key)
    if value is None or value != value:  # missing or NaN
        return None
    return bool(value >= floor)


def primary_delta(model: str, quality: dict[str, Any]) -> float | None:
    """The delta vs FP32 of a model's primary metric (what the speed/accuracy plot uses)."""
    value = quality.get(f"{PRIMARY_METRIC[model]}_delta")
    return None if value is None else float(value)
