"""The run report (`kindml report`): collection, rendering and the CLI on hand-made runs; no browser, no network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kindml.report.collect import (
    build_timeline,
    collect,
    find_run,
    latest_benchmark,
    parse_log_timeline,
)
from kindml.report.render import SECTIONS, render_html, write_report

STAGES = ("ingest", "validate", "features", "train", "evaluate", "export", "register", "deploy", "monitor")
SECTION_IDS = [sid for sid, _, _ in SECTIONS]


def _w(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload) if not isinstance(payload, str) else payload, encoding="utf-8")


def make_run(root: Path, run_id: str = "r1", failed_at: str | None = None, series: bool = True) -> Path:
    """A run folder shaped like the capstone's: summary.json, the pipeline log and the stage artifacts."""
    run = root / "runs" / run_id
    kfp = run / "kfp" / "kindml-capstone-2026-11-23-10-00-00-000000"
    stop = STAGES.index(failed_at) if failed_at else len(STAGES)
    stages = {s: ({"status": "succeeded", "seconds": 2.0 + i} if i < stop else
                  {"status": "failed", "seconds": 3.0} if i == stop else {"status": "not_run", "seconds": None})
              for i, s in enumerate(STAGES)}
    log, t = ["10:00:00.000 - INFO - Running pipeline: \x1b[95m'kindml-capstone'\x1b[0m"], 0.0
    for i, s in enumerate(STAGES[: stop + 1 if failed_at else stop]):
        log.append(f"10:00:{t:06.3f} - INFO - Executing task \x1b[96m'{s}'\x1b[0m")
        t += 2.0 + i if i < stop else 3.0
        log.append(f"10:00:{min(t, 59.0):06.3f} - INFO - Task \x1b[96m'{s}'\x1b[0m finished with status "
                   f"\x1b[92m{'SUCCESS' if i < stop else 'FAILURE'}\x1b[0m")
    _w(run / "logs" / "pipeline.log", "\n".join(log) + "\n")
    outcomes = [{"expectation": "expect_column_values_to_not_be_null", "column": "amount", "success": failed_at != "validate",
                 "row_level": True, "unexpected_count": 0 if failed_at != "validate" else 50, "unexpected_percent": 0.4,
                 "examples": [] if failed_at != "validate" else [None, None], "observed": None, "detail": ""},
                {"expectation": "expect_table_row_count_to_be_between", "column": None, "success": True, "row_level": False,
                 "unexpected_count": 0, "unexpected_percent": 0.0, "examples": [], "observed": 1000, "detail": ""}]
    ok = failed_at != "validate"
    vsum = {"success": ok, "rows": 1000, "evaluated_expectations": 2, "failed_expectations": 0 if ok else 1, "quarantined_rows": 0,
            "quarantine_reasons": {}, "clean_rows": 1000 if ok else 0,
            "summary": "transactions: 2 expectations passed on 1000 rows" if ok else "transactions: 1 of 2 expectations failed"}
    _w(kfp / "validate" / "validation" / "validation.json", {"table": "transactions", "rows": 1000, "success": ok, "outcomes": outcomes,
                                                             "validated_at": "2026-11-23T10:00:05+00:00"})
    _w(kfp / "validate" / "validation" / "summary.json", vsum)
    summary: dict[str, Any] = {
        "run_id": run_id, "target": "local", "pipeline": "capstone", "status": "failed" if failed_at else "succeeded",
        "started": "2026-11-23T10:00:00+00:00", "finished": "2026-11-23T10:01:00+00:00", "seconds": 60.0, "run_dir": str(run),
        "params": {"rows": 1000, "drift": 1.0, "serve": True}, "stages": stages, "validation": vsum,
        "data": {"rows": 1000, "accounts": 100, "fraud_rate": 0.03, "content_hash": "ab" * 32,
                 "window_start": "2026-10-01T00:00:00+00:00", "window_end": "2026-11-01T00:00:00+00:00"},
        "metrics": {}, "gate": None, "model": None,
    }
    if failed_at:
        summary |= {"failed_stage": failed_at, "error": {"error": "ValidationFailed", "message": "data validation failed <b>x</b>",
                                                         "hint": "run with --quarantine", "exit_code": 4}}
        _w(run / "summary.json", summary)
        return run
    _w(kfp / "train" / "model" / "train_report.json", {
        "split": {"train": 700, "val": 150, "test": 150}, "best_params": {"lr": 0.004038, "width": 128},
        "trials": [{"lr": 0.005, "width": 64, "val_auc": 0.81, "epochs_run": 4}, {"lr": 0.004038, "width": 128, "val_auc": 0.86, "epochs_run": 4}],
        "history": [{"epoch": e, "train_loss": 0.4 / e, "val_auc": 0.6 + 0.1 * e} for e in (1, 2, 3)],
        "val_auc": 0.86, "seconds": {"tune": 20.0, "fit": 40.0, "total": 60.0}, "workers": 2, "seed": 42, "mlflow_run_id": "abc"})
    metrics = {"roc_auc": 0.87, "pr_auc": 0.3, "threshold": 0.5, "precision": 0.5, "recall": 0.2, "f1": 0.28, "recall_at_1pct_alerts": 0.2,
               "brier": 0.02, "ece": 0.004, "positives": 30, "rows": 1000, "confusion": {"tn": 960, "fp": 10, "fn": 24, "tp": 6},
               "calibration": [{"bin": "0.0-0.1", "n": 900, "mean_score": 0.02, "fraud_rate": 0.015},
                               {"bin": "0.1-0.2", "n": 100, "mean_score": 0.14, "fraud_rate": 0.12}]}
    _w(kfp / "evaluate" / "evaluation" / "metrics.json", metrics)
    grid = [i / 10 for i in range(11)]
    _w(kfp / "evaluate" / "evaluation" / "curves.json", {"roc_fpr": grid, "roc_tpr": [min(1.0, x * 1.6) for x in grid],
                                                         "pr_recall": grid, "pr_precision": [1.0 - 0.9 * x for x in grid]})
    gate = {"promote": True, "reasons": ["ROC AUC 0.8700 clears the floor 0.8000"], "floor": 0.8}
    _w(kfp / "evaluate" / "evaluation" / "gate.json", gate)
    reg = {"name": "fraud-detector", "version": "3", "promoted": True, "alias": "champion", "model_uri": "models:/fraud-detector/3",
           "onnx_path": str(kfp / "register" / "registered" / "model.onnx"),
           "tags": {"kindml.pipeline_run_id": run_id, "kindml.data_hash": "ab" * 32, "kindml.gate": "promote"}}
    _w(kfp / "register" / "registered" / "registered.json", reg)
    drift: dict[str, Any] = {
        "severity": 1.0, "max_psi": {"amount": 0.31, "channel": 0.01}, "prediction_psi": 0.05, "drift_alert_fired": True,
        "alerts_fired": [{"alertname": "KindmlFeatureDrift", "labels": {"alertname": "KindmlFeatureDrift", "feature": "amount",
                                                                        "model": "fraud-detector", "version": "3", "severity": "warning"},
                          "first_seen": "2026-11-23T10:00:50Z", "value": "3.1e-01"}]}
    if series:
        drift["series"] = {"start": "2026-11-23T10:00:40+00:00", "step_s": 1.0, "t_s": [0.0, 1.0, 2.0, 3.0],
                           "features": {"amount": {"psi": [None, 0.01, 0.2, 0.31], "js": [None, 0.0, 0.03, 0.05], "ks": [None, 0.01, 0.1, 0.12]},
                                        "channel": {"psi": [None, 0.0, 0.01, 0.01], "js": [None, 0.0, 0.0, 0.0]}},
                           "prediction": {"psi": [None, 0.01, 0.04, 0.05]}, "window_samples": [None, 100, 200, 300],
                           "thresholds": {"psi": 0.2, "prediction_psi": 0.2, "ks_min": 0.05, "ks_c_alpha": 1.95}}
    serving = {"requests": 4500, "errors": 0, "p50_ms": 3.6, "p99_ms": 12.7}
    _w(kfp / "monitor" / "monitoring" / "monitor.json", {
        "serving": serving, "drift": drift, "observed_seconds": 20.0,
        "phases": [{"phase": "clean", "requests": 1500, "errors": 0, "codes": {"200": 1500}, "achieved_rps": 700.0,
                    "p50_ms": 4.6, "p90_ms": 9.6, "p99_ms": 12.5, "max_ms": 21.3}]})
    summary |= {"metrics": {k: metrics[k] for k in ("roc_auc", "pr_auc")}, "gate": gate, "serving": serving, "drift": drift,
                "model": {k: reg[k] for k in ("name", "version", "promoted", "alias", "model_uri", "onnx_path")},
                "deployment": {"url": "http://127.0.0.1:40597", "pid": 18794, "model": "fraud-detector", "version": "3"}}
    _w(run / "summary.json", summary)
    return run


