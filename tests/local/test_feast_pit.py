"""Point-in-time correctness of the Feast join on a hand-built case (real Feast, file offline store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kindml.features import store as fstore
from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES
from kindml.pipelines.fraud.definitions import FEATURE_SERVICE, feature_objects

pytestmark = pytest.mark.local


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def snapshot(account: int, when: str, count: float) -> dict:
    row = {f: 0.0 for f in ACCOUNT_FEATURES}
    row |= {"account_id": account, "event_timestamp": ts(when), "txn_count_30d": count, "home_country": "US"}
    return row


def test_point_in_time_join(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    acc = pd.DataFrame([
        snapshot(1, "2026-01-02", 10.0),  # valid 01-02 .. 01-04 (TTL 2 days)
        snapshot(1, "2026-01-03", 20.0),
        snapshot(1, "2026-01-10", 99.0),  # in the future of every entity row below except the last
        snapshot(2, "2026-01-03", 5.0),
    ])
    acc["account_id"] = acc["account_id"].astype("int64")
    mer = pd.DataFrame([{"merchant_id": 7, "event_timestamp": ts("2026-01-01"), **{f: 1.0 for f in MERCHANT_FEATURES}}])
    acc.to_parquet(data / "account_daily.parquet", index=False)
    mer.to_parquet(data / "merchant_daily.parquet", index=False)
    store = fstore.open_store(tmp_path / "repo", "pit_test")
    fstore.apply_definitions(store, feature_objects(data))
    entity = pd.DataFrame({
        "transaction_id": ["a", "b", "c", "d", "e", "f"],
        "account_id": np.array([1, 1, 1, 1, 2, 3], dtype="int64"),
        "merchant_id": np.array([7] * 6, dtype="int64"),
        "event_timestamp": [ts("2026-01-02 12:00"), ts("2026-01-03 00:00"), ts("2026-01-04 23:00"), ts("2026-01-09 12:00"),
                            ts("2026-01-03 06:00"), ts("2026-01-03 06:00")],
        "is_fraud": [0, 1, 0, 0, 1, 0],
    })
    out = fstore.historical_features(store, entity, FEATURE_SERVICE, "transaction_id").set_index("transaction_id")
    assert list(out.index) == list(entity["transaction_id"])  # nothing dropped, order kept
    got = out["txn_count_30d"]
    assert got["a"] == 10.0  # the snapshot before, not the later one
    assert got["b"] == 20.0  # a snapshot stamped exactly at the event time is complete and usable
    assert got["c"] == 20.0  # latest one still inside the TTL
    assert np.isnan(got["d"])  # last snapshot is 6 days old (TTL 2 days) and the next is in the future: unknown
    assert got["e"] == 5.0
    assert np.isnan(got["f"])  # an account the store has never seen
    assert out.attrs["restored_rows"] >= 1
    assert (out["is_fraud"].to_numpy() == entity["is_fraud"].to_numpy()).all()  # labels pass through untouched
