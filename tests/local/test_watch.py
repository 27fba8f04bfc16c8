"""`kindml monitor watch`'s loop: a firing drift alert triggers a real capstone on recent (drifted) data; the gate decides.

The alert source is Prometheus in production; here it is a fixed list of alert objects in Prometheus'
/api/v1/alerts shape (the external boundary). The retraining itself is the real pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.local


def _alert(name: str, state: str = "firing") -> dict:
    return {"labels": {"alertname": name, "feature": "log_amount", "model": "fraud-detector"}, "state": state,
            "activeAt": "2026-11-23T10:00:00Z", "value": "0.5"}


def test_only_firing_drift_and_quality_alerts_trigger() -> None:
    from kindml.monitoring.watch import firing_drift_alerts, firing_retrain_alerts

    assert [
        a["labels"]["alertname"]
        for a in firing_retrain_alerts(
            [_alert("KindmlQualityDegraded"), _alert("KindmlLatencySLO")]
        )
    ] == ["KindmlQualityDegraded"]  # a concept shift (labels, not inputs) retrains too

    alerts = [_alert("KindmlFeatureDrift", "pending"), _alert("KindmlLatencySLO"), _alert("KindmlFeatureShift"), _alert("KindmlPredictionDrift")]
    assert [a["labels"]["alertname"] for a in firing_drift_alerts(alerts)] == ["KindmlPredictionDrift"]


def test_watch_retrains_once_and_records_the_gate_decision(tmp_path: Path) -> None:
    from kindml.monitoring.watch import watch
    from kindml.pipeline.local import run_pipeline
    from kindml.pipeline.source import from_module
    from kindml.workload.loader import workload_config
    from kindml.workspace import Workspace

    fraud = from_module("fraud", "kindml.pipelines.fraud.pipeline:pipeline", "kindml.pipelines.fraud.workload")
    cfg = workload_config(fraud.workload, environ={"KINDML_HOME": str(tmp_path / "ws")}, overrides={
        "data.rows": 12_000, "data.days": 50, "train.epochs": 3, "train.tune_trials": 2})

    def run_capstone(c, w, serve=True):  # type: ignore[no-untyped-def]  # what `kindml monitor watch` passes
        return run_pipeline(fraud, c, w, serve=serve)
    ws = Workspace(cfg.home)
    promoted: list[dict] = []
    decisions = watch(cfg, ws, lambda: [_alert("KindmlFeatureDrift")], run_capstone, promoted.append,
                      interval=0.5, timeout=900, max_retrains=1, cooldown=0)
    assert len(decisions) == 1
    d = decisions[0]
    assert d["trigger"][0]["alertname"] == "KindmlFeatureDrift"
    assert d["challenger_version"] == "1" and d["gate"]["reasons"]
    assert d["promoted"] == d["gate"]["promote"] and (promoted != []) == d["promoted"]
    recorded = [json.loads(line) for line in (ws.root / "monitoring" / "decisions.jsonl").read_text().splitlines()]
    assert recorded[-1]["challenger_run"] == d["challenger_run"]
    run = json.loads((ws.runs / d["challenger_run"] / "summary.json").read_text())
    assert run["params"]["serve"] is False  # retraining does not touch the running predictor itself
    ingest = json.loads(next((ws.runs / d["challenger_run"] / "kfp").rglob("raw/ingest.json")).read_text())
    assert ingest["history_drift"] == cfg.data.drift  # trained on recent, drifted data
