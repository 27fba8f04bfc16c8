"""The forecasting capstone end to end on small generated data: GE quarantine of bad sales rows, Feast history and plan
snapshots, a global MLP with Ray Tune + Train, a backtest against seasonal-naive gated on WAPE, ONNX, the registry, Ray Data
batch forecasts for every series written back to Feast, and the KServe predictor answering from them (v1, v2) with live
forecasts for series without a row, and 400s for bad input; the actuals of the horizon (level-shocked by
data.concept_shift) ingested after the traffic, the realised WAPE exported and KindmlErrorDegraded fired.

One pipeline run (30 series x 70 days; about 4-5 minutes on a busy 2-core machine) serves every test of this module.
30 series: their 210 actual points fill the realised-quality window (200 labelled outcomes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.local

H = 7
SMALL = ["--param", "days=70", "--param", "epochs=3", "--param", "tune_trials=1", "--set", "train.tune_epochs=1", "--set", "train.batch_size=128",
         "--set", "workloads.forecast.stores=5", "--set", "workloads.forecast.products=6"]


def kindml(args: list[str], home: Path, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


def post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("forecast")
    res = kindml(["run", "forecast", *SMALL, "--param", "corruption_rate=0.02", "--quarantine", "--run-id", "r", "-o", "json"], home)
    try:
        assert res.returncode == 0, res.stderr[-3000:]
        yield {"home": home, "summary": json.loads(res.stdout)}
    finally:
        kindml(["serve", "stop"], home)


def _artifact(run: dict[str, Any], pattern: str) -> Path:  # type: ignore[type-arg]
    return next((run["home"] / "runs" / "r" / "kfp").rglob(pattern))


def test_summary_quarantine_backtest_gate_and_batch(run) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    s = run["summary"]
    assert s["status"] == "succeeded" and s["pipeline"] == "forecast" and s["workload"] == "kindml.pipelines.forecast.workload"
    assert list(s["stages"]) == ["ingest", "validate", "features", "train", "evaluate", "export", "register", "batch", "deploy", "monitor"]
    assert all(v["status"] == "succeeded" for v in s["stages"].values()), s["stages"]
    damage = json.loads(_artifact(run, "raw/ingest.json").read_text())["corruption"]
    # every damaged row, plus the original of every duplicated (series, day)
    assert s["validation"]["quarantined_rows"] == damage["rows"] + damage["counts"]["duplicate"]
    reasons = s["validation"]["quarantine_reasons"]
    assert reasons["expect_compound_columns_to_be_unique:series_id+event_timestamp"] == 2 * damage["counts"]["duplicate"]
    assert reasons["expect_column_values_to_be_between:demand"] == damage["counts"]["negative_demand"]
    m = s["metrics"]
    assert s["gate"]["metric"] == "wape" and s["gate"]["promote"] and m["horizon"] == H and 25 <= m["series"] <= 30
    naive = s["baselines"]["seasonal_naive"]
    assert m["wape"] < naive["wape"] and m["mase"] < naive["mase"]  # the model beats seasonal-naive on the same backtest
    metrics = json.loads(_artifact(run, "evaluation/metrics.json").read_text())
    assert metrics["wape_seasonal_naive"] == naive["wape"] and len(metrics["wape_by_horizon"]) == H and metrics["origins"] > 24
    b = s["batch"]
    assert b["engine"] == "ray_data" and b["what"] == "series" and b["feast_view"] == "series_forecasts"
    clean = pd.read_parquet(_artifact(run, "validate/clean/sales.parquet"), columns=["series_id"])["series_id"].nunique()
    assert b["rows"] == clean == 30  # every series once (an unknown series' rows were quarantined)
    assert s["serving"]["requests"] > 0 and s["serving"]["errors"] == 0


def test_registered_with_lineage(run) -> None:  # type: ignore[no-untyped-def]
    res = kindml(["models", "show", "demand-forecaster@champion", "-o", "json"], run["home"])
    assert res.returncode == 0, res.stderr
    tags = json.loads(res.stdout)["tags"]
    assert tags["kindml.workload"] == "forecast" and tags["kindml.task"] == "regression" and tags["kindml.gate_metric"] == "wape"
    assert tags["kindml.feast_feature_service"] == "forecast_v1" and 0 < float(tags["kindml.wape"]) < 1


def _feast_forecasts(run, series: list[int]) -> dict[int, list[float]]:  # type: ignore[no-untyped-def]
    from kindml.features.store import open_store

    store = open_store(run["home"] / "features", "kindml")
    got = store.get_online_features(features=["series_forecasts:forecast"], entity_rows=[{"series_id": s} for s in series]).to_dict()
    return dict(zip(got["series_id"], got["forecast"], strict=True))


def test_batch_wrote_parquet_and_feast(run) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    pred = pd.read_parquet(_artifact(run, "scores/predictions.parquet"))
    assert pred["series_id"].is_unique and len(pred) == 30 and (pred["forecast"].map(len) == H).all()
    assert all(min(f) >= 0 for f in pred["forecast"])
    ingest = json.loads(_artifact(run, "raw/ingest.json").read_text())
    assert (pd.to_datetime(pred["event_timestamp"], utc=True) == pd.Timestamp(ingest["window_end"])).all()  # the origin: the day after the window
    online = _feast_forecasts(run, pred["series_id"].head(3).tolist())
    for sid, f in zip(pred["series_id"].head(3), pred["forecast"].head(3), strict=True):
        assert list(online[sid]) == pytest.approx(list(f))


def test_precomputed_and_live_over_v1_and_v2(run) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    d = run["summary"]["deployment"]
    url, model = d["url"], d["model"]
    pred = pd.read_parquet(_artifact(run, "scores/predictions.parquet")).set_index("series_id")
    code, body = post(f"{url}/v1/models/{model}:predict", {"instances": [{"store_id": 1, "product_id": 2}, {"store_id": 1, "product_id": 8888}]})
    assert code == 200, body
    pre, live = body["predictions"]
    assert pre["source"] == "precomputed" and pre["series_known"] is True
    assert pre["forecast"] == pytest.approx(list(pred.loc[10002, "forecast"]), abs=1e-3) and pre["total"] == pytest.approx(sum(pre["forecast"]), abs=0.01)
    assert live["source"] == "live" and live["series_known"] is False and len(live["forecast"]) == H
    code, v2 = post(f"{url}/v2/models/{model}/infer", {"inputs": [{"name": "store_id", "shape": [1], "datatype": "INT64", "data": [1]},
                                                                 {"name": "product_id", "shape": [1], "datatype": "INT64", "data": [2]}]})
    assert code == 200, v2
    out = {o["name"]: o["data"] for o in v2["outputs"]}
    assert out["source"] == ["precomputed"] and out["total"][0] == pytest.approx(pre["total"], abs=0.01)


@pytest.mark.parametrize("body,needle", [
    ({"instances": [{"store_id": 1}]}, "missing field(s): product_id"),
    ({"instances": [{"store_id": "x", "product_id": 1}]}, "store_id must be an integer"),
    ({"instances": [{"store_id": 1, "product_id": 10000}]}, "product_id must be between"),
    ({"instances": [{"store_id": 1, "product_id": 1, "user_id": 3}]}, "unknown field"),
    ({"instances": [{"store_id": 1, "product_id": 1}] * 513}, "limit"),
])
def test_bad_input_is_a_400_and_the_server_survives(run, body: dict, needle: str) -> None:  # type: ignore[no-untyped-def]
    d = run["summary"]["deployment"]
    code, answer = post(f"{d['url']}/v1/models/{d['model']}:predict", body)
    assert code == 400 and needle in json.dumps(answer), answer
    assert post(f"{d['url']}/v1/models/{d['model']}:predict", {"instances": [{"store_id": 2, "product_id": 3}]})[0] == 200


def test_actuals_arrive_later_realised_wape_is_exported_and_the_error_alert_fires(run) -> None:  # type: ignore[no-untyped-def]
    """The monitor stage ingested the actuals of the 7 forecast days (half the series level-shocked by concept_shift 1.0):
    the predictor exported the realised WAPE next to the holdout WAPE and the worst series; KindmlErrorDegraded fired."""
    s = run["summary"]
    q = s["quality"]
    a = q["actuals"]
    assert a["shift"] == 1.0 and a["model"] == s["deployment"]["model"] and a["rows"] == a["matched"] == 30 * H
    assert a["unknown_series"] == 0 and a["outside_horizon"] == 0 and a["series"] == 30 and q["feedback"]["actuals"] is True
    assert q["feedback"]["joined"] + q["feedback"]["duplicate"] == 30 * H
    assert q["reference"]["wape"] == pytest.approx(s["metrics"]["wape"], abs=1e-3)
    assert q["realised"]["champion:wape"] > 1.25 * q["reference"]["wape"], q
    assert q["quality_alert_fired"] is True
    fired = [f for f in s["drift"]["alerts_fired"] if f["alertname"] == "KindmlErrorDegraded"]
    assert fired and fired[0]["labels"]["metric"] == "wape" and fired[0]["labels"]["variant"] == "champion"
    # the predictor's /metrics: the worst series (bounded) and the share of series above the holdout WAPE
    with urllib.request.urlopen(f"{s['deployment']['url']}/metrics", timeout=20) as r:
        text = r.read().decode()
    worst = [ln for ln in text.splitlines() if ln.startswith("kindml_series_error{") and 'metric="wape"' in ln]
    assert 0 < len(worst) <= 10 and any(ln.startswith("kindml_series_above_reference{") and 'metric="wape"' in ln for ln in text.splitlines())
    # the CLI: the same actuals again change nothing; a file with a negative value is refused with a hint
    import pandas as pd

    (run["home"] / "small.yaml").write_text("workloads:\n  forecast:\n    stores: 5\n    products: 6\n")  # the run's world
    res = kindml(["--config", str(run["home"] / "small.yaml"), "data", "generate", "--pipeline", "forecast", "--days", "70", "--actuals",
                  "--shift", "1", "--out", str(run["home"] / "act")], run["home"])
    assert res.returncode == 0, res.stderr
    res = kindml(["feedback", "actuals", str(run["home"] / "act" / "actuals.parquet"), "-o", "json"], run["home"])
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout)
    assert again["joined"] == 0 and again["duplicate"] == 30 * H and again["realised"]["wape"] == pytest.approx(a["realised"]["wape"])
    bad = pd.read_parquet(run["home"] / "act" / "actuals.parquet").assign(demand=-1.0)
    bad.to_csv(run["home"] / "act" / "bad.csv", index=False)
    res = kindml(["feedback", "actuals", str(run["home"] / "act" / "bad.csv")], run["home"])
    assert res.returncode != 0 and "negative demand" in res.stderr and "Traceback" not in res.stderr


def test_report_shows_the_backtest_and_forecast_vs_actual(run) -> None:  # type: ignore[no-untyped-def]
    """`kindml report` of the run: the evaluation shows the forecast errors next to seasonal-naive, WAPE per horizon day and
    forecast vs actual for example series of the backtest (from metrics.json's examples)."""
    metrics = json.loads(_artifact(run, "evaluation/metrics.json").read_text())
    ex = metrics["examples"]
    assert 1 <= len(ex) <= 3 and all(len(e["actual"]) == len(e["forecast"]) == len(e["days"]) > 5 for e in ex)
    res = kindml(["report", "r", "-o", "json"], run["home"])
    assert res.returncode == 0, res.stderr
    page = Path(json.loads(res.stdout)["path"]).read_text()
    ev = page[page.index('<section id="evaluation">'):]
    ev = ev[: ev.index("</section>")]
    assert "ROC AUC" not in ev and "vs seasonal-naive" in ev and "WAPE per horizon day" in ev
    assert all(f"series {e['series_id']}: forecast vs actual" in ev for e in ex)
