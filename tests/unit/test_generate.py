from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from kindml.data.load import content_hash
from kindml.pipelines.fraud.data import (
    DriftSpec,
    build_world,
    corrupt,
    generate_history,
    generate_live,
)


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(7, 300, 80, 30, date(2026, 1, 31))


def test_seeded_and_reproducible(world) -> None:  # type: ignore[no-untyped-def]
    a = generate_history(world, 5_000)
    b = generate_history(build_world(7, 300, 80, 30, date(2026, 1, 31)), 5_000)
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(generate_history(build_world(8, 300, 80, 30, date(2026, 1, 31)), 5_000))


def test_label_rate_and_window(world) -> None:  # type: ignore[no-untyped-def]
    tx = generate_history(world, 20_000)
    assert 0.005 < tx["is_fraud"].mean() < 0.08
    assert tx["event_timestamp"].min() >= world.start and tx["event_timestamp"].max() < world.end
    assert tx["transaction_id"].is_unique


def test_drift_moves_amounts_and_categories(world) -> None:  # type: ignore[no-untyped-def]
    clean = generate_live(world, 20_000, None)
    drifted = generate_live(world, 20_000, DriftSpec.from_severity(1.0))
    assert np.log(drifted["amount"]).mean() > np.log(clean["amount"]).mean() + 0.2
    shift = (drifted["merchant_category"].value_counts(normalize=True) - clean["merchant_category"].value_counts(normalize=True)).abs().sum()
    assert shift > 0.1
    new_merchants = ~drifted["merchant_id"].isin(world.merchant_ids())
    assert new_merchants.mean() > 0.1


def test_corruption_manifest_is_exact(world) -> None:  # type: ignore[no-untyped-def]
    tx = generate_history(world, 8_000)
    bad, manifest = corrupt(tx, 0.05, 1)
    assert manifest.rows == 400 and sum(manifest.counts.values()) == 400
    assert bad["amount"].isna().sum() == manifest.counts["null:amount"]
    assert (bad["amount"] < 0).sum() + (bad["amount"] > 25_000).sum() == manifest.counts["out_of_range:amount"]
    assert len(tx) == len(bad)  # corruption damages rows, never drops them
