"""The fraud predictor's request contract (v1 ``instances`` and v2 columnar ``inputs``), its answers and drift columns.

A request is a batch of transactions. Each needs ``account_id``, ``merchant_id``,
``amount``, ``merchant_category``, ``channel``, ``country`` and either
``event_timestamp`` (ISO 8601) or ``hour`` (0-23). Feature values are looked
up in Feast by ``account_id``/``merchant_id``. A request may instead carry
every feature of the feature service itself ("fully specified rows", for batch
scoring and tests): then Feast is not consulted. Every problem is reported as
one :class:`~kindml.serving.signature.RequestError` naming the field and the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from kindml.pipelines.fraud.aggregates import (
    ACCOUNT_FEATURES,
    ACCOUNT_STRING_FEATURES,
    MERCHANT_FEATURES,
)
from kindml.pipelines.fraud.schema import CATEGORIES, CHANNELS, COUNTRIES
from kindml.serving.signature import (
    MAX_BATCH,
    Answer,
    Parsed,
    RequestError,
    Signature,
    check_instances,
    choice,
    integer,
    number,
    v2_to_instances,
    where,
)

MAX_AMOUNT = 1e7
FEATURE_FIELDS: tuple[str, ...] = (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)
STRING_FEATURES: tuple[str, ...] = ACCOUNT_STRING_FEATURES
ENUMS: dict[str, tuple[str, ...]] = {"merchant_category": CATEGORIES, "channel": CHANNELS, "country": COUNTRIES}
REQUIRED: tuple[str, ...] = ("account_id", "merchant_id", "amount", "merchant_category", "channel", "country")
KNOWN_FIELDS = set(REQUIRED) | {"event_timestamp", "hour", "transaction_id"} | set(FEATURE_FIELDS) | set(STRING_FEATURES)
REQUEST_FIELDS = ("account_id", "merchant_id", "amount", "merchant_category", "channel", "country")
# engineered inputs (names in PreprocessingSpec.inputs) watched for drift, plus the raw amount
NUMERIC_INPUTS: tuple[str, ...] = ("log_amount", "amount_log_z", "log_txn_count_30d", "log_amount_mean_30d",
                                   "log_merchant_txn_count_30d", "merchant_known", "account_known", "is_night")
CATEGORICAL: tuple[str, ...] = ("merchant_category", "channel", "country")


def _hour(inst: dict[str, Any], row: int | None) -> float:
    if "hour" in inst and inst["hour"] is not None:
        h = integer(inst["hour"], row, "hour")
        if h > 23:
            raise RequestError(f"{where(row, 'hour')} must be between 0 and 23, got {h}")
        return float(h)
    ts = inst.get("event_timestamp")
    if ts is None:
        return float(datetime.now(UTC).hour)
    if not isinstance(ts, str):
        raise RequestError(f"{where(row, 'event_timestamp')} must be an ISO 8601 string, got {type(ts).__name__}")
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(f"{where(row, 'event_timestamp')} is not an ISO 8601 timestamp: {ts[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return float(parsed.astimezone(UTC).hour)


def parse_instances(instances: Any) -> tuple[dict[str, np.ndarray], bool]:
    """v1 ``instances`` (a list of objects) → columns; also whether rows carry their own features."""
    check_instances(instances, MAX_BATCH, "transaction", REQUIRED)
    with_features = any(f in instances[0] for f in FEATURE_FIELDS)
    cols: dict[str, list[Any]] = {k: [] for k in (*REQUIRED, "hour")}
    if with_features:
        for f in (*FEATURE_FIELDS, *STRING_FEATURES):
            cols[f] = []
    for i, inst in enumerate(instances):
        unknown = [k for k in inst if k not in KNOWN_FIELDS]
        if unknown:
            raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}")
        missing = [k for k in REQUIRED if k not in inst]
        if missing:
            raise RequestError(f"instances[{i}] is missing field(s): {', '.join(missing)}")
        cols["account_id"].append(integer(inst["account_id"], i, "account_id"))
        cols["merchant_id"].append(integer(inst["merchant_id"], i, "merchant_id"))
        cols["amount"].append(number(inst["amount"], i, "amount", 0.0, MAX_AMOUNT))
        for f, allowed in ENUMS.items():
            cols[f].append(choice(inst[f], i, f, allowed))
        cols["hour"].append(_hour(inst, i))
        if with_features:
            missing_f = [f for f in FEATURE_FIELDS if f not in inst]
            if missing_f:
                raise RequestError(f"instances[{i}] carries features but misses {', '.join(missing_f[:5])}"
                                   f"{' …' if len(missing_f) > 5 else ''}: send all features of the service, or none (Feast lookup)")
            for f in FEATURE_FIELDS:
                cols[f].append(number(inst[f], i, f, -1e12, 1e12, allow_none=True))
            hc = inst.get("home_country")
            if hc is not None and hc not in COUNTRIES:
                raise RequestError(f"instances[{i}].home_country must be one of {', '.join(COUNTRIES)} or null; got {hc!r}")
            cols["home_country"].append(hc)
    out: dict[str, np.ndarray] = {}
    for k, v in cols.items():
        if k in ("account_id", "merchant_id"):
            out[k] = np.asarray(v, dtype=np.int64)
        elif k in ENUMS or k in STRING_FEATURES:
            out[k] = np.asarray(v, dtype=object)
        else:
            out[k] = np.asarray(v, dtype=np.float64)
    return out, with_features


def monitored_columns(inputs: list[str], x: np.ndarray, cols: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(numeric, categorical) columns for the drift monitor from the assembled matrix and the raw columns."""
    index = {name: i for i, name in enumerate(inputs)}
    numeric = {name: x[:, index[name]].astype(np.float64) for name in NUMERIC_INPUTS if name in index}
    categorical = {name: np.asarray(cols[name], dtype=object).astype(str) for name in CATEGORICAL if name in cols}
    return numeric, categorical


