"""Actuals arrive later: join them to the batch forecasts, log the realised error, export it per series.

A forecasting workload's batch stage writes one row per entity (a series): its keys, the forecast
origin and a vector of H forecasts, value ``k`` for the period ``origin + k * step``
(:class:`~kindml.workload.contract.Horizon` says which columns). When the real values of those
periods arrive, :func:`join` matches them (keys, period start) to the forecast step that covered
them; :func:`series_errors` gives each series' realised WAPE, MAE and sMAPE (the forecast
evaluation's own metric functions, :mod:`kindml.model.metrics`); :func:`ingest` writes the joined
points into the :class:`~kindml.monitoring.quality.PredictionLog` as regression predictions with
their outcome, under ids derived from (model, version, series, origin, step) — ingesting the same
actuals again changes nothing. The predictor's :class:`~kindml.monitoring.quality.QualityCollector`
then exports the realised ``kindml_quality{metric="wape"}`` next to ``kindml_quality_reference``
(the holdout WAPE) and ``KindmlErrorDegraded`` compares them; :class:`SeriesErrorCollector` adds
the worst series (bounded cardinality) and the share of series above the holdout error.

The entry points: ``kindml feedback actuals FILE`` and the monitor stage (generated actuals).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.errors import DataError
from kindml.workload.contract import Horizon

SERIES_ERROR = "kindml_series_error"
SERIES_ABOVE = "kindml_series_above_reference"
SERIES_COUNT = "kindml_series_with_actuals"
ID_PREFIX = "act-"
SERIES_METRICS: tuple[str, ...] = ("wape", "mae", "smape")
DEFAULT_TOP = 10
DEFAULT_SERIES_WINDOW = 50_000
FORECASTS_FILE = "forecasts.parquet"
LAYOUT_FILE = "forecasts.json"
MAX_ERRORS_SHOWN = 5


class ActualsError(DataError):
    """Actuals that cannot be joined as given (missing columns, values that are not finite non-negative numbers)."""


# --- reading and checking ------------------------------------------------------------------------

def read_actuals(path: Path) -> pd.DataFrame:
    """An actuals table from CSV or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise ActualsError(f"no actuals file at {path}", "Pass a CSV or Parquet file (e.g. `kindml data generate --actuals --out DIR`).")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ActualsError(f"unsupported actuals file type {suffix or '(none)'!r}", "Use .csv or .parquet.")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ActualsError(f"cannot read {path}: {exc}", "Check the file's format matches its extension.") from None


def _fail(what: str, bad: pd.Series, frame: pd.DataFrame, hint: str) -> None:
    rows = [int(i) for i in np.flatnonzero(bad.to_numpy())]
    shown = ", ".join(str(r) for r in rows[:MAX_ERRORS_SHOWN]) + (f" (and {len(rows) - MAX_ERRORS_SHOWN} more)" if len(rows) > MAX_ERRORS_SHOWN else "")
    raise ActualsError(f"{len(rows)} of {len(frame)} actuals {what} (rows {shown})", hint)


def check_actuals(frame: pd.DataFrame, horizon: Horizon) -> pd.DataFrame:
    """The actuals as ``keys + [event_timestamp (UTC), value (float)]``, or :class:`ActualsError` naming what is wrong.

    Refused whole (nothing is logged): missing columns, an empty table, a missing / unparseable key or timestamp,
    a value that is not a finite number (or negative, for a non-negative horizon), two values for one key and period.
    """
    need = [*horizon.keys, "event_timestamp", horizon.value]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ActualsError(f"the actuals lack the column(s) {missing} (they have {list(frame.columns)})",
                           f"An actuals table needs {need}: the series key(s), the start of the period and the observed value.")
    if frame.empty:
        raise ActualsError("the actuals table is empty", "Pass at least one observed value.")
    df = frame[need].reset_index(drop=True).copy()
    for k in horizon.keys:
        _bad = df[k].isna()
        if _bad.any():
            _fail(f"have no {k}", _bad, df, f"Every row needs its {k}.")
        if pd.api.types.is_float_dtype(df[k]) and (df[k] == df[k].round()).all():
            df[k] = df[k].astype(np.int64)  # a CSV writer's 10001.0 is the series 10001
        elif not pd.api.types.is_numeric_dtype(df[k]):
            df[k] = df[k].astype(str)
    ts = pd.to_datetime(df["event_timestamp"], utc=True, errors="coerce")
    if ts.isna().any():
        _fail("have no valid event_timestamp", ts.isna(), df, "Use ISO dates or timestamps, e.g. 2026-02-01 or 2026-02-01T00:00:00Z.")
    df["event_timestamp"] = ts
    raw = df[horizon.value]
    value = pd.to_numeric(raw.where(~raw.map(lambda v: isinstance(v, bool))), errors="coerce")
    bad = value.isna() | ~np.isfinite(value.fillna(0.0).to_numpy(np.float64))
    if bad.any():
        _fail(f"have a {horizon.value} that is not a finite number", bad, df, f"{horizon.value} must be a number for every row.")
    if horizon.nonnegative and (value < 0).any():
        _fail(f"have a negative {horizon.value}", value < 0, df, f"{horizon.value} counts something: it cannot be below 0.")
    df[horizon.value] = value.astype(np.float64)
    dup = df.duplicated([*horizon.keys, "event_timestamp"], keep=False)
    if dup.any():
        _fail("repeat a (series, event_timestamp) pair", dup, df, "Give one value per series and period (sum or deduplicate first).")
    return df


