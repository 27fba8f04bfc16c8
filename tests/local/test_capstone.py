"""The capstone end to end on the embedded default: kfp.local + Feast + Ray + MLflow + GE, small data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.local

SMALL = ["--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2"]


def kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def home(fraud_runs: dict) -> Path:
    return fraud_runs["home"]  # runs "corrupt" and "good" (tests/local/conftest.py)


def test_corrupted_data_stops_at_validate(home: Path, fraud_runs: dict) -> None:
    res = fraud_runs["corrupt"]
    assert res.returncode == 4, res.stderr
    assert "Traceback" not in res.stderr
    assert "data validation failed" in res.stderr and "--quarantine" in res.stderr
    summary = json.loads((home / "runs" / "corrupt" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_stage"] == "validate"
    assert summary["stages"]["features"]["status"] == "not_run"
    report = Path(summary["validation_report"])
    assert report.is_file() and "expect_column_values_to_be_between" in report.read_text()


def test_capstone_with_quarantine_registers_serves_and_monitors(home: Path, fraud_runs: dict) -> None:
    res = fraud_runs["good"]
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
    # delayed labels: every answer carried a prediction_id, the labels were joined, and the late traffic's concept
    # shift (default data.concept_shift 1.0: the label relationship changes, the inputs do not) fired the quality alert
    q = s["quality"]
    assert q["feedback"] and q["feedback"]["joined"] > 1000 and q["feedback"]["errors"] == 0, q
    assert q["quality_alert_fired"], q
    assert q["realised"]["champion:roc_auc"] < q["reference"]["roc_auc"] - 0.1, q
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


def test_kind_target_summary_is_built_the_same_way_from_published_results(home: Path) -> None:
    """On the kind target the stage results travel through the model's MLflow run; the summary must equal the local one.

    Uses the real results of the run above: publishes them as the cluster's
    register/deploy/monitor stages do (kindml.pipeline.outputs, target kind,
    into this workspace's real MLflow store), then runs `run_on_kfp` with the
    KFP API replaced at the client boundary (no KFP server can run here).
    """
    import shutil

    from kindml.config import KindmlConfig
    from kindml.pipeline import outputs
    from kindml.pipeline.remote import run_on_kfp
    from kindml.pipeline.source import from_module
    from kindml.runtime import RuntimeEnv
    from kindml.workspace import Workspace

    local = json.loads((home / "runs" / "good" / "summary.json").read_text())
    kfp_dir = home / "runs" / "good" / "kfp"
    ws = Workspace(home)
    folders = {}
    for name, files in outputs.SUMMARY_FILES.items():
        hits = [p.parent for p in kfp_dir.rglob(f"{name}/{files[0]}")]
        assert hits, f"the local run has no {name}/{files[0]}"
        folders[name] = hits[0]
    env = RuntimeEnv(target="kind", workspace=str(home), mlflow_tracking_uri=ws.mlflow_tracking_uri, feature_repo=str(ws.features))
    registered = json.loads((folders["registered"] / "registered.json").read_text())
    mlflow_run = outputs.model_run_id(registered)
    logged = outputs.publish(env, mlflow_run, {k: folders[k] for k in ("raw", "validation", "model", "evaluation", "registered")},
                             pipeline_run_id="on-kind")
    logged += outputs.publish(env, mlflow_run, {"deployed": folders["deployed"]})
    logged += outputs.publish(env, mlflow_run, {"monitoring": folders["monitoring"]})
    assert sorted(logged) == sorted(f"{n}/{f}" for n, fs in outputs.SUMMARY_FILES.items() for f in fs)
    assert outputs.publish(env.model_copy(update={"target": "local"}), mlflow_run, folders) == []  # a no-op on the embedded default

    from kfp_server_api import V2beta1PipelineTaskDetail, V2beta1Run, V2beta1RunDetails

    t = [V2beta1PipelineTaskDetail(display_name=name, state="SUCCEEDED", start_time=datetime(2026, 12, 1, tzinfo=UTC),
                                   end_time=datetime(2026, 12, 1, 0, 0, 10, tzinfo=UTC)) for name in local["stages"]]

    class Kfp:  # the KFP API at the client boundary
        def create_run_from_pipeline_func(self, *a: object, **kw: object) -> V2beta1Run:
            return V2beta1Run(run_id="kfp-1", state="PENDING")

        def get_run(self, run_id: str) -> V2beta1Run:
            return V2beta1Run(run_id=run_id, state="SUCCEEDED", run_details=V2beta1RunDetails(task_details=t))

    source = from_module("fraud", "kindml.pipelines.fraud.pipeline:pipeline", "kindml.pipelines.fraud.workload")
    try:
        s = run_on_kfp(source, KindmlConfig(), ws, "on-kind", client=Kfp(), poll_s=0, mlflow_uri=ws.mlflow_tracking_uri)
    finally:
        shutil.rmtree(ws.run_dir("on-kind"), ignore_errors=True)
    assert s["target"] == "kind" and s["status"] == "succeeded" and s["kfp_run_id"] == "kfp-1"
    assert sorted(s["results_fetched"]) == sorted(logged)
    for key in ("metrics", "training", "gate", "data", "validation", "model", "serving", "drift"):
        assert s[key] == local[key], key
    assert s["deployment"] == local["deployment"]
    assert all(v == {"status": "succeeded", "seconds": 10.0} for v in s["stages"].values())
