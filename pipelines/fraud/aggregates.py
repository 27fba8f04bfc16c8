"""Batch feature engineering: daily account and merchant snapshots.

A snapshot for day ``d`` summarises the transactions of the window ending with
day ``d`` and is stamped at midnight after ``d`` (``event_timestamp``), so a
point-in-time join only ever hands a transaction the history that was complete
before it happened: no label or future leakage.

These tables are the offline sources of the Feast feature views.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kindml.pipelines.fraud.schema import NIGHT_HOURS, RISKY_CATEGORIES

DAY_NS = 86_400 * 10**9

ACCOUNT_FEATURES: tuple[str, ...] = (
    "txn_count_1d",
    "txn_count_7d",
    "txn_count_30d",
    "amount_sum_7d",
    "amount_mean_30d",
    "amount_std_30d",
    "amount_max_30d",
    "log_amount_mean_30d",
    "log_amount_std_30d",
    "online_share_30d",
    "night_share_30d",
    "foreign_share_30d",
    "risky_share_30d",
    "distinct_merchants_30d",
    "credit_utilization_30d",
    "account_age_days",
    "credit_limit",
)
ACCOUNT_STRING_FEATURES: tuple[str, ...] = ("home_country",)
MERCHANT_FEATURES: tuple[str, ...] = ("merchant_txn_count_30d", "merchant_amount_mean_30d", "merchant_account_count_30d")


def _day_index(ts: pd.Series, start: pd.Timestamp) -> np.ndarray:
    return ((ts.to_numpy(dtype="datetime64[ns]").astype(np.int64) - start.value) // DAY_NS).astype(np.int64)


def _window(grid: np.ndarray, width: int) -> np.ndarray:
    """Sum over the trailing ``width`` days (inclusive) along axis 1."""
    c = np.cumsum(grid, axis=1)
    out = c.copy()
    out[:, width:] -= c[:, :-width]
    return out


def _rolling_distinct(keys_a: np.ndarray, keys_b: np.ndarray, day: np.ndarray, n_a: int, n_days: int, width: int) -> np.ndarray:
    """For each (a, d): number of distinct b seen with a in days [d-width+1, d]."""
    if len(day) == 0:
        return np.zeros((n_a, n_days))
    trip = pd.DataFrame({"a": keys_a, "b": keys_b, "d": day}).drop_duplicates().sort_values(["a", "b", "d"])
    a = trip["a"].to_numpy()
    b = trip["b"].to_numpy()
    d = trip["d"].to_numpy()
    # each sighting covers [d, d + width - 1]; merge overlapping covers of the same pair
    same_pair = np.r_[False, (a[1:] == a[:-1]) & (b[1:] == b[:-1])]
    prev_end = np.r_[-(10**9), d[:-1] + width - 1]
    new_interval = ~same_pair | (d > prev_end + 1)
    interval_id = np.cumsum(new_interval) - 1
    starts = d[new_interval]
    ends = pd.Series(d + width - 1).groupby(interval_id).max().to_numpy()
    owners = a[new_interval]
    diff = np.zeros((n_a, n_days + width + 1))
    np.add.at(diff, (owners, starts), 1)
    np.add.at(diff, (owners, np.minimum(ends + 1, n_days + width)), -1)
    return np.cumsum(diff, axis=1)[:, :n_days]


def account_daily(transactions: pd.DataFrame, accounts: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """One row per (account, day) the account exists: trailing-window aggregates."""
    acc = accounts.reset_index(drop=True)
    pos = pd.Series(np.arange(len(acc)), index=acc["account_id"].to_numpy())
    tx = transactions[transactions["account_id"].isin(pos.index)]
    a = pos.loc[tx["account_id"].to_numpy()].to_numpy()
    d = _day_index(tx["event_timestamp"], start)
    keep = (d >= 0) & (d < days)
    a, d, tx = a[keep], d[keep], tx.loc[keep]
    n = len(acc)
    amount = tx["amount"].to_numpy(dtype=np.float64)
    hour = tx["event_timestamp"].dt.hour.to_numpy()
    home = acc["home_country"].to_numpy()[a]

    def grid(values: np.ndarray | None = None) -> np.ndarray:
        g = np.zeros((n, days))
        np.add.at(g, (a, d), 1.0 if values is None else values)
        return g

    count = grid()
    c1, c7, c30 = count, _window(count, 7), _window(count, 30)
    s_amt = grid(amount)
    s7, s30 = _window(s_amt, 7), _window(s_amt, 30)
    sq30 = _window(grid(amount**2), 30)
    log_amt = np.log1p(amount)
    ls30 = _window(grid(log_amt), 30)
    lsq30 = _window(grid(log_amt**2), 30)
    mx = np.zeros((n, days))
    np.maximum.at(mx, (a, d), amount)
    mx30 = pd.DataFrame(mx.T).rolling(30, min_periods=1).max().to_numpy().T
    online30 = _window(grid((tx["channel"].to_numpy() == "online").astype(float)), 30)
    night30 = _window(grid(((hour >= NIGHT_HOURS[0]) & (hour < NIGHT_HOURS[1])).astype(float)), 30)
    foreign30 = _window(grid((tx["country"].to_numpy() != home).astype(float)), 30)
    risky30 = _window(grid(np.isin(tx["merchant_category"].to_numpy(), RISKY_CATEGORIES).astype(float)), 30)
    distinct30 = _rolling_distinct(a, tx["merchant_id"].to_numpy(), d, n, days, 30)

    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.maximum(c30, 1.0)
        mean30 = np.where(c30 > 0, s30 / safe, 0.0)
        var30 = np.where(c30 > 1, (sq30 - c30 * mean30**2) / np.maximum(c30 - 1, 1.0), 0.0)
        std30 = np.sqrt(np.maximum(var30, 0.0))
        lmean30 = np.where(c30 > 0, ls30 / safe, 0.0)
        lvar30 = np.where(c30 > 1, (lsq30 - c30 * lmean30**2) / np.maximum(c30 - 1, 1.0), 0.0)
        lstd30 = np.sqrt(np.maximum(lvar30, 0.0))
    snap_ts = start.value + (np.arange(days) + 1) * DAY_NS
    created = acc["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    exists = created[:, None] < snap_ts[None, :]
    ii, dd = np.nonzero(exists)
    credit = acc["credit_limit"].to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            "account_id": acc["account_id"].to_numpy()[ii].astype(np.int64),
            "event_timestamp": pd.to_datetime(snap_ts[dd], utc=True),
            "txn_count_1d": c1[ii, dd],
            "txn_count_7d": c7[ii, dd],
            "txn_count_30d": c30[ii, dd],
            "amount_sum_7d": np.round(s7[ii, dd], 4),
            "amount_mean_30d": np.round(mean30[ii, dd], 4),
            "amount_std_30d": np.round(std30[ii, dd], 4),
            "amount_max_30d": mx30[ii, dd],
            "log_amount_mean_30d": np.round(lmean30[ii, dd], 6),
            "log_amount_std_30d": np.round(lstd30[ii, dd], 6),
            "online_share_30d": online30[ii, dd] / safe[ii, dd],
            "night_share_30d": night30[ii, dd] / safe[ii, dd],
            "foreign_share_30d": foreign30[ii, dd] / safe[ii, dd],
            "risky_share_30d": risky30[ii, dd] / safe[ii, dd],
            "distinct_merchants_30d": distinct30[ii, dd],
            "credit_utilization_30d": np.round(s30[ii, dd] / credit[ii], 6),
            "account_age_days": np.round((snap_ts[dd] - created[ii]) / DAY_NS, 3),
            "credit_limit": credit[ii],
            "home_country": acc["home_country"].to_numpy()[ii].astype(str),
        }
    )
    return out


def merchant_daily(transactions: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """One row per (merchant seen in history, day from its first sighting)."""
    d = _day_index(transactions["event_timestamp"], start)
    keep = (d >= 0) & (d < days)
    tx = transactions.loc[keep]
    d = d[keep]
    ids, m = np.unique(tx["merchant_id"].to_numpy(dtype=np.int64), return_inverse=True)
    n = len(ids)
    count = np.zeros((n, days))
    np.add.at(count, (m, d), 1.0)
    amt = np.zeros((n, days))
    np.add.at(amt, (m, d), tx["amount"].to_numpy(dtype=np.float64))
    c30, s30 = _window(count, 30), _window(amt, 30)
    accounts30 = _rolling_distinct(m, tx["account_id"].to_numpy(), d, n, days, 30)
    first = np.argmax(count > 0, axis=1)
    seen = np.arange(days)[None, :] >= first[:, None]
    ii, dd = np.nonzero(seen)
    snap_ts = start.value + (np.arange(days) + 1) * DAY_NS
    out = pd.DataFrame(
        {
            "merchant_id": ids[ii],
            "event_timestamp": pd.to_datetime(snap_ts[dd], utc=True),
            "merchant_txn_count_30d": c30[ii, dd],
            "merchant_amount_mean_30d": np.round(np.where(c30[ii, dd] > 0, s30[ii, dd] / np.maximum(c30[ii, dd], 1.0), 0.0), 4),
            "merchant_account_count_30d": accounts30[ii, dd],
        }
    )
    return out
