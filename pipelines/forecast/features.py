"""The forecasting capstone's Feast features: the demand history and the known future of every series, and the forecasts.

Every view is keyed by ``series_id`` (one int64 entity: the predictor's online lookup reads one join key
per view). A row of the ``sales`` table is a forecast origin: its ``event_timestamp`` is midnight starting
the day, and the point-in-time join must hand it only what was known then.

- ``demand_history`` (stamped at midnight *after* each day, so a day's own demand is never its feature):
  ``lag_1`` .. ``lag_14`` (demand 1..14 days before the origin), ``mean_7``, ``mean_28``, ``std_28``
  (rolling over the days before the origin), ``last_temperature``;
- ``demand_plan`` (stamped at the origin: promotions are planned, holidays are on the calendar, the
  weather is forecast): ``promo_next_1`` .. ``promo_next_H``, ``holiday_next_1`` .. ``holiday_next_H``,
  ``temperature_next_1`` (H = the horizon);
- ``series_forecasts`` (written by the batch stage): ``forecast`` (the next H days, from the origin),
  ``forecast_origin`` (days since the epoch).

No TTL (``ttl=0``): a snapshot holds until the next one. Feature services: ``forecast_v1`` (training and
batch: history + plan) and ``forecast_serving_v1`` (what the predictor reads: the precomputed forecast,
and history + plan for live scoring of series without one).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

LAGS = 14
HISTORY_VIEW = "demand_history"
PLAN_VIEW = "demand_plan"
FORECAST_VIEW = "series_forecasts"
FORECAST_TABLE = "series_forecasts"
FEATURE_SERVICE = "forecast_v1"
SERVING_SERVICE = "forecast_serving_v1"
NO_TTL = timedelta(0)
DAY_NS = 86_400 * 10**9
HISTORY_FEATURES: tuple[str, ...] = (*(f"lag_{k}" for k in range(1, LAGS + 1)), "mean_7", "mean_28", "std_28", "last_temperature")


def plan_features(horizon: int) -> tuple[str, ...]:
    return (*(f"promo_next_{h}" for h in range(1, horizon + 1)), *(f"holiday_next_{h}" for h in range(1, horizon + 1)), "temperature_next_1")


def _sorted(sales: pd.DataFrame) -> pd.DataFrame:
    return sales.sort_values(["series_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def demand_history(sales: pd.DataFrame) -> pd.DataFrame:
    """Per series and day: the lags and rolling statistics including that day, stamped at midnight after it (visible from
    the next origin on). Days missing in a series count as missing, not as zero demand (the rolling windows are by row)."""
    s = _sorted(sales)
    g = s.groupby("series_id", sort=False)["demand"]
    out = {"series_id": s["series_id"].to_numpy(np.int64),
           "event_timestamp": pd.to_datetime(s["event_timestamp"], utc=True).dt.floor("D") + pd.Timedelta(days=1)}
    for k in range(1, LAGS + 1):
        out[f"lag_{k}"] = g.shift(k - 1).to_numpy(np.float64)
    out["mean_7"] = g.transform(lambda x: x.rolling(7, min_periods=1).mean()).to_numpy(np.float64)
    out["mean_28"] = g.transform(lambda x: x.rolling(28, min_periods=1).mean()).to_numpy(np.float64)
    out["std_28"] = g.transform(lambda x: x.rolling(28, min_periods=2).std()).fillna(0.0).to_numpy(np.float64)
    out["last_temperature"] = s["temperature"].to_numpy(np.float64)
    df = pd.DataFrame(out)
    return df.round({c: 4 for c in HISTORY_FEATURES})


def demand_plan(sales: pd.DataFrame, plan: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Per series and origin day (every day of the window and the first day after it): the covariates of the ``horizon``
    days from the origin on, stamped at the origin. Origins whose horizon is not fully known are left out."""
    cols = ["series_id", "promo", "holiday", "temperature", "event_timestamp"]
    both = pd.concat([sales[cols], plan[cols]], ignore_index=True).drop_duplicates(["series_id", "event_timestamp"], keep="first")
    s = _sorted(both)
    g = s.groupby("series_id", sort=False)
    out = {"series_id": s["series_id"].to_numpy(np.int64), "event_timestamp": pd.to_datetime(s["event_timestamp"], utc=True).dt.floor("D")}
    for h in range(1, horizon + 1):
        out[f"promo_next_{h}"] = g["promo"].shift(-(h - 1)).to_numpy(np.float64)
    for h in range(1, horizon + 1):
        out[f"holiday_next_{h}"] = g["holiday"].shift(-(h - 1)).to_numpy(np.float64)
    out["temperature_next_1"] = s["temperature"].to_numpy(np.float64)
    df = pd.DataFrame(out)
    return df.dropna().reset_index(drop=True)


def _series() -> object:
    from feast import Entity, ValueType

    return Entity(name="series", join_keys=["series_id"], value_type=ValueType.INT64,
                  description="One product in one store (series_id = store_id * 10000 + product_id).")


def _view(name: str, fields: tuple[str, ...], data_dir: Path, description: str) -> object:
    from feast import FeatureView, Field, FileSource
    from feast.types import Float64

    return FeatureView(name=name, entities=[_series()], ttl=NO_TTL, schema=[Field(name=f, dtype=Float64) for f in fields],
                       source=FileSource(name=f"{name}_source", path=str(data_dir / f"{name}.parquet"), timestamp_field="event_timestamp"),
                       online=True, description=description, tags={"owner": "kindml", "workload": "forecast"})


def feature_objects(data_dir: Path, horizon: int) -> list[object]:
    """The entity, the history and plan views and the training / batch feature service."""
    from feast import FeatureService

    history = _view(HISTORY_VIEW, HISTORY_FEATURES, data_dir, "A series' demand before the origin: 14 daily lags, rolling means and spread.")
    plan = _view(PLAN_VIEW, plan_features(horizon), data_dir, "What is known about the next days at the origin: promotions, holidays, weather.")
    service = FeatureService(name=FEATURE_SERVICE, features=[history, plan], description="History and known future of a series at an origin.")
    return [_series(), history, plan, service]


def forecast_objects(data_dir: Path, horizon: int) -> list[object]:
    """The precomputed-forecasts view (written by the batch stage) and the predictor's feature service."""
    from feast import FeatureService, FeatureView, Field, FileSource
    from feast.types import Array, Float64

    forecasts = FeatureView(
        name=FORECAST_VIEW, entities=[_series()], ttl=NO_TTL,
        schema=[Field(name="forecast", dtype=Array(Float64)), Field(name="forecast_origin", dtype=Float64)],
        source=FileSource(name=f"{FORECAST_VIEW}_source", path=str(data_dir / f"{FORECAST_TABLE}.parquet"), timestamp_field="event_timestamp"),
        online=True, description="The next days' demand per series, precomputed by the batch stage with the served model.",
        tags={"owner": "kindml", "workload": "forecast", "written_by": "batch"},
    )
    history = _view(HISTORY_VIEW, HISTORY_FEATURES, data_dir, "A series' demand before the origin: 14 daily lags, rolling means and spread.")
    plan = _view(PLAN_VIEW, plan_features(horizon), data_dir, "What is known about the next days at the origin: promotions, holidays, weather.")
    serving = FeatureService(name=SERVING_SERVICE, features=[forecasts, history, plan],
                             description="What the forecast predictor reads: the precomputed forecast, history and plan for live scoring.")
    return [_series(), forecasts, serving]
