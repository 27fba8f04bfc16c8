"""The Great Expectations suites of the fraud capstone: accounts (reference table), then transactions (quarantinable)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kindml.config import ValidationConfig
from kindml.pipelines.fraud.schema import (
    CATEGORIES,
    CHANNELS,
    COUNTRIES,
    SEGMENTS,
    TRANSACTION_COLUMNS,
)

MIN_ROWS = 1_000


def transaction_suite(cfg: ValidationConfig, max_amount: float, account_ids: np.ndarray, now: datetime) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=list(TRANSACTION_COLUMNS), exact_match=True),
        E.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS),
    ]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in TRANSACTION_COLUMNS]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="transaction_id"),
        E.ExpectColumnValuesToBeBetween(column="amount", min_value=0.01, max_value=max_amount),
        E.ExpectColumnValuesToBeInSet(column="merchant_category", value_set=list(CATEGORIES)),
        E.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        E.ExpectColumnValuesToBeInSet(column="country", value_set=list(COUNTRIES)),
        E.ExpectColumnValuesToBeInSet(column="is_fraud", value_set=[0, 1]),
        E.ExpectColumnValuesToBeInSet(column="account_id", value_set=[int(a) for a in account_ids]),
        E.ExpectColumnValuesToBeBetween(column="merchant_id", min_value=1),
        # no timestamps from the future (one hour of clock skew allowed)
        E.ExpectColumnValuesToBeBetween(column="event_timestamp", max_value=now + timedelta(hours=1)),
    ]
    if cfg.freshness_days is not None:
        exps.append(E.ExpectColumnMaxToBeBetween(column="event_timestamp", min_value=now - timedelta(days=cfg.freshness_days)))
    return exps


def account_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToNotBeNull(column="account_id"),
        E.ExpectColumnValuesToBeUnique(column="account_id"),
        E.ExpectColumnValuesToNotBeNull(column="created_at"),
        E.ExpectColumnValuesToBeBetween(column="credit_limit", min_value=0, max_value=10_000_000),
        E.ExpectColumnValuesToBeInSet(column="home_country", value_set=list(COUNTRIES)),
        E.ExpectColumnValuesToBeInSet(column="segment", value_set=list(SEGMENTS)),
    ]
