"""Feature assembly: raw transaction fields + Feast features → the model's input vector.

Training and serving call the same :class:`Assembler`, driven by a versioned
``preprocessing.json`` that travels with every model version (next to its ONNX
file). The ONNX graph itself holds the standardisation (mean/std), so the
assembler only turns named raw values into engineered numbers, and fills what
the feature store did not know (a new account or merchant) with documented
defaults.

The assembler works on a mapping of column → numpy array, so a one-row request
costs microseconds and a 100k-row training frame is one vectorised pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES
from kindml.pipelines.fraud.schema import CATEGORIES, NIGHT_HOURS

SCHEMA_VERSION = 1
REQUEST_FIELDS: tuple[str, ...] = ("amount", "merchant_category", "channel", "country", "hour")

# What the model gets when Feast has no row (new account / new merchant / stale):
# "no history" — zero counts and sums — except the credit limit (median of training).
_ZERO_FILL = {f: 0.0 for f in (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)}

ENGINEERED: tuple[str, ...] = (
    "log_amount",
    "amount_vs_mean",
    "amount_z",
    "amount_vs_max",
    "amount_log_z",
    "hour_sin",
    "hour_cos",
    "is_night",
    "is_online",
    "is_contactless",
    "is_foreign",
    "log_txn_count_1d",
    "log_txn_count_7d",
    "log_txn_count_30d",
    "log_amount_sum_7d",
    "log_amount_mean_30d",
    "log_amount_std_30d",
    "log_amount_max_30d",
    "log_amount_mean_30d",
    "log_amount_std_30d",
    "online_share_30d",
    "night_share_30d",
    "foreign_share_30d",
    "risky_share_30d",
    "log_distinct_merchants_30d",
    "credit_utilization_30d",
    "log_account_age_days",
    "log_credit_limit",
    "account_known",
    "log_merchant_txn_count_30d",
    "log_merchant_amount_mean_30d",
    "log_merchant_account_count_30d",
    "merchant_known",
    *(f"cat_{c}" for c in CATEGORIES),
)


@dataclass
class PreprocessingSpec:
    """Everything needed to rebuild the model input from raw values; saved as JSON."""

    feature_service: str
    fill: dict[str, float] = field(default_factory=lambda: dict(_ZERO_FILL))
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    inputs: list[str] = field(default_factory=lambda: list(ENGINEERED))
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> PreprocessingSpec:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: preprocessing schema_version {data.get('schema_version')} is not {SCHEMA_VERSION}")
        return cls(**data)


def _num(cols: Mapping[str, Any], name: str, n: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Column as float64 with NaN/None replaced by ``fill``; also the 'was present' mask."""
    raw = cols.get(name)
    if raw is None:
        return np.full(n, fill), np.zeros(n, dtype=bool)
    arr = np.asarray(raw, dtype=object if not isinstance(raw, np.ndarray) else None)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    else:
        arr = arr.astype(np.float64, copy=False)
    present = np.isfinite(arr)
    return np.where(present, arr, fill), present


def _hours(cols: Mapping[str, Any], n: int) -> np.ndarray:
    if "hour" in cols:
        return np.asarray(cols["hour"], dtype=np.float64)
    ts = cols.get("event_timestamp")
    if ts is None:
        raise KeyError("hour")
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts), utc=True)).hour.to_numpy(dtype=np.float64)


