"""The Feast feature repo, defined in code.

Two entities (``account_id``, ``merchant_id``), two daily feature views with a
TTL, and one feature service (``fraud_model_v1``) that training and serving
both read: the same feature list, offline for training (point-in-time join)
and online for serving.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kindml.pipelines.fraud.aggregates import (
    ACCOUNT_FEATURES,
    ACCOUNT_STRING_FEATURES,
    MERCHANT_FEATURES,
)

FEATURE_SERVICE = "fraud_model_v1"
ACCOUNT_VIEW = "account_daily"
MERCHANT_VIEW = "merchant_daily"
# a daily snapshot stays valid for two days; older means the account went quiet
# and the feature store answers "unknown" (NaN/None), handled by the assembler.
SNAPSHOT_TTL = timedelta(days=2)


def feature_objects(data_dir: Path) -> list[object]:
    """Entities, sources, views and the service, pointing at ``data_dir``'s parquet files."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    account = Entity(name="account", join_keys=["account_id"], value_type=ValueType.INT64, description="A card account.")
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64, description="A merchant.")
    account_source = FileSource(
        name="account_daily_source",
        path=str(data_dir / "account_daily.parquet"),
        timestamp_field="event_timestamp",
    )
    merchant_source = FileSource(
        name="merchant_daily_source",
        path=str(data_dir / "merchant_daily.parquet"),
        timestamp_field="event_timestamp",
    )
    account_view = FeatureView(
        name=ACCOUNT_VIEW,
        entities=[account],
        ttl=SNAPSHOT_TTL,
        schema=[Field(name=f, dtype=Float64) for f in ACCOUNT_FEATURES]
        + [Field(name=f, dtype=String) for f in ACCOUNT_STRING_FEATURES],
        source=account_source,
        online=True,
        description="Trailing-window activity of an account, snapshotted at midnight UTC.",
        tags={"owner": "kindml", "window": "1d/7d/30d"},
    )
    merchant_view = FeatureView(
        name=MERCHANT_VIEW,
        entities=[merchant],
        ttl=SNAPSHOT_TTL,
        schema=[Field(name=f, dtype=Float64) for f in MERCHANT_FEATURES],
        source=merchant_source,
        online=True,
        description="Trailing 30-day activity of a merchant, snapshotted at midnight UTC.",
        tags={"owner": "kindml", "window": "30d"},
    )
    service = FeatureService(
        name=FEATURE_SERVICE,
        features=[account_view, merchant_view],
        description="Every feature the fraud model reads, for training and serving alike.",
    )
    return [account, merchant, account_source, merchant_source, account_view, merchant_view, service]


def feature_refs() -> list[str]:
    """``view:feature`` references of the feature service, in a stable order."""
    return [f"{ACCOUNT_VIEW}:{f}" for f in (*ACCOUNT_FEATURES, *ACCOUNT_STRING_FEATURES)] + [
        f"{MERCHANT_VIEW}:{f}" for f in MERCHANT_FEATURES
    ]
