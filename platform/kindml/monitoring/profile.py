"""The reference profile stored with a model version: binned training inputs, category mix, score distribution.

Built once at ``register`` time from the training (+ validation) rows and
stored next to the ONNX model in the registry; the predictor's
:class:`~kindml.monitoring.drift.DriftMonitor` compares its live windows with it.

Layout (JSON, ``kind: kindml.reference-profile``, ``version: 1``)::

    {"kind": ..., "version": 1, "created": ISO-8601, "rows": N, "bins": 10,
     "numeric":     {name: {"edges": [...], "counts": [...], "proportions": [...], "missing": k}},
     "categorical": {name: {"categories": [..., "__other__"], "counts": [...], "proportions": [...]}},
     "score":       {"edges": [...], "counts": [...], "proportions": [...], "missing": k}}

Numeric binning
    ``edges`` are *interior* cut points, strictly increasing; bin ``i`` holds
    ``edges[i-1] <= x < edges[i]`` (``np.searchsorted(edges, x, side="right")``),
    so bin 0 is everything below the first edge and the last bin everything at
    or above the last edge: live values outside the training range fall into the
    end bins. ``len(counts) == len(edges) + 1``; NaN is counted in ``missing``
    (±inf go to the end bins). Edges are the ``bins``-quantiles of the finite
    values, deduplicated, and then:

    - a column with at most ``bins`` distinct values (flags, small counts, a
      constant) gets one bin per distinct value, plus bins for anything between
      or beyond them: edges ``v`` and ``nextafter(v, +inf)`` for every value ``v``;
    - an *atom* (a single value holding at least ``1 / (2 * bins)`` of the rows,
      e.g. a mass of zeros) that became an edge also gets ``nextafter(atom, +inf)``
      as an edge, so the atom is a bin of its own instead of being lumped with
      the continuous values above it.

    Reference and live values must go through the same dtype path (the profile
    compares exact float values at atoms: feed float32-derived columns to both).

Categorical
    The ``max_categories`` most frequent categories (ties by name), sorted by
    name, then ``__other__`` (reference count 0 unless categories were cut) which
    receives every unseen category at serving time. Values are compared as
    ``str``.

``proportions`` are ``counts / rows`` (numeric proportions plus
``missing / rows`` sum to 1). The score distribution is binned like a numeric
feature.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kindml.errors import DataError, MonitoringError

PROFILE_KIND = "kindml.reference-profile"
PROFILE_VERSION = 1
OTHER = "__other__"
MAX_CATEGORIES = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumericReference(_Strict):
    edges: list[float]
    counts: list[int]
    proportions: list[float]
    missing: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _shape(self) -> NumericReference:
        if len(self.counts) != len(self.edges) + 1 or len(self.proportions) != len(self.counts):
            raise ValueError(f"needs len(counts) == len(proportions) == len(edges) + 1, got {len(self.counts)}, {len(self.proportions)}, {len(self.edges)}")
        if any(not np.isfinite(e) for e in self.edges):
            raise ValueError("edges must be finite")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        if any(c < 0 for c in self.counts):
            raise ValueError("counts must be >= 0")
        return self


class CategoricalReference(_Strict):
    categories: list[str]
    counts: list[int]
    proportions: list[float]

    @model_validator(mode="after")
    def _shape(self) -> CategoricalReference:
        if not self.categories or self.categories[-1] != OTHER:
            raise ValueError(f"the last category must be {OTHER!r}")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be unique")
        if len(self.counts) != len(self.categories) or len(self.proportions) != len(self.categories):
            raise ValueError("counts and proportions need one entry per category")
        if any(c < 0 for c in self.counts):
            raise ValueError("counts must be >= 0")
        return self


class ReferenceProfile(_Strict):
    kind: Literal["kindml.reference-profile"] = PROFILE_KIND
    version: Literal[1] = PROFILE_VERSION
    created: str = ""
    rows: int = Field(ge=1)
    bins: int = Field(ge=2, le=100)
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    score: NumericReference

    @model_validator(mode="after")
    def _names(self) -> ReferenceProfile:
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"feature(s) both numeric and categorical: {sorted(both)}")
        if any(not name for name in [*self.numeric, *self.categorical]):
            raise ValueError("feature names must be non-empty")
        return self


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior cut points for ``values`` (see the module docstring): strictly increasing, finite, maybe empty."""
    v = np.asarray(values, dtype=np.float64)
    v = np.sort(v[np.isfinite(v)])
    if v.size == 0:
        return np.empty(0)
    distinct = np.unique(v)
    if distinct.size <= bins:
        return np.unique(np.concatenate([distinct, np.nextafter(distinct, np.inf)]))
    qs = np.unique(np.quantile(v, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    share = (np.searchsorted(v, qs, side="right") - np.searchsorted(v, qs, side="left")) / v.size
    atoms = qs[share >= 1.0 / (2 * bins)]
    return np.unique(np.concatenate([qs, np.nextafter(atoms, np.inf)]))


def numeric_reference(values: np.ndarray, bins: int = 10) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    edges = quantile_edges(v, bins)
    nan = np.isnan(v)
    counts = np.bincount(np.searchsorted(edges, v[~nan], side="right"), minlength=edges.size + 1)
    rows = max(v.size, 1)
    return {
        "edges": edges.tolist(),
        "counts": counts.astype(int).tolist(),
        "proportions": (counts / rows).tolist(),
        "missing": int(nan.sum()),
    }


def categorical_reference(values: np.ndarray, max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    v = np.asarray(values).reshape(-1).astype(str)
    cats, counts = np.unique(v, return_counts=True)
    keep = cats != OTHER  # a literal "__other__" in the data is just another unseen value
    cats, counts = cats[keep], counts[keep]
    if cats.size > max_categories:
        order = np.lexsort((cats, -counts))[:max_categories]  # most frequent first, ties by name
        cats, counts = cats[np.sort(order)], counts[np.sort(order)]
    other = v.size - int(counts.sum())
    all_counts = [*counts.astype(int).tolist(), other]
    rows = max(v.size, 1)
    return {"categories": [*cats.tolist(), OTHER], "counts": all_counts, "proportions": [c / rows for c in all_counts]}


def build_profile(
    numeric: dict[str, np.ndarray],
    categorical: dict[str, np.ndarray],
    scores: np.ndarray,
    bins: int = 10,
    max_categories: int = MAX_CATEGORIES,
) -> dict[str, Any]:
    """The JSON-able reference profile of training inputs and scores (all arrays: one entry per row)."""
    scores = np.asarray(scores).reshape(-1)
    rows = scores.size
    if rows == 0:
        raise DataError("cannot build a reference profile from zero rows", "Pass the training rows (and their scores).")
    if not 2 <= bins <= 100:
        raise DataError(f"bins={bins} is out of range", "Use 2..100 bins (10-20 is typical).")
    for kind, cols in (("numeric", numeric), ("categorical", categorical)):
        for name, values in cols.items():
            if np.asarray(values).reshape(-1).size != rows:
                raise DataError(f"{kind} feature {name!r} has {np.asarray(values).size} values for {rows} scores",
                                "Every column of the reference profile needs one value per scored row.")
    profile = {
        "kind": PROFILE_KIND,
        "version": PROFILE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": int(rows),
        "bins": int(bins),
        "numeric": {name: numeric_reference(v, bins) for name, v in numeric.items()},
        "categorical": {name: categorical_reference(v, max_categories) for name, v in categorical.items()},
        "score": numeric_reference(scores, bins),
    }
    return validate_profile(profile).model_dump(mode="json")


def validate_profile(profile: dict[str, Any] | ReferenceProfile, source: str = "reference profile") -> ReferenceProfile:
    if isinstance(profile, ReferenceProfile):
        return profile
    try:
        return ReferenceProfile.model_validate(profile)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()[:5])
        raise MonitoringError(f"{source} is not a valid kindml reference profile: {problems}",
                              "Re-register the model version (the register stage writes reference_profile.json).") from None


def save_profile(profile: dict[str, Any], path: Path | str) -> Path:
    from kindml.workspace import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(validate_profile(profile).model_dump(mode="json"), indent=1) + "\n")
    return path


def load_profile(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MonitoringError(f"reference profile {path} does not exist", "Re-register the model version, or serve with --no-drift.") from None
    except (OSError, ValueError) as exc:
        raise MonitoringError(f"cannot read reference profile {path}: {exc}", "Re-register the model version, or serve with --no-drift.") from None
    return validate_profile(raw, str(path)).model_dump(mode="json")