class Assembler:
    def __init__(self, spec: PreprocessingSpec) -> None:
        self.spec = spec
        self._cat_index = {c: i for i, c in enumerate(spec.categories)}

    @property
    def n_inputs(self) -> int:
        return len(self.spec.inputs)

    def transform(self, cols: Mapping[str, Any]) -> np.ndarray:
        """Columns (request fields + Feast features, NaN/None where unknown) → float32 matrix."""
        amount = np.asarray(cols["amount"], dtype=np.float64)
        n = amount.shape[0]
        f = self.spec.fill
        g = {name: _num(cols, name, n, f.get(name, 0.0)) for name in (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)}
        v = {k: val for k, (val, _) in g.items()}
        account_known = g["txn_count_30d"][1] | g["account_age_days"][1]
        merchant_known = g["merchant_txn_count_30d"][1]
        hour = _hours(cols, n)
        channel = np.asarray(cols["channel"], dtype=object)
        country = np.asarray(cols["country"], dtype=object)
        home = cols.get("home_country")
        home_arr = np.asarray(home, dtype=object) if home is not None else np.full(n, None, dtype=object)
        is_foreign = np.array([h is not None and h == h and c != h for c, h in zip(country, home_arr, strict=True)], dtype=np.float64)
        cats = np.asarray(cols["merchant_category"], dtype=object)
        onehot = np.zeros((n, len(self.spec.categories)))
        idx = np.array([self._cat_index.get(c, -1) for c in cats])
        ok = idx >= 0
        onehot[np.flatnonzero(ok), idx[ok]] = 1.0
        log_amt = np.log1p(np.maximum(amount, 0.0))
        mean30 = v["amount_mean_30d"]
        std30 = v["amount_std_30d"]
        max30 = v["amount_max_30d"]
        cols_out = [
            log_amt,
            np.where(mean30 > 0, log_amt - np.log1p(mean30), 0.0),
            np.where(std30 > 0, np.clip((amount - mean30) / np.maximum(std30, 1.0), -10.0, 50.0), 0.0),
            np.where(max30 > 0, np.clip(amount / np.maximum(max30, 1.0), 0.0, 20.0), 1.0),
            np.where(v["log_amount_std_30d"] > 0, np.clip((log_amt - v["log_amount_mean_30d"]) / np.maximum(v["log_amount_std_30d"], 0.1), -10.0, 20.0), 0.0),
            np.sin(2 * math.pi * hour / 24.0),
            np.cos(2 * math.pi * hour / 24.0),
            ((hour >= NIGHT_HOURS[0]) & (hour < NIGHT_HOURS[1])).astype(np.float64),
            (channel == "online").astype(np.float64),
            (channel == "contactless").astype(np.float64),
            is_foreign,
            np.log1p(v["txn_count_1d"]),
            np.log1p(v["txn_count_7d"]),
            np.log1p(v["txn_count_30d"]),
            np.log1p(v["amount_sum_7d"]),
            np.log1p(mean30),
            np.log1p(std30),
            np.log1p(max30),
            v["log_amount_mean_30d"],
            v["log_amount_std_30d"],
            v["online_share_30d"],
            v["night_share_30d"],
            v["foreign_share_30d"],
            v["risky_share_30d"],
            np.log1p(v["distinct_merchants_30d"]),
            np.clip(v["credit_utilization_30d"], 0.0, 5.0),
            np.log1p(np.maximum(v["account_age_days"], 0.0)),
            np.log1p(v["credit_limit"]),
            account_known.astype(np.float64),
            np.log1p(v["merchant_txn_count_30d"]),
            np.log1p(v["merchant_amount_mean_30d"]),
            np.log1p(v["merchant_account_count_30d"]),
            merchant_known.astype(np.float64),
        ]
        x = np.column_stack([*cols_out, onehot]).astype(np.float32)
        if x.shape[1] != self.n_inputs:  # pragma: no cover - guards edits of ENGINEERED
            raise AssertionError(f"assembled {x.shape[1]} columns, spec says {self.n_inputs}")
        return x


def fit_spec(train_cols: Mapping[str, Any], feature_service: str) -> tuple[PreprocessingSpec, np.ndarray]:
    """Fill values and standardisation statistics from the training split only."""
    spec = PreprocessingSpec(feature_service=feature_service)
    credit = np.asarray(train_cols["credit_limit"], dtype=np.float64)
    spec.fill["credit_limit"] = float(np.nanmedian(credit)) if np.isfinite(credit).any() else 0.0
    x = Assembler(spec).transform(train_cols)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    spec.mean = [float(m) for m in mean]
    spec.std = [float(s) for s in std]
    return spec, x


