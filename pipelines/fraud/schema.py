"""The raw data contract: column names, types and allowed values.

Generated data and bring-your-own files follow the same schema; validation
(Great Expectations) checks it, features and serving rely on it.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurants",
    "fuel",
    "retail",
    "health",
    "entertainment",
    "travel",
    "electronics",
    "digital_goods",
    "gambling",
)
RISKY_CATEGORIES: tuple[str, ...] = ("electronics", "digital_goods", "gambling", "travel")
CHANNELS: tuple[str, ...] = ("pos", "online", "contactless")
COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "MX", "BR")
SEGMENTS: tuple[str, ...] = ("standard", "premium", "business")

# transactions: one row per card transaction
TRANSACTION_COLUMNS: dict[str, str] = {
    "transaction_id": "string",
    "account_id": "int64",
    "merchant_id": "int64",
    "merchant_category": "string",
    "amount": "float64",
    "channel": "string",
    "country": "string",
    "event_timestamp": "datetime64[ns, UTC]",
    "is_fraud": "int64",
}
# accounts: one row per account (the Feast entity `account_id`)
ACCOUNT_COLUMNS: dict[str, str] = {
    "account_id": "int64",
    "created_at": "datetime64[ns, UTC]",
    "credit_limit": "float64",
    "home_country": "string",
    "segment": "string",
}
LABEL = "is_fraud"
TIMESTAMP = "event_timestamp"
NIGHT_HOURS = (0, 6)  # [start, end) in local hours: night transactions