def bench_doc() -> dict[str, Any]:
    return {"suite": "quick", "device": "cpu", "created": "2026-11-23T10:00:00+00:00",
            "machine": {"cpu_model": "Test CPU", "logical_cpus": 2, "onnxruntime_version": "1.31.1"},
            "results": [{"model": "fraud_mlp", "variant": "ort_int8", "provider": "CPUExecutionProvider", "batch": 64, "p50_ms": 0.2,
                         "p99_ms": 0.4, "throughput_per_s": 300000.0, "speedup_vs_fp32": 1.8, "quality": {"roc_auc_delta": -0.001}}]}


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def assert_self_contained(page: str) -> None:
    # nothing the browser would fetch: no script, no external src/href/url(), no @import
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I), "external src/href"
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", page, re.I)
    assert "@import" not in page
    for m in re.finditer(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, re.I):
        assert m.group(1).startswith(("#", "data:")), m.group(1)
    assert "default-src 'none'" in page  # the CSP forbids any load even if a later change tried one


def test_full_run_renders_every_section(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(bench_doc()))
    data = collect(run, benchmarks=[bench])
    page = render_html(data)
    assert_self_contained(page)
    for sid in SECTION_IDS:
        section(page, sid)
    assert page.count("<svg") >= 8  # gantt, 2 training, ROC, PR, calibration, latency, PSI bars, drift over time
    assert "could not be rendered" not in page
    assert "fraud-detector v3" in section(page, "overview")
    tl = section(page, "timeline")
    assert all(f">{s}<" in tl for s in STAGES)
    assert "0.86" in section(page, "training") and 'class="best"' in section(page, "training")
    ev = section(page, "evaluation")
    assert "ROC curve" in ev and "precision-recall curve" in ev and "confusion matrix" in ev and "960" in ev and "Gate: promote" in ev
    assert "kindml.pipeline_run_id" not in section(page, "registry") and "pipeline_run_id" in section(page, "registry")
    assert "4,500" in section(page, "serving")
    dr = section(page, "drift")
    assert "amount" in dr and "drift over time" in dr and "fired" in dr and "alert threshold 0.2" in dr
    assert "KindmlFeatureDrift" in section(page, "alerts")
    bm = section(page, "benchmarks")
    assert "ort_int8" in bm and "Test CPU" in bm
    assert data.notes == []


