"""Delayed actuals of forecasts: the join to the forecast step, per-series errors (hand-computed), idempotent ingest into
the prediction log, the realised WAPE of the QualityCollector, the bounded per-series export, and refused input."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from kindml.errors import DataError
from kindml.monitoring.actuals import (
    ActualsError,
    SeriesErrorCollector,
    check_actuals,
    ingest_actuals,
    join,
    load_forecasts,
    point_id,
    read_actuals,
    save_forecasts,
    series_errors,
)
from kindml.monitoring.quality import PredictionLog, QualityCollector
from kindml.workload.contract import Horizon

pytestmark = pytest.mark.unit
H = Horizon(keys=("series_id",), value="demand")
ORIGIN = pd.Timestamp("2026-02-01", tz="UTC")


def day(k: int) -> pd.Timestamp:
    return ORIGIN + pd.Timedelta(days=k)


def forecasts() -> pd.DataFrame:
    """Two series forecast 3 days ahead from ORIGIN."""
    return pd.DataFrame({"series_id": [1, 2], "event_timestamp": [ORIGIN, ORIGIN], "forecast": [[10.0, 20.0, 30.0], [5.0, 5.0, 5.0]]})


def actuals() -> pd.DataFrame:
    return pd.DataFrame({"series_id": [1, 1, 1, 2, 2, 7, 1],
                         "event_timestamp": [day(0), day(1), day(2), day(0), day(2), day(0), day(5)],
                         "demand": [12.0, 20.0, 24.0, 0.0, 10.0, 3.0, 9.0]})


def test_join_matches_each_actual_to_the_step_covering_its_day() -> None:
    j = join(forecasts(), check_actuals(actuals(), H), H)
    r = j.rows
    assert list(zip(r["entity"], r["step"], r["forecast"], r["actual"], strict=True)) == [
        ("1", 0, 10.0, 12.0), ("1", 1, 20.0, 20.0), ("1", 2, 30.0, 24.0), ("2", 0, 5.0, 0.0), ("2", 2, 5.0, 10.0)]
    assert (r["day"] == r["origin"] + pd.to_timedelta(r["step"], unit="D")).all()
    # series 7 has no forecast (counted, not fatal); series 1 on day 5 lies past its 3-day horizon
    assert j.unknown_series == ["7"] and j.unknown_rows == 1 and j.outside_horizon == 1 and j.matched == 5


def test_join_takes_the_latest_origin_when_two_cover_a_day() -> None:
    f = pd.concat([forecasts(), pd.DataFrame({"series_id": [1], "event_timestamp": [day(1)], "forecast": [[99.0, 98.0, 97.0]]})])
    r = join(f, check_actuals(actuals(), H), H).rows
    one = r[r["entity"] == "1"]
    assert list(one["forecast"]) == [10.0, 99.0, 98.0] and list(one["step"]) == [0, 0, 1]


def test_per_series_errors_by_hand() -> None:
    per = series_errors(join(forecasts(), check_actuals(actuals(), H), H).rows).set_index("entity")
    # series 1: |12-10| + |20-20| + |24-30| = 8 over 56 units
    assert per.loc["1", "wape"] == pytest.approx(8 / 56) and per.loc["1", "mae"] == pytest.approx(8 / 3)
    assert per.loc["1", "smape"] == pytest.approx((2 * 2 / 22 + 0 + 2 * 6 / 54) / 3)
    # series 2: |0-5| + |10-5| = 10 over 10 units; sMAPE (2*5/5 + 2*5/15) / 2
    assert per.loc["2", "wape"] == pytest.approx(1.0) and per.loc["2", "mae"] == pytest.approx(5.0)
    assert per.loc["2", "smape"] == pytest.approx((2.0 + 2 / 3) / 2) and per.loc["2", "points"] == 2
    assert list(per.index) == ["2", "1"]  # worst WAPE first


def test_ingest_logs_points_once_and_the_quality_collector_exports_realised_wape(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    first = ingest_actuals(log, "fc", "3", forecasts(), H, actuals())
    assert first["joined"] == 5 and first["duplicate"] == 0 and first["matched"] == 5 and first["rows"] == 7
    assert first["unknown_series"] == 1 and first["unknown_examples"] == ["7"] and first["outside_horizon"] == 1
    assert first["realised"]["wape"] == pytest.approx(18 / 66, abs=1e-5) and first["worst_series"][0]["entity"] == "2"
    assert log.models()["fc"][0] == "regression"
    before = log.counts()
    again = ingest_actuals(log, "fc", "3", forecasts(), H, actuals().assign(demand=lambda d: d["demand"] + 1))
    assert again["joined"] == 0 and again["duplicate"] == 5 and log.counts() == before  # nothing changed, not even values
    _, _, outcomes = log.window("fc", "3", "champion")
    assert sorted(float(o) for o in outcomes) == [0.0, 10.0, 12.0, 20.0, 24.0]
    assert point_id("fc", "3", "1", ORIGIN, 0) == point_id("fc", "3", "1", ORIGIN, 0) != point_id("fc", "4", "1", ORIGIN, 0)
    reg = CollectorRegistry()
    reg.register(QualityCollector(log, "regression", min_samples=5, reference={("fc", "3"): {"wape": 0.2}}))
    assert reg.get_sample_value("kindml_quality", {"model": "fc", "version": "3", "variant": "champion", "metric": "wape"}) == pytest.approx(18 / 66)
    assert reg.get_sample_value("kindml_quality_reference", {"model": "fc", "version": "3", "metric": "wape"}) == 0.2


def test_series_collector_exports_only_the_worst_series_and_the_share_above_reference(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    n = 40
    f = pd.DataFrame({"series_id": np.arange(n), "event_timestamp": ORIGIN, "forecast": [[10.0, 10.0]] * n})
    a = pd.DataFrame({"series_id": np.repeat(np.arange(n), 2), "event_timestamp": [day(0), day(1)] * n,
                      "demand": np.repeat(10.0 + np.arange(n), 2)})  # series s: WAPE s / (10 + s)
    ingest_actuals(log, "fc", "1", f, H, a)
    reg = CollectorRegistry()
    reg.register(SeriesErrorCollector(log, reference={("fc", "1"): {"wape": 0.5, "mae": 100.0}}, top=3))
    samples = [s for fam in reg.collect() for s in fam.samples]
    errs = {(s.labels["series"], s.labels["metric"]): s.value for s in samples if s.name == "kindml_series_error"}
    assert {k[0] for k in errs} == {"39", "38", "37"} and len(errs) == 9  # bounded: 3 series x 3 metrics
    assert errs[("39", "wape")] == pytest.approx(39 / 49) and errs[("39", "mae")] == pytest.approx(39.0)
    above = {s.labels["metric"]: s.value for s in samples if s.name == "kindml_series_above_reference"}
    assert above == {"wape": pytest.approx(29 / 40), "mae": 0.0}  # WAPE > 0.5 for s > 10: 29 series; no holdout sMAPE
    assert reg.get_sample_value("kindml_series_with_actuals", {"model": "fc", "version": "1"}) == 40


@pytest.mark.parametrize(("frame", "match"), [
    (pd.DataFrame({"series_id": [1], "demand": [1.0]}), r"lack the column\(s\) \['event_timestamp'\]"),
    (pd.DataFrame({"series_id": [1, 1], "event_timestamp": [day(0), day(1)], "demand": ["3", "lots"]}), "not a finite number.*rows 1"),
    (pd.DataFrame({"series_id": [1], "event_timestamp": [day(0)], "demand": [math.inf]}), "not a finite number"),
    (pd.DataFrame({"series_id": [1, 2], "event_timestamp": [day(0), day(0)], "demand": [-1.0, -2.0]}), r"2 of 2 actuals have a negative demand"),
    (pd.DataFrame({"series_id": [1], "event_timestamp": ["not a date"], "demand": [1.0]}), "event_timestamp"),
    (pd.DataFrame({"series_id": [1, 1], "event_timestamp": [day(0), day(0)], "demand": [1.0, 2.0]}), "repeat"),
    (pd.DataFrame({"series_id": [], "event_timestamp": [], "demand": []}), "empty"),
])
def test_bad_actuals_are_refused_whole_with_a_hint(frame: pd.DataFrame, match: str, tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    with pytest.raises(ActualsError, match=match) as e:
        ingest_actuals(log, "fc", "1", forecasts(), H, frame)
    assert isinstance(e.value, DataError) and e.value.hint and log.counts()["predictions"] == 0


def test_files_and_the_kept_forecasts(tmp_path: Path) -> None:
    actuals().to_csv(tmp_path / "a.csv", index=False)
    back = check_actuals(read_actuals(tmp_path / "a.csv"), H)
    assert back["series_id"].dtype == np.int64 and back["event_timestamp"].iloc[0] == day(0)
    for bad, match in ((tmp_path / "nope.csv", "no actuals file"), (tmp_path / "a.txt", "unsupported")):
        bad.write_text("x") if bad.suffix == ".txt" else None
        with pytest.raises(ActualsError, match=match):
            read_actuals(bad)
    with pytest.raises(ActualsError, match="no batch forecasts of fc v2"):
        load_forecasts(tmp_path, "fc", "2")
    save_forecasts(tmp_path, "fc", "2", forecasts(), H, {"run": "r1"})
    f, h, meta = load_forecasts(tmp_path, "fc", "2")
    assert h == H and meta["run"] == "r1" and list(f["forecast"].iloc[0]) == [10.0, 20.0, 30.0]


def test_a_regression_predictor_exports_the_series_errors_of_its_log(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from kindml.serving import outcomes

    log = PredictionLog(tmp_path / "served.db")
    ingest_actuals(log, "fc-served", "4", forecasts(), H, actuals())
    quality = outcomes.quality_collector(log, "regression", 0.5)
    quality.reference[("fc-served", "4")] = {"wape": 0.5}  # what PredictionRecorder.register sets from metrics.json
    assert REGISTRY.get_sample_value("kindml_series_with_actuals", {"model": "fc-served", "version": "4"}) == 2
    assert REGISTRY.get_sample_value("kindml_series_above_reference", {"model": "fc-served", "version": "4", "metric": "wape"}) == 0.5
    assert REGISTRY.get_sample_value("kindml_series_error", {"model": "fc-served", "version": "4", "series": "2", "metric": "wape"}) == 1.0


def _kindml(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=180)


def test_cli_generates_and_ingests_actuals_idempotently_and_refuses_bad_files(tmp_path: Path, cli_env: dict[str, str]) -> None:
    import json

    r = _kindml(["data", "generate", "--pipeline", "forecast", "--actuals", "--shift", "1", "--days", "30", "--format", "csv",
                 "--out", str(tmp_path / "d"), "-o", "json"], cli_env)
    assert r.returncode == 0, r.stderr
    path = Path(json.loads(r.stdout)["files"][0])
    act = pd.read_csv(path)
    assert path.name == "actuals.csv" and len(act) == 500 * 7 and {"series_id", "event_timestamp", "demand"} <= set(act.columns)
    # the champion's batch forecasts as the batch stage keeps them (a flat 10 a day for every series)
    origin = pd.to_datetime(act["event_timestamp"], utc=True).min()
    series = np.sort(act["series_id"].unique())
    save_forecasts(Path(cli_env["KINDML_HOME"]), "demand-forecaster", "1",
                   pd.DataFrame({"series_id": series, "event_timestamp": origin, "forecast": [[10.0] * 7] * len(series)}), H, {})
    extra = pd.DataFrame({"series_id": [999_999], "event_timestamp": [act["event_timestamp"].iloc[0]], "demand": [4.0]})
    pd.concat([act, extra]).to_csv(tmp_path / "a.csv", index=False)
    r = _kindml(["feedback", "actuals", str(tmp_path / "a.csv"), "--model", "demand-forecaster@1", "-o", "json"], cli_env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["matched"] == 3500 and out["joined"] == 3500 and out["unknown_series"] == 1 and out["unknown_examples"] == ["999999"]
    expected = float(np.abs(act["demand"] - 10.0).sum() / act["demand"].sum())
    assert out["realised"]["wape"] == pytest.approx(expected, abs=1e-4) and len(out["worst_series"]) == 10
    log = PredictionLog(Path(cli_env["KINDML_HOME"]) / "serving" / "predictions.db")
    assert log.counts() == {"predictions": 3500, "labelled": 3500}
    r = _kindml(["feedback", "actuals", str(tmp_path / "a.csv"), "--model", "demand-forecaster@1"], cli_env)  # again: nothing new
    assert r.returncode == 0 and "0 new, 3500 already ingested" in r.stdout and "1 series without a forecast" in r.stdout
    assert log.counts() == {"predictions": 3500, "labelled": 3500}
    act.assign(demand=lambda d: -d["demand"]).to_csv(tmp_path / "neg.csv", index=False)
    act.drop(columns=["demand"]).to_csv(tmp_path / "nocol.csv", index=False)
    act.assign(event_timestamp="2001-01-01").iloc[:5].to_csv(tmp_path / "old.csv", index=False)
    for file, model, message in (("neg.csv", "demand-forecaster@1", "negative demand"), ("nocol.csv", "demand-forecaster@1", "lack the column"),
                                 ("old.csv", "demand-forecaster@1", "0 of 5 actuals matched"),
                                 ("a.csv", "demand-forecaster@7", "no batch forecasts of demand-forecaster v7"),
                                 ("a.csv", None, "NAME@VERSION"), ("missing.csv", "demand-forecaster@1", "no actuals file")):
        r = _kindml(["feedback", "actuals", str(tmp_path / file), *(["--model", model] if model else [])], cli_env)
        assert r.returncode != 0 and message in r.stderr and "hint:" in r.stderr and "Traceback" not in r.stderr + r.stdout, (file, r.stderr)
    assert log.counts() == {"predictions": 3500, "labelled": 3500}
    r = _kindml(["data", "generate", "--pipeline", "forecast", "--actuals", "--shift", "2", "--out", str(tmp_path / "e")], cli_env)
    assert r.returncode != 0 and "--shift 2.0 is out of range" in r.stderr


def test_monitor_stage_ingests_generated_actuals_of_the_served_version(tmp_path: Path) -> None:
    from kindml.errors import UsageError
    from kindml.stages.monitor import ingest_generated_actuals
    from kindml.workspace import Workspace

    class WithActuals:
        def actuals(self, shift: float) -> pd.DataFrame:
            return actuals().assign(demand=lambda d: d["demand"] * (1 + shift))

    class WithoutActuals:
        def actuals(self, shift: float) -> pd.DataFrame:
            raise UsageError("no actuals", "-")

    ws = Workspace(tmp_path / "ws").ensure()
    dep = {"model": "fc", "version": "5"}
    assert ingest_generated_actuals(WithoutActuals(), ws, dep, 1.0) is None  # type: ignore[arg-type]
    assert "no batch forecasts of fc v5" in ingest_generated_actuals(WithActuals(), ws, dep, 1.0)["note"]  # type: ignore[arg-type,index]
    save_forecasts(ws.root, "fc", "5", forecasts(), H, {})
    got = ingest_generated_actuals(WithActuals(), ws, dep, 1.0)  # type: ignore[arg-type]
    assert got is not None and got["shift"] == 1.0 and got["joined"] == 5 and got["unknown_series"] == 1
    assert got["realised"]["wape"] == pytest.approx((14 + 20 + 18 + 5 + 15) / 132, abs=1e-5)  # actuals doubled: 24, 40, 48 and 0, 20
    assert PredictionLog(ws.serving / "predictions.db").counts() == {"predictions": 5, "labelled": 5}
