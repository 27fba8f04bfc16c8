"""The Prometheus exposition: drift gauges computed at scrape time, request metrics, bounded labels."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kindml.monitoring import metrics as mm
from kindml.monitoring.drift import DriftMonitor
from kindml.monitoring.profile import build_profile

pytestmark = pytest.mark.unit


def _samples(registry) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 20_000
    return build_profile({"log_amount": rng.normal(size=n), "is_night": (rng.random(n) < 0.1).astype(float)},
                         {"channel": rng.choice(["pos", "online"], n)}, rng.random(n))


def _feed(mon, n, shift=0.0, seed=1):
    rng = np.random.default_rng(seed)
    mon.observe({"log_amount": rng.normal(shift, 1, n), "is_night": (rng.random(n) < 0.1).astype(float)},
                {"channel": rng.choice(["pos", "online"], n)}, rng.random(n))


def test_drift_series_with_labels_and_methods(profile):
    reg = CollectorRegistry()
    mon = DriftMonitor(profile, "fraud-detector", "7", window=1000, min_samples=100)
    mm.register_monitor(mon, reg)
    _feed(mon, 1000, shift=1.5)
    s = _samples(reg)
    feat = {(x.labels["feature"], x.labels["method"]): x.value for x in s["kindml_feature_drift"]}
    assert set(feat) == {("log_amount", "psi"), ("log_amount", "js"), ("log_amount", "ks"),
                         ("is_night", "psi"), ("is_night", "js"), ("is_night", "ks"),
                         ("channel", "psi"), ("channel", "js")}
    assert all(x.labels.keys() == {"model", "version", "feature", "method"} for x in s["kindml_feature_drift"])
    assert {x.labels["model"] for x in s["kindml_feature_drift"]} == {"fraud-detector"}
    assert feat[("log_amount", "psi")] > 0.2 > feat[("is_night", "psi")]
    pred = {x.labels["method"]: x.value for x in s["kindml_prediction_drift"]}
    assert set(pred) == {"psi", "js", "ks"} and pred["psi"] < 0.1
    (w,) = s["kindml_window_samples"]
    assert w.labels == {"model": "fraud-detector", "version": "7"} and w.value == 1000


def test_computed_at_scrape_time_and_silent_before_min_samples(profile):
    reg = CollectorRegistry()
    mon = DriftMonitor(profile, "m", "1", window=1000, min_samples=500)
    mm.register_monitor(mon, reg)
    _feed(mon, 499)
    s = _samples(reg)
    assert "kindml_feature_drift" not in s and "kindml_prediction_drift" not in s
    assert s["kindml_window_samples"][0].value == 499
    _feed(mon, 1, seed=2)
    assert "kindml_feature_drift" in _samples(reg)  # no request-time work: the next scrape sees it


def test_reattaching_a_version_replaces_and_dead_monitors_disappear(profile):
    reg = CollectorRegistry()
    a = DriftMonitor(profile, "m", "1", window=200, min_samples=10)
    b = DriftMonitor(profile, "m", "1", window=200, min_samples=10)
    mm.register_monitor(a, reg)
    mm.register_monitor(b, reg)
    _feed(a, 50)
    _feed(b, 20)
    (w,) = _samples(reg)["kindml_window_samples"]
    assert w.value == 20  # one series per (model, version): the newest monitor
    del a, b
    gc.collect()
    assert "kindml_window_samples" not in _samples(reg)


def test_request_metrics_names_buckets_and_preinitialised_codes():
    reg = CollectorRegistry()
    m = mm.register_metrics(reg)
    assert mm.register_metrics(reg) is m  # idempotent
    mm.init_model("fraud", "3", reg)
    s = _samples(reg)
    codes = {x.labels["code"]: x.value for x in s["kindml_requests_total"]}
    assert codes == {"200": 0.0, "400": 0.0, "500": 0.0}
    for x in s["kindml_online_store_errors_total"]:
        assert x.value == 0.0
    mm.record_request("fraud", "3", "200", 0.0012, reg)
    mm.record_request("fraud", "3", 200, 0.0025, reg)
    mm.record_request("fraud", "3", "400", 0.0001, reg)
    mm.record_request("fraud", "3", "weird", 0.5, reg)
    mm.count_unknown_entities("fraud", "3", "account_id", 4, reg)
    mm.count_unknown_entities("fraud", "3", "account_id", 0, reg)
    mm.count_online_store_error("fraud", "3", registry=reg)
    s = _samples(reg)
    codes = {x.labels["code"]: x.value for x in s["kindml_requests_total"]}
    assert codes == {"200": 2.0, "400": 1.0, "500": 0.0, "other": 1.0}
    buckets = {x.labels["le"]: x.value for x in s["kindml_request_latency_seconds_bucket"]}
    assert set(buckets) == {*(str(b) for b in mm.LATENCY_BUCKETS), "+Inf"}
    assert buckets["0.001"] == 0 and buckets["0.002"] == 1 and buckets["0.003"] == 2 and buckets["+Inf"] == 2  # only 2xx observed
    assert s["kindml_request_latency_seconds_count"][0].value == 2
    (unknown,) = s["kindml_unknown_entities_total"]
    assert unknown.value == 4 and unknown.labels == {"model": "fraud", "version": "3", "entity": "account_id"}
    assert s["kindml_online_store_errors_total"][0].value == 1


def test_latency_buckets_cover_half_a_millisecond_to_a_second():
    b = mm.LATENCY_BUCKETS
    assert b[0] == 0.0005 and b[-1] == 1.0 and list(b) == sorted(b)
    assert 0.003 in b and 0.008 in b  # the p50 / p99 goals are bucket boundaries


def test_default_registry_helpers_are_what_kserve_serves(profile):
    mon = DriftMonitor(profile, "default-registry-test", "1", window=200, min_samples=10)
    mm.register_monitor(mon)
    _feed(mon, 50)
    mm.record_request("default-registry-test", "1", "200", 0.001)
    text = generate_latest(REGISTRY).decode()
    assert 'kindml_window_samples{model="default-registry-test",version="1"} 50.0' in text
    assert 'kindml_requests_total{code="200",model="default-registry-test",version="1"} 1.0' in text
    mm.unregister_monitor(mon)
    assert 'kindml_window_samples{model="default-registry-test"' not in generate_latest(REGISTRY).decode()
