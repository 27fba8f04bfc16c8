"""The forecasting model kit: one global MLP over every series, predicting the next H days from lags and covariates.

Inputs per forecast origin (one row of ``sales``, its features from Feast point-in-time):

- ``level``: the series' mean demand over the 28 days before the origin (``mean_28``, at least 0.5);
- ``features``: the 14 lags and ``mean_7`` / ``std_28`` divided by the level (so one model fits series of
  every size), log level, the day of week of the origin (one-hot), the promotions and holidays of the
  next H days (``demand_plan``), the temperature of the last day and of the first forecast day.
  Standardised inside the graph.

The network predicts the next H days relative to the level; the graph multiplies by the level and clips
at zero, so the ONNX output ``forecast`` [n, H] is demand in units. The loss is the absolute error in
units over the batch's total level (a WAPE the optimiser can follow); the validation metric is
``1 - WAPE`` (higher is better, as Ray Tune and the checkpoint choice expect). A training row needs all H
future days of its series inside the same split, so no target crosses the train / validation boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.model.kit import ModelKit, OnnxSpec, frame_columns
from kindml.model.recipe import TorchRecipe
from kindml.pipelines.forecast.features import LAGS, plan_features

PREPROCESSING = "forecast_preprocessing.json"
SCHEMA_VERSION = 1
MIN_LEVEL = 0.5
DAY_NS = 86_400 * 10**9


@dataclass
class Forecasts:
    """Forecasts in units ``values`` [n, H] (day 1 first) and which rows came precomputed from the batch stage."""

    values: np.ndarray
    precomputed: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The forecasts as an array (what the platform's prediction log reads)."""
        return np.asarray(self.values, dtype=dtype)


def _torch() -> Any:
    import torch

    return torch


