"""Daily customer snapshots (the offline source of Feast view ``customer_daily``) and the text capstone's Feast objects.

A snapshot for day ``d`` summarises the customer's tickets of the window ending
with day ``d`` and is stamped at midnight after ``d``, so the point-in-time
join only ever hands a ticket the history that was complete before it was
written: the intents of *earlier* tickets (resolved by then), never its own.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from kindml.pipelines.text.data import INTENTS

DAY_NS = 86_400 * 10**9
VIEW = "customer_daily"
FEATURE_SERVICE = "ticket_intent_v1"
SNAPSHOT_TTL = timedelta(days=2)
SHARE_FEATURES: tuple[str, ...] = tuple(f"share_{i}_7d" for i in INTENTS)
NUMERIC_FEATURES: tuple[str, ...] = ("ticket_count_7d", "ticket_count_30d", "days_since_last_ticket", "account_age_days", *SHARE_FEATURES)
STRING_FEATURES: tuple[str, ...] = ("plan",)


def _window(grid: np.ndarray, width: int) -> np.ndarray:
    c = np.cumsum(grid, axis=1)
    out = c.copy()
    out[:, width:] -= c[:, :-width]
    return out


def customer_daily(tickets: pd.DataFrame, customers: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """One row per (customer, day) the customer exists: trailing ticket counts and intent shares."""
    cus = customers.reset_index(drop=True)
    pos = pd.Series(np.arange(len(cus)), index=cus["customer_id"].to_numpy())
    tk = tickets[tickets["customer_id"].isin(pos.index)]
    c = pos.loc[tk["customer_id"].to_numpy()].to_numpy()
    d = ((tk["event_timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) - start.value) // DAY_NS).astype(np.int64)
    keep = (d >= 0) & (d < days)
    c, d, tk = c[keep], d[keep], tk.loc[keep]
    n = len(cus)

    def grid(mask: np.ndarray | None = None) -> np.ndarray:
        g = np.zeros((n, days))
        sel = np.ones(len(c), dtype=bool) if mask is None else mask
        np.add.at(g, (c[sel], d[sel]), 1.0)
        return g

    count = grid()
    c7, c30 = _window(count, 7), _window(count, 30)
    intent = tk["intent"].to_numpy()
    shares = {f"share_{i}_7d": np.where(c7 > 0, _window(grid(intent == i), 7) / np.maximum(c7, 1.0), 0.0) for i in INTENTS}
    # days since the last ticket, as of the end of day d (large when none yet)
    last = np.where(count > 0, np.arange(days)[None, :], -1)
    last = np.maximum.accumulate(last, axis=1)
    since = np.where(last >= 0, np.arange(days)[None, :] - last, 365.0)
    snap_ts = start.value + (np.arange(days) + 1) * DAY_NS
    created = cus["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ii, dd = np.nonzero(created[:, None] < snap_ts[None, :])
    out = pd.DataFrame({
        "customer_id": cus["customer_id"].to_numpy()[ii].astype(np.int64),
        "event_timestamp": pd.to_datetime(snap_ts[dd], utc=True),
        "ticket_count_7d": c7[ii, dd],
        "ticket_count_30d": c30[ii, dd],
        "days_since_last_ticket": since[ii, dd].astype(np.float64),
        "account_age_days": np.round((snap_ts[dd] - created[ii]) / DAY_NS, 3),
        **{k: np.round(v[ii, dd], 6) for k, v in shares.items()},
        "plan": cus["plan"].to_numpy()[ii].astype(str),
    })
    return out


def feature_objects(data_dir: Path) -> list[object]:
    """The customer entity, its daily view and the feature service the intent model reads (training and serving)."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64, description="A customer writing tickets.")
    source = FileSource(name="customer_daily_source", path=str(data_dir / f"{VIEW}.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(
        name=VIEW,
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=[Field(name=f, dtype=Float64) for f in NUMERIC_FEATURES] + [Field(name=f, dtype=String) for f in STRING_FEATURES],
        source=source,
        online=True,
        description="A customer's recent tickets (counts, intent shares) and plan, snapshotted at midnight UTC.",
        tags={"owner": "kindml", "workload": "text", "window": "7d/30d"},
    )
    service = FeatureService(name=FEATURE_SERVICE, features=[view], description="Customer context of the ticket-intent model.")
    return [customer, source, view, service]
