"""The Great Expectations suites of the text capstone: customers (reference table), then tickets (quarantinable).

Ticket rows fail (and can be quarantined) when the text is empty or only
whitespace, longer than the limit, or has no letters at all (a non-text row:
digits, symbols, an id pasted by mistake); when the intent is not one of the
known labels; when the same customer sent the same text twice (every copy is
set aside: which one is the original cannot be told); or on the usual nulls,
unknown customers, unknown channels and future timestamps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from kindml.config import ValidationConfig
from kindml.pipelines.text.data import CHANNELS, COUNTRIES, INTENTS, MAX_TEXT_CHARS, PLANS

TICKET_COLUMNS: dict[str, str] = {"ticket_id": "string", "customer_id": "int64", "channel": "string", "text": "string",
                                  "intent": "string", "event_timestamp": "datetime64[ns, UTC]"}
CUSTOMER_COLUMNS: dict[str, str] = {"customer_id": "int64", "created_at": "datetime64[ns, UTC]", "plan": "string", "country": "string"}
MIN_ROWS = 500


def ticket_suite(cfg: ValidationConfig, customer_ids: np.ndarray, now: datetime) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    exps: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=list(TICKET_COLUMNS), exact_match=True),
        E.ExpectTableRowCountToBeBetween(min_value=MIN_ROWS),
    ]
    exps += [E.ExpectColumnValuesToNotBeNull(column=c) for c in TICKET_COLUMNS]
    exps += [
        E.ExpectColumnValuesToBeUnique(column="ticket_id"),
        E.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, max_value=MAX_TEXT_CHARS),
        E.ExpectColumnValuesToMatchRegex(column="text", regex=r"[A-Za-z]"),  # empty, blank and non-text rows have no letters
        E.ExpectCompoundColumnsToBeUnique(column_list=["customer_id", "text"]),
        E.ExpectColumnValuesToBeInSet(column="intent", value_set=list(INTENTS)),
        E.ExpectColumnValuesToBeInSet(column="channel", value_set=list(CHANNELS)),
        E.ExpectColumnValuesToBeInSet(column="customer_id", value_set=[int(c) for c in customer_ids]),
        E.ExpectColumnValuesToBeBetween(column="event_timestamp", max_value=now + timedelta(hours=1)),
    ]
    if cfg.freshness_days is not None:
        exps.append(E.ExpectColumnMaxToBeBetween(column="event_timestamp", min_value=now - timedelta(days=cfg.freshness_days)))
    return exps


def customer_suite() -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToNotBeNull(column="customer_id"),
        E.ExpectColumnValuesToBeUnique(column="customer_id"),
        E.ExpectColumnValuesToNotBeNull(column="created_at"),
        E.ExpectColumnValuesToBeInSet(column="plan", value_set=list(PLANS)),
        E.ExpectColumnValuesToBeInSet(column="country", value_set=list(COUNTRIES)),
    ]
