"""The Great Expectations suites of the recommendation capstone: items and users (reference tables), then ratings.

Rating rows fail (and can be quarantined) when the rating is outside 0.5..5 or not a half
star, when the user or the item is unknown, when the same user rated the same item twice
(every copy is set aside: which one counts cannot be told), on nulls, and on timestamps in the
future. Table-level checks: the columns, a minimum row count, and freshness (the newest rating
at most ``validation.freshness_days`` old).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kindml.config import ValidationConfig
from kindml.pipelines.recsys.data import RATINGS

RATING_COLUMNS: dict[str, str] = {"rating_id": "int64", "user_id": "int64", "item_id": "int64", "rating": "float64",
                                  "event_timestamp": "datetime64[ns, UTC]"}
ITEM_COLUMNS: dict[str, str] = {"item_id": "int64", "title": "string", "genres": "string"}
USER_COLUMNS: dict[str, str] = {"user_id": "int64", "signup_at": "datetime64[ns, UTC]"}
MIN_ROWS = 500


def rating_suite(cfg: ValidationConfig, user_ids: np.ndarray, item_ids: np.ndarray, now: datetime) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=list(RATING_COLUMNS), exact_match=True),
        E.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS),
    ]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in RATING_COLUMNS]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="rating_id"),
        E.ExpectColumnValuesToBeBetween(column="rating", min_value=0.5, max_value=5.0),
        E.ExpectColumnValuesToBeInSet(column="rating", value_set=list(RATINGS)),  # half stars only
        E.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "item_id"]),  # one rating per user and item
        E.ExpectColumnValuesToBeInSet(column="user_id", value_set=[int(u) for u in user_ids]),
        E.ExpectColumnValuesToBeInSet(column="item_id", value_set=[int(i) for i in item_ids]),
        E.ExpectColumnValuesToBeBetween(column="event_timestamp", max_value=now + timedelta(hours=1)),
    ]
    if cfg.freshness_days is not None:
        exps.append(E.ExpectColumnMaxToBeBetween(column="event_timestamp", min_value=now - timedelta(days=cfg.freshness_days)))
    return exps


def item_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableColumnsToMatchSet(column_set=list(ITEM_COLUMNS), exact_match=True),
        E.ExpectColumnValuesToNotBeNull(column="item_id"),
        E.ExpectColumnValuesToBeUnique(column="item_id"),
        E.ExpectColumnValuesToNotBeNull(column="genres"),
    ]


def user_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableColumnsToMatchSet(column_set=list(USER_COLUMNS), exact_match=True),
        E.ExpectColumnValuesToNotBeNull(column="user_id"),
        E.ExpectColumnValuesToBeUnique(column="user_id"),
        E.ExpectColumnValuesToNotBeNull(column="signup_at"),
    ]
