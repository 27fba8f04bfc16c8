"""The predictor's request contract (v1 ``instances`` and v2 columnar ``inputs``) and its validation.

A request is a batch of transactions. Each needs ``account_id``, ``merchant_id``,
``amount``, ``merchant_category``, ``channel``, ``country`` and either
``event_timestamp`` (ISO 8601) or ``hour`` (0-23). Feature values are looked
up in Feast by ``account_id``/``merchant_id``. A request may instead carry
every feature of the feature service itself ("fully specified rows", for batch
scoring and tests): then Feast is not consulted. Every problem is reported as
one :class:`RequestError` naming the field and the row.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kindml.data.schema import CATEGORIES, CHANNELS, COUNTRIES
from kindml.features.aggregates import ACCOUNT_FEATURES, ACCOUNT_STRING_FEATURES, MERCHANT_FEATURES

MAX_BATCH = 1024
MAX_AMOUNT = 1e7
FEATURE_FIELDS: tuple[str, ...] = (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)
STRING_FEATURES: tuple[str, ...] = ACCOUNT_STRING_FEATURES
ENUMS: dict[str, tuple[str, ...]] = {"merchant_category": CATEGORIES, "channel": CHANNELS, "country": COUNTRIES}
REQUIRED: tuple[str, ...] = ("account_id", "merchant_id", "amount", "merchant_category", "channel", "country")
KNOWN_FIELDS = set(REQUIRED) | {"event_timestamp", "hour", "transaction_id"} | set(FEATURE_FIELDS) | set(STRING_FEATURES)


class RequestError(ValueError):
    """A client error: becomes HTTP 400 with this message."""


def _where(row: int | None, field: str) -> str:
    return f"instances[{row}].{field}" if row is not None else field


def _int(v: Any, row: int | None, field: str, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise RequestError(f"{_where(row, field)} must be an integer, got {type(v).__name__}")
    try:
        f = float(v)
    except ValueError:
        raise RequestError(f"{_where(row, field)} must be an integer, got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise RequestError(f"{_where(row, field)} must be an integer, got {v!r}")
    if f < minimum or f > 2**62:
        raise RequestError(f"{_where(row, field)} must be between {minimum} and 2^62, got {v!r}")
    return int(f)


def _float(v: Any, row: int | None, field: str, lo: float, hi: float, allow_none: bool = False) -> float:
    if v is None and allow_none:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError(f"{_where(row, field)} must be a number, got {type(v).__name__ if v is not None else 'null'}")
    f = float(v)
    if not math.isfinite(f):
        raise RequestError(f"{_where(row, field)} must be a finite number, got {v!r}")
    if not lo <= f <= hi:
        raise RequestError(f"{_where(row, field)} must be between {lo:g} and {hi:g}, got {v!r}")
    return f


def _enum(v: Any, row: int | None, field: str) -> str:
    allowed = ENUMS[field]
    if not isinstance(v, str) or v not in allowed:
        raise RequestError(f"{_where(row, field)} must be one of {', '.join(allowed)}; got {v!r}")
    return v


def _hour(inst: dict[str, Any], row: int | None) -> float:
    if "hour" in inst and inst["hour"] is not None:
        h = _int(inst["hour"], row, "hour")
        if h > 23:
            raise RequestError(f"{_where(row, 'hour')} must be between 0 and 23, got {h}")
        return float(h)
    ts = inst.get("event_timestamp")
    if ts is None:
        return float(datetime.now(UTC).hour)
    if not isinstance(ts, str):
        raise RequestError(f"{_where(row, 'event_timestamp')} must be an ISO 8601 string, got {type(ts).__name__}")
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(f"{_where(row, 'event_timestamp')} is not an ISO 8601 timestamp: {ts[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return float(parsed.astimezone(UTC).hour)


def parse_instances(instances: Any) -> tuple[dict[str, np.ndarray], bool]:
    """v1 ``instances`` (a list of objects) → columns; also whether rows carry their own features."""
    if not isinstance(instances, list):
        raise RequestError('"instances" must be a list of objects, one per transaction')
    if not instances:
        raise RequestError('"instances" is empty: send at least one transaction')
    if len(instances) > MAX_BATCH:
        raise RequestError(f'"instances" has {len(instances)} rows; the limit is {MAX_BATCH} per request — split the batch')
    first = instances[0]
    if not isinstance(first, dict):
        raise RequestError(f"instances[0] must be an object with fields {', '.join(REQUIRED)}, got {type(first).__name__}")
    with_features = any(f in first for f in FEATURE_FIELDS)
    cols: dict[str, list[Any]] = {k: [] for k in (*REQUIRED, "hour")}
    if with_features:
        for f in (*FEATURE_FIELDS, *STRING_FEATURES):
            cols[f] = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise RequestError(f"instances[{i}] must be an object, got {type(inst).__name__}")
        unknown = [k for k in inst if k not in KNOWN_FIELDS]
        if unknown:
            raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}")
        missing = [k for k in REQUIRED if k not in inst]
        if missing:
            raise RequestError(f"instances[{i}] is missing field(s): {', '.join(missing)}")
        cols["account_id"].append(_int(inst["account_id"], i, "account_id"))
        cols["merchant_id"].append(_int(inst["merchant_id"], i, "merchant_id"))
        cols["amount"].append(_float(inst["amount"], i, "amount", 0.0, MAX_AMOUNT))
        for f in ENUMS:
            cols[f].append(_enum(inst[f], i, f))
        cols["hour"].append(_hour(inst, i))
        if with_features:
            missing_f = [f for f in FEATURE_FIELDS if f not in inst]
            if missing_f:
                raise RequestError(f"instances[{i}] carries features but misses {', '.join(missing_f[:5])}"
                                   f"{' …' if len(missing_f) > 5 else ''}: send all features of the service, or none (Feast lookup)")
            for f in FEATURE_FIELDS:
                cols[f].append(_float(inst[f], i, f, -1e12, 1e12, allow_none=True))
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


def v2_to_instances(inputs: list[Any]) -> list[dict[str, Any]]:
    """Open inference protocol columnar inputs (one named 1-D tensor per field) → instance dicts."""
    if not inputs:
        raise RequestError('"inputs" is empty: send one 1-D tensor per field (account_id, merchant_id, amount, ...)')
    columns: dict[str, list[Any]] = {}
    n: int | None = None
    for inp in inputs:
        name = getattr(inp, "name", None)
        data = inp.data if hasattr(inp, "data") else None
        shape = list(getattr(inp, "shape", []) or [])
        if not isinstance(name, str) or name not in KNOWN_FIELDS:
            raise RequestError(f"input {name!r} is not a known field; expected {', '.join(REQUIRED)} (+ event_timestamp or hour)")
        if data is None:
            raise RequestError(f"input {name!r} has no data")
        if hasattr(data, "tolist"):
            data = data.tolist()
        if not isinstance(data, list):
            data = [data]
        if len(shape) != 1:
            raise RequestError(f"input {name!r} must be 1-D (shape [batch]), got shape {shape}")
        flat = [d.decode("utf-8", "replace") if isinstance(d, bytes) else d for d in data]
        if shape[0] != len(flat):
            raise RequestError(f"input {name!r}: shape {shape} does not match {len(flat)} values")
        if n is not None and len(flat) != n:
            raise RequestError(f"input {name!r} has {len(flat)} values, other inputs have {n}: every input needs one value per transaction")
        n = len(flat)
        columns[name] = flat
    assert n is not None
    if n > MAX_BATCH:
        raise RequestError(f"batch of {n} rows; the limit is {MAX_BATCH} per request — split the batch")
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]