class FraudSignature(Signature):
    entity_keys = ("account_id", "merchant_id")
    row_name = "transaction"

    def __init__(self, inputs: list[str], threshold: float) -> None:
        self.inputs = inputs  # the kit's engineered input names (drift columns)
        self.threshold = threshold

    @property
    def fields(self) -> dict[str, str]:
        f = {"account_id": "INT64", "merchant_id": "INT64", "amount": "FP64", "merchant_category": "BYTES", "channel": "BYTES",
             "country": "BYTES", "event_timestamp": "BYTES", "hour": "INT64", "transaction_id": "BYTES"}
        return f | {k: "FP64" for k in FEATURE_FIELDS} | {k: "BYTES" for k in STRING_FEATURES}

    @property
    def required(self) -> tuple[str, ...]:
        return REQUIRED

    @property
    def outputs(self) -> dict[str, str]:
        return {"score": "FP64", "decision": "BOOL", "account_known": "BOOL"}

    def parse_v1(self, instances: Any) -> Parsed:
        cols, with_features = parse_instances(instances)
        return Parsed(cols, len(cols["amount"]), lookup=not with_features)

    def parse_v2(self, inputs: list[Any]) -> Parsed:
        return self.parse_v1(v2_to_instances(inputs, KNOWN_FIELDS, MAX_BATCH, f"{', '.join(REQUIRED)} (+ event_timestamp or hour)"))

    def known_from_columns(self, cols: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return {"account_id": np.isfinite(cols["txn_count_30d"]) | np.isfinite(cols["account_age_days"]),
                "merchant_id": np.isfinite(cols["merchant_txn_count_30d"])}

    def respond(self, parsed: Parsed, probs: np.ndarray, known: dict[str, np.ndarray]) -> Answer:
        scores = np.asarray(probs, dtype=np.float64).reshape(-1)
        decisions = scores >= self.threshold
        account_known = known.get("account_id", np.zeros(len(scores), dtype=bool))
        preds = [{"score": round(float(s), 6), "decision": bool(d), "fraud": bool(d), "account_known": bool(k)}
                 for s, d, k in zip(scores, decisions, account_known, strict=True)]
        return Answer(preds, [("score", "FP64", scores.tolist()), ("decision", "BOOL", decisions.tolist()),
                              ("account_known", "BOOL", [bool(k) for k in account_known])])

    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        numeric, categorical = monitored_columns(self.inputs, feeds["features"], cols)
        numeric["amount"] = np.asarray(cols["amount"], dtype=np.float64)
        return numeric, categorical

    def instances(self, frame: Any) -> list[dict[str, Any]]:
        rows = frame.loc[:, [*REQUEST_FIELDS, "event_timestamp"]].copy()
        rows["event_timestamp"] = pd.to_datetime(rows["event_timestamp"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = []
        for rec in rows.to_dict(orient="records"):
            rec["account_id"] = int(rec["account_id"])
            rec["merchant_id"] = int(rec["merchant_id"])
            rec["amount"] = float(rec["amount"])
            out.append(rec)
        return out
