"""The Great Expectations suites of the forecasting capstone: stores and products (reference tables), the plan, then sales.

Sales rows fail (and can be quarantined) when the demand is negative, when the series is unknown
(its store or product is not in the reference tables, or ``series_id`` is not the pair's key), when
the same series has two rows for one day (every copy is set aside: which one counts cannot be told),
when a covariate is out of range, on nulls, and on timestamps
in the future. Table-level checks: the columns, a minimum row count, freshness.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kindml.config import ValidationConfig

SALES_COLUMNS: dict[str, str] = {"sale_id": "int64", "series_id": "int64", "store_id": "int64", "product_id": "int64", "demand": "float64",
                                 "promo": "int64", "holiday": "int64", "temperature": "float64", "event_timestamp": "datetime64[ns, UTC]"}
PLAN_COLUMNS: dict[str, str] = {k: v for k, v in SALES_COLUMNS.items() if k not in ("sale_id", "demand")}
STORE_COLUMNS: dict[str, str] = {"store_id": "int64", "region": "string"}
PRODUCT_COLUMNS: dict[str, str] = {"product_id": "int64", "category": "string"}
MIN_ROWS = 500


def _covariates(E: Any) -> list[Any]:
    return [E.ExpectColumnValuesToBeInSet(column="promo", value_set=[0, 1]),
            E.ExpectColumnValuesToBeInSet(column="holiday", value_set=[0, 1]),
            E.ExpectColumnValuesToBeBetween(column="temperature", min_value=-50.0, max_value=60.0)]


def sales_suite(cfg: ValidationConfig, series_ids: np.ndarray, store_ids: np.ndarray, product_ids: np.ndarray, now: datetime,
                min_rows: int = MIN_ROWS) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=list(SALES_COLUMNS), exact_match=True),
        E.ExpectTableRowCountToBeBetween(min_value=min_rows),
    ]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in SALES_COLUMNS]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="sale_id"),
        E.ExpectColumnValuesToBeBetween(column="demand", min_value=0.0),
        E.ExpectCompoundColumnsToBeUnique(column_list=["series_id", "event_timestamp"]),  # one row per series and day
        E.ExpectColumnValuesToBeInSet(column="series_id", value_set=[int(s) for s in series_ids]),
        E.ExpectColumnValuesToBeInSet(column="store_id", value_set=[int(s) for s in store_ids]),
        E.ExpectColumnValuesToBeInSet(column="product_id", value_set=[int(p) for p in product_ids]),
        *_covariates(E),
        E.ExpectColumnValuesToBeBetween(column="event_timestamp", max_value=now + timedelta(hours=1)),
    ]
    if cfg.freshness_days is not None:
        exps.append(E.ExpectColumnMaxToBeBetween(column="event_timestamp", min_value=now - timedelta(days=cfg.freshness_days)))
    return exps


def plan_suite(series_ids: np.ndarray) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableColumnsToMatchSet(column_set=list(PLAN_COLUMNS), exact_match=True),
        *[E.ExpectColumnValuesToNotBeNull(column=c) for c in PLAN_COLUMNS],
        E.ExpectCompoundColumnsToBeUnique(column_list=["series_id", "event_timestamp"]),
        E.ExpectColumnValuesToBeInSet(column="series_id", value_set=[int(s) for s in series_ids]),
        *_covariates(E),
    ]


def store_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [E.ExpectTableColumnsToMatchSet(column_set=list(STORE_COLUMNS), exact_match=True),
            E.ExpectColumnValuesToNotBeNull(column="store_id"), E.ExpectColumnValuesToBeUnique(column="store_id")]


def product_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [E.ExpectTableColumnsToMatchSet(column_set=list(PRODUCT_COLUMNS), exact_match=True),
            E.ExpectColumnValuesToNotBeNull(column="product_id"), E.ExpectColumnValuesToBeUnique(column="product_id")]