def test_failed_run_shows_the_failure_and_explains_the_rest(tmp_path: Path) -> None:
    page = render_html(collect(make_run(tmp_path, failed_at="validate")))
    assert_self_contained(page)
    ov = section(page, "overview")
    assert "Run failed at stage validate" in ov and "run with --quarantine" in ov
    assert "&lt;b&gt;x&lt;/b&gt;" in ov and "<b>x</b>" not in page  # messages are escaped
    val = section(page, "validation")
    assert "Validation FAILED" in val and "failed expectations" in val and "expect_column_values_to_not_be_null" in val
    for sid in ("training", "evaluation", "registry", "serving", "drift", "alerts"):
        assert "the run stopped at stage validate" in section(page, sid), sid
    assert "No benchmark results" in section(page, "benchmarks")
    assert "could not be rendered" not in page


def test_run_without_series_or_artifacts_degrades(tmp_path: Path) -> None:
    run = make_run(tmp_path, series=False)
    page = render_html(collect(run))
    assert "Drift over time was not recorded" in section(page, "drift")
    # only summary.json left: every section still renders from it or says what is missing
    import shutil

    shutil.rmtree(run / "kfp")
    (run / "logs" / "pipeline.log").unlink()
    page = render_html(collect(run))
    assert_self_contained(page)
    assert "could not be rendered" not in page
    assert "No training report recorded" in section(page, "training")
    assert "amount" in section(page, "drift")  # max PSI from summary.json


