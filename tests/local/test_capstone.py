"""The capstone end to end on the embedded default: kfp.local + Feast + Ray + MLflow + GE, small data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.local

SMALL = ["--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2"]


def kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capstone")


def test_corrupted_data_stops_at_validate(home: Path) -> None:
    res = kindml(["capstone", *SMALL, "--corrupt", "0.05", "--run-id", "corrupt"], home)
    assert res.returncode == 4, res.stderr
    assert "Traceback" not in res.stderr
    assert "data validation failed" in res.stderr and "--quarantine" in res.stderr
    summary = json.loads((home / "runs" / "corrupt" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_stage"] == "validate"
    assert summary["stages"]["features"]["status"] == "not_run"
    report = Path(summary["validation_report"])
    assert report.is_file() and "expect_column_values_to_be_between" in report.read_text()


def test_capstone_with_quarantine_registers_serves_and_monitors(home: Path) -> None:
    try:
        res = kindml(["capstone", *SMALL, "--corrupt", "0.05", "--quarantine", "--quantize", "--run-id", "good", "-o", "json"], home)
    finally:
        kindml(["serve", "stop"], home)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    assert s == json.loads((home / "runs" / "good" / "summary.json").read_text())
    assert s["status"] == "succeeded" and s["target"] == "local" and s["run_id"] == "good"
    assert set(s["stages"]) == {"ingest", "validate", "features", "train", "evaluate", "export", "register", "deploy", "monitor"}
    assert all(v["status"] == "succeeded" and v["seconds"] > 0 for v in s["stages"].values())
    assert s["validation"]["quarantined_rows"] == 600
    # deploy + monitor: the default drift makes a drift alert fire in the real Prometheus
    assert s["serving"]["requests"] > 0 and s["serving"]["errors"] == 0 and s["serving"]["p50_ms"] > 0
    assert any(a["alertname"] in ("KindmlFeatureDrift", "KindmlPredictionDrift") and a["first_seen"] for a in s["drift"]["alerts_fired"])
    assert max(s["drift"]["max_psi"].values()) > 0.2
    assert s["metrics"]["roc_auc"] >= 0.80
    m = s["model"]
    assert m["name"] == "fraud-detector" and m["version"] == "1" and m["promoted"] is True
    assert Path(m["onnx_path"]).is_file()
    # lineage in the registry
    res = kindml(["models", "show", "fraud-detector@champion", "-o", "json"], home)
    assert res.returncode == 0, res.stderr
    tags = json.loads(res.stdout)["tags"]
    assert tags["kindml.pipeline_run_id"] == "good"
    assert tags["kindml.feast_feature_service"] == "fraud_model_v1"
    assert tags["kindml.data_hash"] == s["data"]["content_hash"]
    assert tags["kindml.validation_quarantined_rows"] == "600"
    # the optional quantize step: its choice and figures travel with the version
    assert tags["kindml.quantization"] in ("ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq")