# --- the join ------------------------------------------------------------------------------------

def entity_of(frame: pd.DataFrame, keys: Iterable[str]) -> pd.Series:
    """One string per row naming its series (the key values joined with ``|``)."""
    keys = list(keys)
    out = frame[keys[0]].astype(str)
    for k in keys[1:]:
        out = out + "|" + frame[k].astype(str)
    return out.reset_index(drop=True)


@dataclass
class Joined:
    """The actual points matched to a forecast step: ``rows`` (entity, origin, step, day, forecast, actual) and what
    could not be matched: actuals of series without a forecast (``unknown``), of a known series outside its horizon."""

    rows: pd.DataFrame
    unknown_series: list[str] = field(default_factory=list)
    unknown_rows: int = 0
    outside_horizon: int = 0

    @property
    def matched(self) -> int:
        return len(self.rows)


def expand(forecasts: pd.DataFrame, horizon: Horizon) -> pd.DataFrame:
    """Batch output rows → one row per (entity, forecast step): entity, origin, step, day, forecast."""
    need = [*horizon.keys, horizon.origin, horizon.forecast]
    missing = [c for c in need if c not in forecasts.columns]
    if missing:
        raise ActualsError(f"the batch forecasts lack the column(s) {missing}", "Run the batch stage again with this version of kindml.")
    vectors = [np.asarray(v, dtype=np.float64).reshape(-1) for v in forecasts[horizon.forecast]]
    lengths = np.array([len(v) for v in vectors], dtype=np.int64)
    origin = pd.to_datetime(forecasts[horizon.origin], utc=True).reset_index(drop=True)
    idx = np.repeat(np.arange(len(forecasts)), lengths)
    step = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, dtype=np.int64)
    out = pd.DataFrame({"entity": entity_of(forecasts, horizon.keys).to_numpy()[idx], "origin": origin.to_numpy()[idx], "step": step,
                        "forecast": np.concatenate(vectors) if vectors else np.zeros(0)})
    out["origin"] = pd.to_datetime(out["origin"], utc=True)
    out["day"] = out["origin"] + pd.to_timedelta(out["step"] * horizon.step_seconds, unit="s")
    return out


def join(forecasts: pd.DataFrame, actuals: pd.DataFrame, horizon: Horizon) -> Joined:
    """Match checked actuals (:func:`check_actuals`) to the forecast step whose period starts at their timestamp.

    When a series has forecasts from several origins that cover the same day, the latest origin's step is taken
    (what a user would have acted on)."""
    steps = expand(forecasts, horizon).sort_values(["entity", "day", "origin"]).drop_duplicates(["entity", "day"], keep="last")
    act = pd.DataFrame({"entity": entity_of(actuals, horizon.keys), "day": pd.to_datetime(actuals["event_timestamp"], utc=True),
                        "actual": actuals[horizon.value].to_numpy(np.float64)})
    known = act["entity"].isin(set(steps["entity"]))
    rows = steps.merge(act[known], on=["entity", "day"], how="inner")
    rows = rows[["entity", "origin", "step", "day", "forecast", "actual"]].sort_values(["entity", "day"]).reset_index(drop=True)
    return Joined(rows=rows, unknown_series=sorted(set(act.loc[~known, "entity"])), unknown_rows=int((~known).sum()),
                  outside_horizon=int(known.sum()) - len(rows))


# --- realised error per series -------------------------------------------------------------------

