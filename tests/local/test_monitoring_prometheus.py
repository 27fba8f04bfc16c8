"""A real Prometheus scrapes real /metrics endpoints fed by DriftMonitors and evaluates kindml's local rules.

Two tiny prometheus_client HTTP servers stand in for predictors (the predictor
itself is tested in test_serving.py): version "drifted" has seen shifted
inputs and scores, version "clean" has seen data from the training
distribution. One Prometheus scrapes both every second; we assert on its HTTP
API that the drift series exist with the right labels, that the drift alerts
fire for "drifted" and that nothing fires for "clean".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kindml.monitoring import metrics as mm
from kindml.monitoring.drift import DriftMonitor
from kindml.monitoring.profile import build_profile
from kindml.monitoring.prometheus import LocalPrometheus, free_port
from kindml.monitoring.rules import profile_values, write_local_rules

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed (`make setup`)"),
]

MODEL = "fraud-detector"
CATS = np.array(["grocery", "travel", "online", "fuel"])


def _data(rng, n, shift=0.0):
    log_amount = rng.normal(3.0 + shift, 1.0, n)
    night = (rng.random(n) < 0.1).astype(np.float64)
    cat = rng.choice(CATS, n, p=[0.4, 0.1, 0.3, 0.2] if not shift else [0.1, 0.4, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(log_amount - 4.5)))
    return {"log_amount": log_amount, "is_night": night}, {"merchant_category": cat}, score


def _exporter(profile, version, shift, seed):
    from prometheus_client import CollectorRegistry, start_http_server

    reg = CollectorRegistry()
    mon = DriftMonitor(profile, MODEL, version, window=2000, min_samples=500)
    mm.register_monitor(mon, reg)
    mm.init_model(MODEL, version, reg)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        mon.observe(*_data(rng, 100, shift))
        mm.record_request(MODEL, version, "200", 0.002, reg)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    return mon, server, thread, port


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    profile = build_profile(*_data(np.random.default_rng(0), 20_000))
    drifted = _exporter(profile, "drifted", 1.0, 1)
    clean = _exporter(profile, "clean", 0.0, 2)
    folder = tmp_path_factory.mktemp("prom")
    rules = write_local_rules(folder / "rules.yml")
    prom = LocalPrometheus(folder / "server", [f"127.0.0.1:{drifted[3]}", f"127.0.0.1:{clean[3]}"], rules)
    prom.start()
    yield prom, drifted, clean
    prom.stop()
    for _, server, thread, _ in (drifted, clean):
        server.shutdown()
        thread.join(5)


def _firing(prom, version):
    return {a["labels"]["alertname"]: a for a in prom.alerts() if a["state"] == "firing" and a["labels"].get("version") == version}


def test_drift_alerts_fire_for_drifted_traffic_and_not_for_clean(stack):
    prom, *_ = stack
    got = prom.wait_for(lambda: {"KindmlFeatureDrift", "KindmlPredictionDrift"} <= set(_firing(prom, "drifted")), timeout=60)
    assert got, f"drift alerts did not fire within 60 s: {prom.alerts()}"
    fired = _firing(prom, "drifted")
    feats = {a["labels"]["feature"] for a in prom.alerts() if a["labels"]["alertname"] == "KindmlFeatureDrift" and a["state"] == "firing"}
    assert {"log_amount", "merchant_category"} <= feats and "is_night" not in feats
    assert fired["KindmlFeatureDrift"]["labels"]["model"] == MODEL and fired["KindmlFeatureDrift"]["labels"]["severity"] == "warning"
    assert float(fired["KindmlPredictionDrift"]["value"]) > 0.2
    # the clean version has been scraped all along. Its first scrape can land up to one scrape interval after the
    # drifted one's, so wait (bounded) until it has been seen for longer than `for:` plus one evaluation; by then
    # anything true for it would be pending or firing -- and nothing may be.
    for_s = int(profile_values("local")["for_feature_drift"].rstrip("s"))
    series = 'kindml_feature_drift{version="clean",feature="log_amount",method="psi"}'

    def clean_seen_for():
        got = prom.query(f"timestamp({series}) - min_over_time(timestamp({series})[5m:1s])")
        return got if got and float(got[0]["value"][1]) >= for_s + 2 else None

    assert prom.wait_for(clean_seen_for, timeout=15), prom.query(f"timestamp({series})")
    assert [a for a in prom.alerts() if a["labels"].get("version") == "clean"] == []


def test_drift_series_exist_with_the_right_labels(stack):
    prom, *_ = stack
    series = prom.wait_for(lambda: prom.series('kindml_feature_drift{version="drifted"}'), timeout=30)
    assert series
    labels = {(s["feature"], s["method"]) for s in series}
    assert labels == {("log_amount", "psi"), ("log_amount", "js"), ("log_amount", "ks"), ("is_night", "psi"), ("is_night", "js"),
                      ("is_night", "ks"), ("merchant_category", "psi"), ("merchant_category", "js")}
    for s in series:
        assert s.keys() == {"__name__", "model", "version", "feature", "method", "job", "instance"}
        assert s["model"] == MODEL and s["job"] == "kindml-predictor"
    assert {s["method"] for s in prom.series('kindml_prediction_drift{version="drifted"}')} == {"psi", "js", "ks"}
    (w,) = prom.query('kindml_window_samples{version="drifted"}')
    assert float(w["value"][1]) == 2000
    psi = {r["metric"]["feature"]: float(r["value"][1]) for r in prom.query('kindml_feature_drift{version="clean",method="psi"}')}
    assert max(psi.values()) < 0.05
    rate = prom.wait_for(lambda: prom.query('model_version:kindml_requests:error_ratio{version="clean"}'), timeout=30)
    assert rate  # recording rules evaluate (NaN without traffic in the window is fine)


def test_stop_on_exception_and_from_another_instance(tmp_path):
    target = f"127.0.0.1:{free_port()}"  # nobody listens: a down target is fine here
    with pytest.raises(KeyboardInterrupt), LocalPrometheus(tmp_path / "a", [target]) as prom:
        pid = prom.proc.pid
        assert prom.status()["ready"]
        raise KeyboardInterrupt  # Ctrl-C inside the block
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not (tmp_path / "a" / "state.json").exists()

    first = LocalPrometheus(tmp_path / "b", [target]).start()
    other = LocalPrometheus(tmp_path / "b", [target])  # e.g. `kindml monitor stop` in another process
    st = other.status()
    assert st["running"] and st["pid"] == first.proc.pid and st["url"] == first.url
    assert other.stop() is True
    first.proc.wait(10)
    assert first.proc.returncode is not None
    assert other.status()["running"] is False
