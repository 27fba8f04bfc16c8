"""Bounded sliding-window drift accounting and the drift statistics.

Memory is fixed: per feature a ring of ``buckets`` sub-window count vectors
(each up to ``window / buckets`` observations); when the newest sub-window is
full, the oldest is zeroed and reused, so old data ages out in O(bins). Each
request costs one ``np.searchsorted`` per numeric feature (O(features)).

Statistics, between the reference proportions p and the window proportions q
(both over the same bins):

- PSI = Σ (q − p) · ln(q / p)
- Jensen–Shannon divergence, base 2 (in [0, 1])
- KS statistic = max |CDF_q − CDF_p| over the bin edges: the *binned*
  approximation of the two-sample KS statistic — it can only under-estimate
  the exact value (differences inside a bin are invisible), and with 10
  quantile bins the resolution is one decile. For categoricals the KS is
  computed over the categories in a fixed order and is reported for
  completeness; PSI/JS are the meaningful ones there.

Empty bins are smoothed with an additive ε = 1e-4 on proportions (then
renormalised), so PSI stays finite when a bin is empty on one side. No value
is reported until the window holds ``min_samples`` observations.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kindml.monitoring.profile import OTHER

EPS = 1e-4


def _props(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    p = counts / total if total > 0 else np.full_like(counts, 1.0 / len(counts))
    p = p + EPS
    return p / p.sum()


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p, q = _props(np.asarray(ref_counts, float)), _props(np.asarray(cur_counts, float))
    return float(np.sum((q - p) * np.log(q / p)))


def js(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p, q = _props(np.asarray(ref_counts, float)), _props(np.asarray(cur_counts, float))
    m = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))


def ks(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    r = np.asarray(ref_counts, float)
    c = np.asarray(cur_counts, float)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    return float(np.max(np.abs(np.cumsum(r) / r.sum() - np.cumsum(c) / c.sum())))


METHODS = {"psi": psi, "js": js, "ks": ks}


class _Ring:
    def __init__(self, nbins: int, buckets: int, per_bucket: int) -> None:
        self.counts = np.zeros((buckets, nbins))
        self.filled = np.zeros(buckets, dtype=np.int64)
        self.head = 0
        self.per_bucket = per_bucket

    def add(self, binned: np.ndarray) -> None:
        i = 0
        n = len(binned)
        while i < n:
            room = self.per_bucket - self.filled[self.head]
            if room <= 0:
                self.head = (self.head + 1) % len(self.filled)
                self.counts[self.head] = 0.0
                self.filled[self.head] = 0
                continue
            part = binned[i:i + room]
            self.counts[self.head] += np.bincount(part, minlength=self.counts.shape[1])
            self.filled[self.head] += len(part)
            i += len(part)

    def total(self) -> np.ndarray:
        return self.counts.sum(axis=0)


class DriftMonitor:
    def __init__(self, profile: dict[str, Any], model: str, version: str, window: int = 5000, buckets: int = 10, min_samples: int = 500) -> None:
        self.model = model
        self.version = version
        self.window = window
        self.min_samples = min(min_samples, window)
        per = max(1, window // buckets)
        self._lock = threading.Lock()
        self._edges = {k: np.asarray(v["edges"]) for k, v in profile["numeric"].items()}
        self._ref = {k: np.asarray(v["counts"], float) for k, v in profile["numeric"].items()}
        self._cats = {k: {c: i for i, c in enumerate(v["categories"])} for k, v in profile["categorical"].items()}
        self._ref_cat = {k: np.asarray(v["counts"], float) for k, v in profile["categorical"].items()}
        self._score_edges = np.asarray(profile["score"]["edges"])
        self._ref_score = np.asarray(profile["score"]["counts"], float)
        self._rings = {k: _Ring(len(e) + 1, buckets, per) for k, e in self._edges.items()}
        self._cat_rings = {k: _Ring(len(c), buckets, per) for k, c in self._cats.items()}
        self._score_ring = _Ring(len(self._score_edges) + 1, buckets, per)
        self.samples_seen = 0

    @property
    def features(self) -> list[str]:
        return [*self._edges, *self._cats]

    def observe(self, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray], scores: np.ndarray) -> None:
        binned = {k: np.searchsorted(self._edges[k], np.nan_to_num(np.asarray(v, float)), side="right") for k, v in numeric.items() if k in self._edges}
        cat_binned = {}
        for k, v in categorical.items():
            if k in self._cats:
                idx = self._cats[k]
                other = idx[OTHER]
                cat_binned[k] = np.fromiter((idx.get(str(x), other) for x in v), dtype=np.int64, count=len(v))
        sb = np.searchsorted(self._score_edges, np.asarray(scores, float), side="right")
        with self._lock:
            for k, b in binned.items():
                self._rings[k].add(b)
            for k, b in cat_binned.items():
                self._cat_rings[k].add(b)
            self._score_ring.add(sb)
            self.samples_seen += len(sb)

    def window_samples(self) -> int:
        with self._lock:
            return int(self._score_ring.filled.sum())

    def snapshot(self) -> dict[str, Any]:
        """{"samples": n, "features": {name: {method: value}}, "prediction": {method: value}} (empty until min_samples)."""
        with self._lock:
            cur = {k: r.total() for k, r in self._rings.items()}
            cur_cat = {k: r.total() for k, r in self._cat_rings.items()}
            cur_score = self._score_ring.total()
            n = int(self._score_ring.filled.sum())
        out: dict[str, Any] = {"samples": n, "features": {}, "prediction": {}}
        if n < self.min_samples:
            return out
        for k, c in cur.items():
            out["features"][k] = {m: f(self._ref[k], c) for m, f in METHODS.items()}
        for k, c in cur_cat.items():
            out["features"][k] = {m: f(self._ref_cat[k], c) for m, f in METHODS.items()}
        out["prediction"] = {m: f(self._ref_score, cur_score) for m, f in METHODS.items()}
        return out