def series_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Per entity: ``wape``, ``mae``, ``smape`` and ``points`` of its joined (forecast, actual) points, worst WAPE first
    (a series whose actuals are all zero has no WAPE: NaN, listed last)."""
    from kindml.model.metrics import smape, wape

    out = []
    for entity, g in rows.groupby("entity", sort=True):
        a, f = g["actual"].to_numpy(np.float64), g["forecast"].to_numpy(np.float64)
        out.append({"entity": str(entity), "wape": wape(a, f), "mae": float(np.abs(a - f).mean()), "smape": smape(a, f), "points": len(g)})
    frame = pd.DataFrame(out, columns=["entity", "wape", "mae", "smape", "points"])
    return frame.sort_values(["wape", "entity"], ascending=[False, True], na_position="last", kind="stable").reset_index(drop=True)


def overall(rows: pd.DataFrame) -> dict[str, float]:
    """Realised WAPE / MAE / sMAPE over every joined point."""
    from kindml.model.metrics import smape, wape

    if rows.empty:
        return {}
    a, f = rows["actual"].to_numpy(np.float64), rows["forecast"].to_numpy(np.float64)
    return {"wape": wape(a, f), "mae": float(np.abs(a - f).mean()), "smape": smape(a, f)}


# --- into the prediction log ---------------------------------------------------------------------

def point_id(model: str, version: str, entity: str, origin: pd.Timestamp, step: int) -> str:
    """The deterministic prediction id of one forecast point (the same point → the same id, whenever it is ingested)."""
    key = f"{model}\x1f{version}\x1f{entity}\x1f{pd.Timestamp(origin).isoformat()}\x1f{int(step)}"
    return ID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]


def ingest(log: Any, model: str, version: str, joined: Joined, variant: str = "champion", at: float | None = None) -> dict[str, Any]:
    """Log the joined points as the version's regression predictions and join their actuals as outcomes.

    Idempotent: a point already in the log keeps its first forecast and actual (``duplicate``); ``joined`` counts the
    points whose actual is new."""
    from kindml.monitoring.quality import Prediction

    at = time.time() if at is None else at
    if model not in log.models():
        log.register_model(model, "regression")
    rows = joined.rows
    ids = [point_id(model, version, e, o, s) for e, o, s in zip(rows["entity"], rows["origin"], rows["step"], strict=True)]
    log.log(Prediction(id=pid, model=model, version=version, score=float(f), label=None, variant=variant, ts=at, entity=str(e))
            for pid, f, e in zip(ids, rows["forecast"], rows["entity"], strict=True))
    result = log.feedback(((pid, repr(float(a))) for pid, a in zip(ids, rows["actual"], strict=True)), at=at)
    return {"joined": len(result.joined), "duplicate": len(result.duplicate)}


# --- where the batch stage keeps the champion's forecasts ----------------------------------------

def forecasts_dir(workspace_root: Path, model: str, version: str) -> Path:
    return Path(workspace_root) / "batch" / model / f"v{version}"


def save_forecasts(workspace_root: Path, model: str, version: str, out: pd.DataFrame, horizon: Horizon, meta: dict[str, Any]) -> Path:
    """Keep a version's latest batch forecasts (and how to read them) where ``kindml feedback actuals`` finds them."""
    import json

    from kindml.data.load import write_parquet
    from kindml.workspace import atomic_write_text

    folder = forecasts_dir(workspace_root, model, version)
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet(out, folder / FORECASTS_FILE)
    atomic_write_text(folder / LAYOUT_FILE, json.dumps({"model": model, "version": str(version), "horizon": horizon.to_dict(), **meta}, indent=2, default=str))
    return folder


def load_forecasts(workspace_root: Path, model: str, version: str) -> tuple[pd.DataFrame, Horizon, dict[str, Any]]:
    import json

    folder = forecasts_dir(workspace_root, model, version)
    if not (folder / FORECASTS_FILE).is_file() or not (folder / LAYOUT_FILE).is_file():
        raise ActualsError(f"no batch forecasts of {model} v{version} in {folder.parent}",
                           "Run a pipeline with the batch stage for this version (e.g. `kindml run forecast`); actuals join to its forecasts.")
    meta = json.loads((folder / LAYOUT_FILE).read_text(encoding="utf-8"))
    return pd.read_parquet(folder / FORECASTS_FILE), Horizon.from_dict(meta["horizon"]), meta


def forecast_models(workspace_root: Path) -> list[str]:
    """Models with batch forecasts kept in the workspace."""
    base = Path(workspace_root) / "batch"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob(f"v*/{LAYOUT_FILE}"))) if base.is_dir() else []


