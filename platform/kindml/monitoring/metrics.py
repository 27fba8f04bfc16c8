"""Prometheus metrics of the predictor, on KServe's /metrics (the default prometheus_client registry).

Names (bounded labels: model, version, code, feature from a fixed list, method ∈ psi|js|ks):

- ``kindml_requests_total{model,version,code}``         counter
- ``kindml_request_latency_seconds{model,version}``     histogram (0.5 ms … 1 s)
- ``kindml_unknown_accounts_total{model,version}``      counter: scored with "no history" defaults
- ``kindml_online_store_errors_total{model,version}``   counter: degraded lookups
- ``kindml_feature_drift{model,version,feature,method}`` gauge, computed at scrape time
- ``kindml_prediction_drift{model,version,method}``      gauge, computed at scrape time
- ``kindml_window_samples{model,version}``               gauge

Coming from TrustyAI (Open Data Hub): ``trustyai_kstest`` ≈ ``kindml_feature_drift{method="ks"}``,
``trustyai_jensenshannon`` ≈ ``kindml_feature_drift{method="js"}``; TrustyAI's
``trustyai_meanshift`` has no direct equivalent (PSI is the closest), and its
fairness metrics (``trustyai_spd``, ``trustyai_dir``) are out of scope. kindml's
values come from binned sliding windows (see ``kindml.monitoring.drift``), not
from TrustyAI's stored-inference batches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LOCK = threading.Lock()
_METRICS: dict[str, Any] = {}
_MONITORS: list[Any] = []


def _m() -> dict[str, Any]:
    with _LOCK:
        if not _METRICS:
            _METRICS["requests"] = Counter("kindml_requests", "Prediction requests by HTTP status code.", ["model", "version", "code"])
            _METRICS["latency"] = Histogram("kindml_request_latency_seconds", "Server-side prediction latency.", ["model", "version"],
                                            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.008, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
            _METRICS["unknown"] = Counter("kindml_unknown_accounts", "Transactions of accounts without fresh online features.", ["model", "version"])
            _METRICS["store_errors"] = Counter("kindml_online_store_errors", "Online feature lookups that failed (degraded answers).", ["model", "version"])
            REGISTRY.register(DriftCollector())
        return _METRICS


def record_request(model: str, version: str, code: str, seconds: float) -> None:
    m = _m()
    m["requests"].labels(model, version, code).inc()
    if code == "200":
        m["latency"].labels(model, version).observe(seconds)


def count_unknown_accounts(model: str, version: str, n: int) -> None:
    _m()["unknown"].labels(model, version).inc(n)


def count_online_store_error(model: str, version: str) -> None:
    _m()["store_errors"].labels(model, version).inc()


def register_monitor(monitor: Any) -> None:
    _m()
    with _LOCK:
        _MONITORS.append(monitor)


class DriftCollector(Collector):
    """Computes drift from the registered monitors' windows when Prometheus scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        feat = GaugeMetricFamily("kindml_feature_drift", "Drift of a model input vs the training reference (sliding window).",
                                 labels=["model", "version", "feature", "method"])
        pred = GaugeMetricFamily("kindml_prediction_drift", "Drift of the score distribution vs the training reference.",
                                 labels=["model", "version", "method"])
        samples = GaugeMetricFamily("kindml_window_samples", "Observations in the drift window.", labels=["model", "version"])
        with _LOCK:
            monitors = list(_MONITORS)
        for mon in monitors:
            snap = mon.snapshot()
            samples.add_metric([mon.model, mon.version], snap["samples"])
            for name, values in snap["features"].items():
                for method, v in values.items():
                    feat.add_metric([mon.model, mon.version, name, method], v)
            for method, v in snap["prediction"].items():
                pred.add_metric([mon.model, mon.version, method], v)
        yield feat
        yield pred
        yield samples

    def describe(self) -> list[Any]:
        return []