def test_a_broken_artifact_costs_one_section_only(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    tr = next(run.rglob("train_report.json"))
    tr.write_text(json.dumps({"history": "not a list", "trials": [{"val_auc": "x"}]}))
    bad = next(run.rglob("curves.json"))
    bad.write_text("{ not json")
    data = collect(run)
    page = render_html(data)
    assert any("curves.json" in n for n in data.notes)
    assert section(page, "overview") and "ROC AUC" in section(page, "evaluation")
    assert page.count('<section id="') == len(SECTION_IDS)


def test_log_timeline_uses_the_last_attempt(tmp_path: Path) -> None:
    log = tmp_path / "pipeline.log"
    log.write_text("\n".join([
        "23:59:50.000 - INFO - Running pipeline: 'kindml-capstone'",
        "23:59:50.000 - INFO - Executing task 'ingest'",
        "23:59:55.000 - INFO - Task 'ingest' finished with status FAILURE",
        "23:59:58.000 - INFO - Running pipeline: 'kindml-capstone'",  # the resume
        "23:59:59.000 - INFO - Executing task 'ingest'",
        "00:00:04.500 - INFO - Task 'ingest' finished with status SUCCESS",  # past midnight
        "00:00:04.600 - INFO - Executing task 'validate'",
    ]))
    spans = parse_log_timeline(log)
    assert spans["ingest"] == (0.0, pytest.approx(5.5), "success")
    assert spans["validate"][0] == pytest.approx(5.6) and spans["validate"][1] is None
    summary = {"status": "succeeded", "stages": {"ingest": {"status": "succeeded", "seconds": 5.5},
                                                 "validate": {"status": "succeeded", "seconds": 2.0},
                                                 "train": {"status": "not_run", "seconds": None}}}
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    log.rename(run / "logs" / "pipeline.log")
    tl = build_timeline(summary, run)
    assert [(s.name, s.status) for s in tl] == [("ingest", "succeeded"), ("validate", "succeeded"), ("train", "cached")]
    assert tl[1].end_s == pytest.approx(7.6)


def test_find_run_and_benchmarks(tmp_path: Path) -> None:
    from kindml.errors import UsageError

    with pytest.raises(UsageError, match="no runs"):
        find_run(tmp_path / "runs", None)
    make_run(tmp_path, "a")
    b = make_run(tmp_path, "b")
    assert find_run(tmp_path / "runs", None) == b
    for bad in ("../a", ".", "a/b", ""):
        with pytest.raises(UsageError):
            find_run(tmp_path / "runs", bad)
    with pytest.raises(UsageError, match="no run 'zz'"):
        find_run(tmp_path / "runs", "zz")
    d = tmp_path / "results"
    d.mkdir()
    (d / "other.json").write_text(json.dumps({"not": "a result"}))
    (d / "broken.json").write_text("{")
    (d / "q.json").write_text(json.dumps(bench_doc()))
    notes: list[str] = []
    doc, path = latest_benchmark([d], notes)
    assert path == d / "q.json" and doc is not None and doc["suite"] == "quick"
    assert latest_benchmark([tmp_path / "nope"], notes) == (None, None)


def test_write_report_is_readable_by_others(tmp_path: Path) -> None:
    path = write_report(collect(make_run(tmp_path)))
    assert path == tmp_path / "runs" / "r1" / "report.html"
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def _cli(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_cli_report(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    res = _cli(["report"], home, tmp_path)
    assert res.returncode == 2 and "error: no runs" in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr
    make_run(home, "r1")
    res = _cli(["report", "--no-registry", "-o", "json"], home, tmp_path)
    assert res.returncode == 0, res.stderr
    path = Path(json.loads(res.stdout)["path"])
    assert path == home / "runs" / "r1" / "report.html" and path.is_file()
    out = tmp_path / "out"
    out.mkdir()
    res = _cli(["report", "r1", "--no-registry", "--out", str(out)], home, tmp_path)
    assert res.returncode == 0 and (out / "report-r1.html").is_file(), res.stderr
    for args, needle in ((["report", "../r1"], "not a run id"), (["report", "nope"], "no run 'nope'"),
                         (["report", "r1", "--out", str(tmp_path / "missing" / "x.html")], "does not exist"),
                         (["report", "r1", "--bench", str(tmp_path / "missing.json")], "no such file")):
        res = _cli(args, home, tmp_path)
        assert res.returncode == 2 and needle in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)


def test_monitor_drift_series_aligns_prometheus_ranges() -> None:
    from kindml.stages.monitor import drift_series

    class FakeProm:
        def __init__(self) -> None:
            self.queries: list[dict[str, str]] = []

        def api(self, path: str, params: dict[str, str]) -> dict[str, Any]:
            assert path == "query_range"
            self.queries.append(params)
            q = params["query"]
            if "kindml_feature_drift" in q:
                return {"result": [{"metric": {"feature": "amount", "method": "psi"}, "values": [[102.0, "0.1"], [103.0, "0.3"]]},
                                   {"metric": {"feature": "amount", "method": "ks"}, "values": [[103.0, "NaN"]]}]}
            if "kindml_prediction_drift" in q:
                return {"result": [{"metric": {"method": "psi"}, "values": [[101.0, "0.05"]]}]}
            return {"result": [{"metric": {}, "values": [[100.0, "10"], [103.0, "40"]]}]}

    prom = FakeProm()
    s = drift_series(prom, "fraud-detector", 100.0, 103.5)
    assert s is not None
    assert s["t_s"] == [0.0, 1.0, 2.0, 3.0] and s["step_s"] == 1.0
    assert s["features"]["amount"] == {"psi": [None, None, 0.1, 0.3], "ks": [None, None, None, None]}
    assert s["prediction"] == {"psi": [None, 0.05, None, None]}
    assert s["window_samples"] == [10.0, None, None, 40.0]
    assert s["thresholds"]["psi"] == 0.2
    assert all('model="fraud-detector"' in q["query"] for q in prom.queries)
    # a long run is sampled coarser: at most ~120 points
    long = drift_series(prom, "m", 0.0, 1000.0)
    assert long is not None and len(long["t_s"]) <= 121 and long["step_s"] == 9.0

    class DownProm:
        def api(self, path: str, params: dict[str, str]) -> Any:
            from kindml.errors import MonitoringError

            raise MonitoringError("down", "")

    assert drift_series(DownProm(), "m", 0.0, 10.0) is None


def test_forecast_run_shows_errors_vs_seasonal_naive_and_forecast_vs_actual(tmp_path: Path) -> None:
    """A regression (forecast) run's evaluation: WAPE/MASE/sMAPE next to seasonal-naive, WAPE per horizon day, and one
    forecast-vs-actual chart per example series — not the classification cards."""
    run = make_run(tmp_path)
    kfp = next((run / "kfp").iterdir())
    metrics = {"task": "regression", "wape": 0.35, "mase": 0.64, "smape": 0.41, "mae": 10.7, "rmse": 26.1, "series": 500, "horizon": 3,
               "wape_improvement_vs_seasonal_naive": 0.302, "wape_by_horizon": [0.33, 0.35, 0.37],
               "wape_by_horizon_seasonal_naive": [0.5, 0.5, 0.51],
               "examples": [{"series_id": 10001, "days": ["2026-11-01", "2026-11-02"], "actual": [10.0, 12.0], "forecast": [11.0, 12.5],
                             "seasonal_naive": [9.0, 15.0]},
                            {"series_id": 20007, "days": ["2026-11-01", "2026-11-02"], "actual": [3.0, 0.0], "forecast": [2.5, 0.4],
                             "seasonal_naive": [1.0, 2.0]}],
               "baselines": {"seasonal_naive": {"wape": 0.503, "mase": 0.93, "smape": 0.56, "note": "same weekday last week"}}}
    _w(kfp / "evaluate" / "evaluation" / "metrics.json", metrics)
    (kfp / "evaluate" / "evaluation" / "curves.json").unlink()
    _w(kfp / "evaluate" / "evaluation" / "gate.json", {"promote": True, "reasons": ["wape 0.3500 clears the ceiling 0.4500"], "floor": 0.45})
    s = json.loads((run / "summary.json").read_text())
    s["metrics"] = {k: metrics[k] for k in ("wape", "mase", "smape")}
    _w(run / "summary.json", s)
    page = render_html(collect(run))
    ev = section(page, "evaluation")
    assert "ROC AUC" not in ev and "WAPE" in ev and "30.20 % lower" in ev and "seasonal-naive WAPE 0.503" in ev
    assert "WAPE per horizon day" in ev
    assert "series 10001: forecast vs actual (2026-11-01 .. 2026-11-02)" in ev and "series 20007: forecast vs actual" in ev
    assert ev.count("<svg") == 3
    assert "WAPE" in section(page, "overview")


def test_forecast_examples_pick_series_by_level_and_keep_day_order() -> None:
    import numpy as np
    import pandas as pd

    from kindml.pipelines.forecast.workload import examples

    days = pd.to_datetime(["2026-11-02", "2026-11-01"] * 3, utc=True)
    origins = pd.DataFrame({"series_id": [1, 1, 2, 2, 3, 3], "event_timestamp": days})
    actual = np.array([[10.0, 0], [20.0, 0], [1.0, 0], [3.0, 0], [100.0, 0], [50.0, 0]])
    forecast, naive = actual + 1.0, actual - 1.0
    out = examples(origins, actual, forecast, naive)
    assert [e["series_id"] for e in out] == [3, 1, 2]  # 90th, 50th, 10th percentile of mean demand
    first = out[0]
    assert first["days"] == ["2026-11-01", "2026-11-02"] and first["actual"] == [50.0, 100.0] and first["forecast"] == [51.0, 101.0]
    assert first["seasonal_naive"] == [49.0, 99.0]
    assert examples(origins.iloc[:0], actual[:0], forecast[:0], naive[:0]) == []


def test_forecast_examples_prefer_series_with_every_origin() -> None:
    import numpy as np
    import pandas as pd

    from kindml.pipelines.forecast.workload import examples

    days = pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-01"], utc=True)
    origins = pd.DataFrame({"series_id": [1, 1, 1, 2, 2, 2, 3], "event_timestamp": days})  # series 3 lost two origins
    actual = np.array([[1.0], [2.0], [3.0], [10.0], [20.0], [30.0], [500.0]])
    out = examples(origins, actual, actual, actual)
    assert sorted(e["series_id"] for e in out) == [1, 2] and all(len(e["days"]) == 3 for e in out)