def build_mlp(n_in: int, horizon: int, hidden: int, mean: list[float], std: list[float], dropout: float) -> Any:
    torch = _torch()
    nn = torch.nn

    class Forecaster(nn.Module):
        """standardise → MLP → H relative values → × level, clipped at 0 (demand in units)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
            self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, horizon))

        def forward(self, features: Any, level: Any) -> Any:
            return torch.relu(self.net((features - self.mean) / self.std) + 1.0) * level

    return Forecaster()


class ForecastRecipe(TorchRecipe):
    """Ray Tune over width, learning rate and dropout; the DDP fit of the global MLP."""

    val_metric = "one_minus_wape"
    probability = "identity"
    predict_batch = 8192

    def search_space(self, cfg: Any) -> dict[str, Any]:
        from ray import tune

        return {"lr": tune.loguniform(1e-3, 1e-2), "hidden": tune.choice([64, 128]), "dropout": tune.choice([0.0, 0.1]),
                "batch_size": cfg.batch_size, "epochs": cfg.tune_epochs, "seed": cfg.seed}

    @property
    def tuned(self) -> tuple[str, ...]:
        return ("lr", "hidden", "dropout")

    def build(self, params: dict[str, Any], meta: dict[str, Any]) -> Any:
        return build_mlp(int(meta["n_inputs"]), int(meta["horizon"]), int(params["hidden"]), meta["mean"], meta["std"], float(params["dropout"]))

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"features": batch["features"], "level": batch["level"]}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        pred = model(**self.inputs(batch))
        return (pred - batch["y"].float()).abs().mean() / batch["level"].mean()

    def predict(self, model: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Forecasts in units, [n, H]."""
        torch = _torch()
        net = model.module if hasattr(model, "module") else model
        net.eval()
        n = len(arrays["features"])
        out = []
        with torch.no_grad():
            for i in range(0, n, self.predict_batch):
                out.append(net(*(torch.from_numpy(np.ascontiguousarray(arrays[k][i:i + self.predict_batch])) for k in ("features", "level"))).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def score(self, y: np.ndarray, p: np.ndarray) -> float:
        from kindml.model.metrics import wape

        return 1.0 - wape(y, p)


class ForecastKit(ModelKit):
    files = (PREPROCESSING,)

    def __init__(self, horizon: int = 7) -> None:
        self.recipe = ForecastRecipe()
        self.horizon = horizon
        self.state: dict[str, Any] | None = None

    @property
    def inputs(self) -> list[str]:
        return [*(f"lag_{k}" for k in range(1, LAGS + 1)), "mean_7", "std_28", "log_level", *(f"dow_{d}" for d in range(7)),
                *plan_features(self.horizon), "last_temperature"]

    # --- preprocessing --------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame) -> None:
        self.state = {"schema_version": SCHEMA_VERSION, "horizon": self.horizon, "inputs": self.inputs, "mean": [], "std": [],
                      "series_ids": np.sort(train["series_id"].unique()).astype(np.int64).tolist()}
        x, _ = self.matrix(frame_columns(train), len(train))
        std = x.std(axis=0)
        self.state["mean"] = [float(v) for v in x.mean(axis=0)]
        self.state["std"] = [float(s) if s > 1e-6 else 1.0 for s in std]

    def save(self, folder: Path) -> None:
        assert self.state is not None
        (Path(folder) / PREPROCESSING).write_text(json.dumps(self.state), encoding="utf-8")

    def load(self, folder: Path) -> ForecastKit:
        folder = Path(folder)
        path = folder / PREPROCESSING if (folder / PREPROCESSING).is_file() else next(iter(sorted(folder.rglob(PREPROCESSING))), None)
        if path is None:
            raise FileNotFoundError(f"{PREPROCESSING} not found under {folder}")
        self.state = json.loads(path.read_text(encoding="utf-8"))
        if self.state.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: forecast preprocessing schema_version {self.state.get('schema_version')} is not {SCHEMA_VERSION}")
        self.horizon = int(self.state["horizon"])
        return self

    def meta(self) -> dict[str, Any]:
        assert self.state is not None
        return {"n_inputs": len(self.state["inputs"]), "horizon": self.horizon, "mean": self.state["mean"], "std": self.state["std"]}

    def matrix(self, cols: Mapping[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
        """(features [n, F], level [n, 1]) from the Feast columns. A series without history (no ``mean_28``) gets level
        0.5 and lags equal to it; a missing lag (early days) is filled with ``mean_7``; missing plan flags are 0."""

        def col(name: str) -> np.ndarray:
            raw = cols.get(name)
            if raw is None:
                return np.full(n, np.nan)
            arr = np.asarray(raw)
            if arr.dtype.kind in "fiu":
                return arr.astype(np.float64)
            return pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(np.float64)

        m28 = col("mean_28")
        level = np.maximum(np.where(np.isfinite(m28), m28, MIN_LEVEL), MIN_LEVEL)
        m7 = col("mean_7")
        m7 = np.where(np.isfinite(m7), m7, level)
        out = [np.where(np.isfinite(v := col(f"lag_{k}")), v, m7) / level for k in range(1, LAGS + 1)]
        out += [m7 / level, np.nan_to_num(col("std_28"), nan=0.0) / level, np.log(level)]
        ts = cols.get("event_timestamp")
        if ts is None:
            origin = pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)
            dow = np.full(n, origin.dayofweek)
        else:
            dow = pd.DatetimeIndex(pd.to_datetime(pd.Series(np.asarray(ts)), utc=True)).dayofweek.to_numpy()
        out += [(dow == d).astype(np.float64) for d in range(7)]
        out += [np.nan_to_num(col(f), nan=0.0) for f in plan_features(self.horizon)[:-1]]
        last_t = col("last_temperature")
        next_t = col("temperature_next_1")
        out += [np.where(np.isfinite(next_t), next_t, np.nan_to_num(last_t, nan=15.0)), np.where(np.isfinite(last_t), last_t, 15.0)]
        return np.column_stack(out).astype(np.float32), level.reshape(-1, 1).astype(np.float32)

    def _targets(self, frame: pd.DataFrame) -> np.ndarray:
        """demand of days origin .. origin + H - 1 of each row's series, from rows of the same frame (NaN where missing)."""
        day = pd.to_datetime(frame["event_timestamp"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) // DAY_NS
        key = frame["series_id"].to_numpy(np.int64) * 1_000_000 + day
        demand = pd.Series(frame["demand"].to_numpy(np.float64), index=key)
        demand = demand[~demand.index.duplicated(keep="first")]
        return np.column_stack([demand.reindex(key + h).to_numpy() for h in range(self.horizon)])

    def complete(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows whose whole horizon lies in ``frame`` and that have at least a week of history (training and backtest rows)."""
        y = self._targets(frame)
        hist = pd.to_numeric(frame["lag_7"], errors="coerce").notna().to_numpy() if "lag_7" in frame else np.zeros(len(frame), bool)
        return np.isfinite(y).all(axis=1) & hist

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        rows = frame[self.complete(frame)]
        x, level = self.matrix(frame_columns(rows), len(rows))
        return {"features": x, "level": level}

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        return self._targets(frame)[self.complete(frame)].astype(np.float32)

    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        n = len(np.asarray(next(iter(cols.values())))) if cols else 0
        x, level = self.matrix(cols, n)
        return {"features": x, "level": level}

    def probabilities(self, outputs: list[np.ndarray]) -> Forecasts:
        """The ONNX outputs (forecasts[, precomputed flags]) as :class:`Forecasts`."""
        values = np.asarray(outputs[0], dtype=np.float64)
        flags = np.asarray(outputs[1], dtype=bool) if len(outputs) > 1 else np.zeros(len(values), dtype=bool)
        return Forecasts(values, flags)

    def predict(self, model: Any, frame: pd.DataFrame) -> Forecasts:
        """Forecasts of the torch model for every row of ``frame`` (origins)."""
        values = self.recipe.predict(model, self.feeds(frame_columns(frame))).astype(np.float64)
        return Forecasts(values, np.zeros(len(values), dtype=bool))

    def score(self, session: Any, cols: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Series with a forecast precomputed by the batch stage (``forecast`` from Feast) are answered from it; the others are
        scored live by the ONNX model from their history and plan. Outputs: forecasts [n, H], precomputed flags."""
        from kindml.model.export import run_onnx

        feeds = self.feeds(cols)
        n = len(feeds["level"])
        out = np.full((n, self.horizon), np.nan)
        pre_raw = cols.get("forecast")
        pre = np.array([pre_raw is not None and pre_raw[i] is not None and len(pre_raw[i]) == self.horizon for i in range(n)], dtype=bool)
        for i in np.nonzero(pre)[0]:
            out[i] = np.asarray(pre_raw[i], dtype=np.float64)
        live = np.nonzero(~pre)[0]
        if len(live):
            out[live] = run_onnx(session, {k: v[live] for k, v in feeds.items()})[0]
        return feeds, [out, pre]

    # --- export and serving -----------------------------------------------------------------------

    def onnx_module(self, model: Any) -> OnnxSpec:
        net = model.module if hasattr(model, "module") else model
        net.eval()
        f = len(self.inputs)
        example = {"features": np.zeros((2, f), dtype=np.float32), "level": np.ones((2, 1), dtype=np.float32)}
        return OnnxSpec(net, example, ["features", "level"], ["forecast"])

    def quantize(self, onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path) -> dict[str, Any]:
        from kindml.errors import ExportError

        raise ExportError("the forecasting model has no INT8 variant: two small dense layers on ~40 inputs run in microseconds per "
                          "series, and the quantize chooser's budget is a classification metric",
                          "Leave quantize.enabled off for the forecast workload.")

    def signature(self) -> Any:
        from kindml.pipelines.forecast.serving import ForecastSignature

        assert self.state is not None, "load the kit before asking for its signature"
        return ForecastSignature(self)