def resolve_version(workspace_root: Path, tracking_uri: str, model_ref: str | None, champion_alias: str = "champion") -> tuple[str, str]:
    """(model, version) whose batch forecasts the actuals join to: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS`` (a bare
    name is its champion, the version the batch stage scored with and the predictor serves); without a reference the one
    model with forecasts in the workspace."""
    from kindml import registry

    if model_ref is None:
        models = forecast_models(workspace_root)
        if not models:
            raise ActualsError(f"no batch forecasts in the workspace ({Path(workspace_root) / 'batch'})",
                               "Run a forecasting pipeline with the batch stage first (e.g. `kindml run forecast`).")
        if len(models) > 1:
            raise ActualsError(f"batch forecasts of several models: {', '.join(models)}", "Choose one with --model NAME.")
        model_ref = models[0]
    name, version, alias = registry.parse_model_ref(model_ref, champion_alias)
    if version is not None:
        return name, version
    if not registry.store_exists(tracking_uri):
        raise ActualsError(f"no model registry at {tracking_uri}: cannot tell which version is {name}@{alias}",
                           "Pass the version explicitly: --model NAME@VERSION.")
    ref = registry.resolve(tracking_uri, name, alias=alias)
    if ref is None:
        raise ActualsError(f"model {name} has no version with the alias {alias!r}",
                           "See `kindml models list`; pass --model NAME@VERSION for a version that ran the batch stage.")
    return name, ref.version


def ingest_actuals(log: Any, model: str, version: str, forecasts: pd.DataFrame, horizon: Horizon, actuals: pd.DataFrame,
                   top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Check, join, log: the whole ingest of one actuals table for one version (what the CLI and the monitor stage call)."""
    checked = check_actuals(actuals, horizon)
    joined = join(forecasts, checked, horizon)
    logged = ingest(log, model, version, joined) if joined.matched else {"joined": 0, "duplicate": 0}
    per = series_errors(joined.rows)
    return {
        "model": model, "version": str(version), "rows": len(checked), "matched": joined.matched, **logged,
        "unknown_series": len(joined.unknown_series), "unknown_rows": joined.unknown_rows,
        "unknown_examples": joined.unknown_series[:MAX_ERRORS_SHOWN], "outside_horizon": joined.outside_horizon,
        "series": len(per), "realised": {k: round(v, 5) for k, v in overall(joined.rows).items() if math.isfinite(v)},
        "worst_series": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()} for r in per.head(top).to_dict(orient="records")],
    }


# --- Prometheus: per-series error with bounded cardinality ---------------------------------------

class SeriesErrorCollector:
    """A ``prometheus_client`` collector of the realised error per series, at scrape time, from the prediction log.

    For every (model, version) with ingested actuals: ``kindml_series_error{model, version, series, metric}`` of the
    ``top`` series with the highest WAPE only (bounded cardinality, whatever the number of series), and
    ``kindml_series_above_reference{model, version, metric}``: the share of series whose realised value is above the
    version's holdout value (``reference``: (model, version) → {metric: value}, shared with the QualityCollector);
    ``kindml_series_with_actuals{model, version}``: how many series have actuals.
    """

    def __init__(self, log: Any, reference: dict[tuple[str, str], dict[str, float]] | None = None, top: int = DEFAULT_TOP,
                 window: int = DEFAULT_SERIES_WINDOW) -> None:
        self.log = log
        self.reference = reference if reference is not None else {}
        self.top = top
        self.window = window

    def describe(self) -> Iterable[Any]:
        return self._families()

    @staticmethod
    def _families() -> tuple[Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(SERIES_ERROR, "Realised forecast error of the worst series (delayed actuals joined to batch forecasts).",
                              labels=["model", "version", "series", "metric"]),
            GaugeMetricFamily(SERIES_ABOVE, "Share of series whose realised error is above the version's holdout value.",
                              labels=["model", "version", "metric"]),
            GaugeMetricFamily(SERIES_COUNT, "Series with joined actuals.", labels=["model", "version"]),
        )

    def collect(self) -> Iterator[Any]:
        error, above, count = self._families()
        for (model, version), points in sorted(self.log.labelled_points(ID_PREFIX, self.window).items()):
            frame = pd.DataFrame(points, columns=["entity", "forecast", "actual"])
            frame["forecast"] = pd.to_numeric(frame["forecast"], errors="coerce")
            frame["actual"] = pd.to_numeric(frame["actual"], errors="coerce")
            per = series_errors(frame.dropna())
            if per.empty:
                continue
            count.add_metric([model, version], float(len(per)))
            for r in per.head(self.top).itertuples(index=False):
                for metric in SERIES_METRICS:
                    v = float(getattr(r, metric))
                    if math.isfinite(v):
                        error.add_metric([model, version, str(r.entity), metric], v)
            ref = self.reference.get((model, version), {})
            for metric in SERIES_METRICS:
                if isinstance(ref.get(metric), int | float) and math.isfinite(float(ref[metric])):
                    vals = per[metric].dropna()
                    if len(vals):
                        above.add_metric([model, version, metric], float((vals > float(ref[metric])).mean()))
        yield error
        yield above
        yield count
