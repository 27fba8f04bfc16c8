"""The predictor as a real KServe ModelServer process on a model registered by a real (small) capstone run.

Checks v1 and v2 REST, Feast-backed and fully-specified rows, the bad-input
matrix (every case 4xx with a message, and the server still answers), and
/metrics.
"""

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

SMALL = ["--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2", "--no-serve"]


def kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


def post(url: str, body: bytes | str | dict[str, Any], ctype: str | None = "application/json") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    headers = {"Content-Type": ctype} if ctype else {}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("serving")
    res = kindml(["capstone", *SMALL, "--run-id", "s"], home)
    assert res.returncode == 0, res.stderr[-3000:]
    res = kindml(["serve", "start", "-o", "json"], home, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    st = json.loads(res.stdout)
    import pandas as pd

    summary = json.loads((home / "runs" / "s" / "summary.json").read_text())
    tx = pd.read_parquet(next((home / "runs" / "s" / "kfp").rglob("clean/transactions.parquet")))
    yield {"home": home, "url": st["url"], "model": st["model"], "version": st["version"], "tx": tx, "summary": summary}
    kindml(["serve", "stop"], home)


def instance(row: Any) -> dict[str, Any]:
    return {"account_id": int(row["account_id"]), "merchant_id": int(row["merchant_id"]), "amount": float(row["amount"]),
            "merchant_category": str(row["merchant_category"]), "channel": str(row["channel"]), "country": str(row["country"]),
            "event_timestamp": row["event_timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_v1_and_v2_agree_and_report_version(server) -> None:  # type: ignore[no-untyped-def]
    inst = instance(server["tx"].iloc[-1])
    code, v1 = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst]})
    assert code == 200, v1
    p = v1["predictions"][0]
    assert 0.0 <= p["score"] <= 1.0 and isinstance(p["decision"], bool) and p["account_known"] is True
    assert v1["model_version"] == server["version"]
    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else ("INT64" if isinstance(v, int) else "FP64"), "data": [v]}
              for k, v in inst.items()]
    code, v2 = post(f"{server['url']}/v2/models/{server['model']}/infer", {"inputs": inputs})
    assert code == 200, v2
    score = next(o for o in v2["outputs"] if o["name"] == "score")["data"][0]
    assert abs(score - p["score"]) < 1e-5
    assert v2["model_version"] == server["version"]


def test_unknown_account_is_scored_with_defaults(server) -> None:  # type: ignore[no-untyped-def]
    inst = instance(server["tx"].iloc[-1]) | {"account_id": 987_654_321}
    code, body = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst]})
    assert code == 200 and body["predictions"][0]["account_known"] is False


def test_fully_specified_rows_skip_feast(server) -> None:  # type: ignore[no-untyped-def]
    from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES

    inst = instance(server["tx"].iloc[-1]) | {f: 1.0 for f in (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)} | {"home_country": "US"}
    code, body = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst, inst]})
    assert code == 200 and len(body["predictions"]) == 2 and body["predictions"][0]["account_known"] is True


BAD_CASES = {
    "not json": ("{nope", "application/json", "not valid JSON"),
    "no content type": ('{"instances": []}', None, "Content-Type"),
    "text content type": ('{"instances": []}', "text/plain", "Content-Type"),
    "not utf8": (b"\xff\xfe{", "application/json", "UTF-8"),
    "no instances": ({"rows": []}, "application/json", "instances"),
    "instances not list": ({"instances": {"a": 1}}, "application/json", "list"),
    "empty batch": ({"instances": []}, "application/json", "empty"),
    "row not object": ({"instances": [1]}, "application/json", "object"),
    "missing field": ({"instances": [{"account_id": 1}]}, "application/json", "missing"),
    "wrong type": ({"instances": [{"account_id": "abc", "merchant_id": 1, "amount": 1, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}, "application/json", "account_id"),
    "nan amount": ('{"instances": [{"account_id": 1, "merchant_id": 1, "amount": NaN, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}', "application/json", "finite"),
    "inf amount": ('{"instances": [{"account_id": 1, "merchant_id": 1, "amount": Infinity, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}', "application/json", "finite"),
    "negative amount": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": -5, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}, "application/json", "amount"),
    "bad category": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "crypto", "channel": "pos", "country": "US"}]}, "application/json", "merchant_category"),
    "bad timestamp": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "event_timestamp": "yesterday"}]}, "application/json", "event_timestamp"),
    "unknown field": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "x": 1}]}, "application/json", "unknown field"),
    "partial features": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "txn_count_30d": 3}]}, "application/json", "features"),
    "oversize batch": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US"}] * 1025}, "application/json", "limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gets_4xx_and_server_survives(server, case: str) -> None:  # type: ignore[no-untyped-def]
    body, ctype, needle = BAD_CASES[case]
    code, answer = post(f"{server['url']}/v1/models/{server['model']}:predict", body, ctype)
    assert 400 <= code < 500, (case, code, answer)
    assert needle.lower() in json.dumps(answer).lower(), (case, answer)
    ok, _ = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [instance(server["tx"].iloc[-1])]})
    assert ok == 200


@pytest.mark.parametrize("inputs,needle", [
    ([], "empty"),
    ([{"name": "account_id", "shape": [2], "datatype": "INT64", "data": [1]}], "shape"),
    ([{"name": "bogus", "shape": [1], "datatype": "INT64", "data": [1]}], "not a known field"),
    ([{"name": "account_id", "shape": [1, 1], "datatype": "INT64", "data": [1]}], "1-D"),
])
def test_bad_v2_input(server, inputs, needle: str) -> None:  # type: ignore[no-untyped-def]
    code, answer = post(f"{server['url']}/v2/models/{server['model']}/infer", {"inputs": inputs})
    assert 400 <= code < 500, answer
    assert needle.lower() in json.dumps(answer).lower()


def test_metrics_exposed(server) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"{server['url']}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'kindml_requests_total{{code="200",model="{server["model"]}",version="{server["version"]}"}}' in text or "kindml_requests_total{" in text
    assert "kindml_request_latency_seconds_bucket" in text
    assert 'kindml_feature_drift{' in text or "kindml_window_samples" in text


def _watch_alerts(server, drift: float, seconds: float) -> tuple[list, list, list]:  # type: ignore[no-untyped-def]
    """A real Prometheus scraping the running predictor while loadgen sends traffic; returns (alerts, psi series, samples)."""
    from kindml.monitoring.prometheus import LocalPrometheus
    from kindml.monitoring.rules import write_local_rules
    from kindml.pipelines.fraud.data import DriftSpec, build_world, generate_live
    from kindml.pipelines.fraud.serving import FraudSignature
    from kindml.serving.loadgen import payloads, run_load

    s = server["summary"]["params"]
    world = build_world(s["seed"], 1500, 400, s["days"], None)
    tx = generate_live(world, 3000, DriftSpec.from_severity(drift) if drift else None, stream=40 + int(drift * 10))
    folder = server["home"] / f"prom-{drift}"
    rules = write_local_rules(folder / "rules.yml")
    host_port = server["url"].removeprefix("http://")
    with LocalPrometheus(folder, [host_port], rules) as prom:
        stats = run_load(server["url"], server["model"], payloads(FraudSignature([], 0.5).instances(tx)), threads=4)
        assert stats.errors == 0
        import time

        deadline = time.monotonic() + seconds
        firing: list = []
        while time.monotonic() < deadline:
            firing = [a for a in prom.alerts() if a["state"] == "firing" and a["labels"]["alertname"] in ("KindmlFeatureDrift", "KindmlPredictionDrift")]
            if drift and firing:
                break
            time.sleep(1)
        psi = prom.query(f'kindml_feature_drift{{method="psi",model="{server["model"]}"}}')
        samples = prom.query("kindml_window_samples")
    return firing, psi, samples


def test_monitoring_silent_under_clean_traffic(server) -> None:  # type: ignore[no-untyped-def]
    firing, psi, samples = _watch_alerts(server, 0.0, 25)
    assert firing == []
    assert psi, "kindml_feature_drift series missing in Prometheus"
    labels = psi[0]["metric"]
    assert {"model", "version", "feature", "method"} <= set(labels) and labels["version"] == server["version"]
    assert {r["metric"]["feature"] for r in psi} >= {"log_amount", "merchant_category"}
    assert float(samples[0]["value"][1]) >= 500


def test_monitoring_alerts_under_drifted_traffic(server) -> None:  # type: ignore[no-untyped-def]
    firing, psi, _ = _watch_alerts(server, 1.0, 60)
    assert firing, "no drift alert fired under drifted traffic"
    assert max(float(r["value"][1]) for r in psi) > 0.2


def test_load_60s_at_target_rate_zero_errors_and_bounded_memory(server) -> None:  # type: ignore[no-untyped-def]
    """Loopback load at 200 rps for 60 s (plus a 10 s warm-up): zero errors; predictor RSS growth bounded
    (drift windows and the feature cache are fixed-size). Latency percentiles are printed, not asserted:
    performance is measured in benchmarks/serving, not in tests."""
    import psutil

    from kindml.pipelines.fraud.data import build_world, generate_live
    from kindml.pipelines.fraud.serving import FraudSignature
    from kindml.serving.loadgen import payloads, run_load
    from kindml.serving.server import read_state

    st = read_state(__import__("kindml.workspace", fromlist=["Workspace"]).Workspace(server["home"]))
    proc = psutil.Process(st.pid)
    s = server["summary"]["params"]
    world = build_world(s["seed"], 1500, 400, s["days"], None)
    bodies = payloads(FraudSignature([], 0.5).instances(generate_live(world, 14_000, None, stream=77)))
    warm = run_load(server["url"], server["model"], bodies[:2000], rps=200, duration=10)
    rss0 = proc.memory_info().rss
    stats = run_load(server["url"], server["model"], bodies[2000:], rps=200, duration=60)
    rss1 = proc.memory_info().rss
    summary = stats.summary()
    print(f"\nload 200 rps x 60 s: {json.dumps(summary)}; rss {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB")
    assert warm.errors == 0 and stats.errors == 0 and stats.requests == 12_000
    assert rss1 - rss0 < 40 * 2**20, f"predictor memory grew by {(rss1 - rss0) / 2**20:.1f} MiB in 60 s"
