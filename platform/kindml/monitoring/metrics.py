"""Prometheus metrics of the predictor: drift gauges computed at scrape time, request counters, latency histograms.

KServe 0.21's ``ModelServer`` serves ``/metrics`` from the *default*
``prometheus_client`` registry (``kserve/protocol/rest/server.py``:
``encoder(REGISTRY)``), so everything registered here on
``prometheus_client.REGISTRY`` appears there next to KServe's own
``request_predict_seconds`` etc. — with one worker. With ``workers > 1``
(``kindml serve run --workers N``) every worker is its own process, so a
scrape of one worker's default registry would see a fraction of the traffic:
there ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start,
prometheus_client's multiprocess mode keeps every process's counters and
histograms in files there, and ``/metrics`` serves :func:`exposition_registry`:
those files summed (``MultiProcessCollector``) plus the drift collector, whose
monitor reads the one drift window all workers share (``DriftMonitor(shared=...)``).
Any worker answering a scrape then reports the whole server, exactly what one
worker would report for the same traffic. (Process metrics such as
``process_cpu_seconds_total`` are per process and are not exported in that mode.)

Metrics (Prometheus naming: ``kindml_`` prefix, base units, ``_total`` on counters)

==========================================================  =========  ==============================================
name{labels}                                                type       meaning
==========================================================  =========  ==============================================
``kindml_feature_drift{model,version,feature,method}``      gauge      drift of one input vs the training reference;
                                                                       method ``psi`` | ``js`` | ``ks`` (``ks`` only
                                                                       for numeric features)
``kindml_prediction_drift{model,version,method}``           gauge      drift of the score distribution (psi|js|ks)
``kindml_window_samples{model,version}``                    gauge      rows currently in the drift window
``kindml_requests_total{model,version,code}``               counter    prediction requests by HTTP status code
``kindml_request_latency_seconds{model,version}``           histogram  server-side latency of successful (2xx)
                                                                       requests, buckets 0.5 ms .. 1 s
``kindml_unknown_entities_total{model,version,entity}``      counter    rows scored with default features because the
                                                                       entity (a Feast join key, e.g. ``account_id``)
                                                                       has no fresh online features
``kindml_online_store_errors_total{model,version}``         counter    online-store lookups that failed (degraded)
==========================================================  =========  ==============================================

Drift gauges are computed by a custom collector when Prometheus scrapes (not
per request); until a window holds ``min_samples`` rows only
``kindml_window_samples`` is exported for it. Label cardinality is bounded:
``feature`` comes from the reference profile (a fixed list), ``method`` has 3
values, ``code`` is a 3-digit HTTP status (anything else becomes ``other``), and
one predictor process serves one ``model``/``version``.

Mapping for users coming from TrustyAI (Open Data Hub / OpenShift AI)
    TrustyAI publishes one gauge per scheduled metric request, named
    ``"trustyai_" + metricName.lower()`` with labels ``model``, ``request`` (the
    request's UUID), the request's tags and, for per-column drift metrics,
    ``subcategory`` = the column (verified in trustyai-explainability's
    ``PrometheusPublisher.java`` and trustyai-service's
    ``prometheus_publisher.py``):

    ===================================  ==============================================  =========================================
    TrustyAI                              kindml                                          difference
    ===================================  ==============================================  =========================================
    ``trustyai_kstest{subcategory=f}``    ``kindml_feature_drift{feature=f,method="ks"}``  TrustyAI's value is the test's *p-value*
                                                                                          (alert when low); ours is the binned KS
                                                                                          *statistic* D (alert when high)
    ``trustyai_approxkstest``             ``kindml_feature_drift{method="ks"}``           TrustyAI: GK-sketch approximation, p-value;
                                                                                          ours: reference-quantile bins, statistic
    ``trustyai_jensenshannon``            ``kindml_feature_drift{method="js"}``           ours is the divergence in bits, [0, 1];
                                                                                          the JS *distance* is its square root
                                                                                          (TrustyAI's request chooses either)
    ``trustyai_meanshift``                (none; closest: ``method="psi"``)               TrustyAI: t-test p-value of the mean
    ``trustyai_fouriermmd``               (none)                                          --
    ``trustyai_spd``, ``trustyai_dir``    (none)                                          fairness metrics, out of scope (no
                                                                                          protected attribute in kindml's model)
    ===================================  ==============================================  =========================================

    kindml has no ``request`` label: the drift window and its methods are fixed
    per model version instead of being scheduled per request, and the values
    come from the predictor's own sliding window rather than from stored
    inference batches.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.008, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
PREINITIALISED_CODES: tuple[str, ...] = ("200", "400", "500")
_CODE = re.compile(r"^[1-5][0-9][0-9]$")

FEATURE_DRIFT = "kindml_feature_drift"
PREDICTION_DRIFT = "kindml_prediction_drift"
WINDOW_SAMPLES = "kindml_window_samples"
REQUESTS = "kindml_requests_total"
LATENCY = "kindml_request_latency_seconds"
UNKNOWN_ENTITIES = "kindml_unknown_entities_total"
STORE_ERRORS = "kindml_online_store_errors_total"


def _code(code: Any) -> str:
    c = str(code)
    return c if _CODE.match(c) else "other"


class DriftCollector:
    """A ``prometheus_client`` collector that computes drift from the attached monitors at scrape time.

    Monitors are held weakly and keyed by (model, version): attaching a new
    monitor for the same version replaces the old one (no duplicate series).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._monitors: dict[tuple[str, str], weakref.ref[Any]] = {}

    def attach(self, monitor: Any) -> None:
        with self._lock:
            self._monitors[(monitor.model, monitor.version)] = weakref.ref(monitor)

    def detach(self, monitor: Any) -> None:
        with self._lock:
            key = (monitor.model, monitor.version)
            ref = self._monitors.get(key)
            if ref is not None and ref() is monitor:
                del self._monitors[key]

    def monitors(self) -> list[Any]:
        with self._lock:
            live = [(k, r()) for k, r in self._monitors.items()]
            for k, m in live:
                if m is None:
                    del self._monitors[k]
        return [m for _, m in live if m is not None]

    @staticmethod
    def _families() -> tuple[Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(FEATURE_DRIFT, "Drift of a model input vs its training reference over the sliding window "
                              "(method: psi, js = Jensen-Shannon divergence in bits, ks = binned KS statistic).",
                              labels=["model", "version", "feature", "method"]),
            GaugeMetricFamily(PREDICTION_DRIFT, "Drift of the score distribution vs the training reference (psi, js, ks).",
                              labels=["model", "version", "method"]),
            GaugeMetricFamily(WINDOW_SAMPLES, "Rows currently in the drift window.", labels=["model", "version"]),
        )

    def describe(self) -> Iterable[Any]:
        return self._families()

    def collect(self) -> Iterator[Any]:
        feat, pred, samples = self._families()
        for mon in self.monitors():
            rep = mon.report()
            samples.add_metric([rep.model, rep.version], float(rep.samples))
            if not rep.ready:
                continue
            for name, values in rep.features.items():
                for method, v in values.items():
                    feat.add_metric([rep.model, rep.version, name, method], v)
            for method, v in rep.prediction.items():
                pred.add_metric([rep.model, rep.version, method], v)
        yield feat
        yield pred
        yield samples


@dataclass
class KindmlMetrics:
    """Every kindml metric registered on one registry."""

    registry: Any
    requests: Any
    latency: Any
    unknown_entities: Any
    store_errors: Any
    drift: DriftCollector

    def init_model(self, model: str, version: str) -> None:
        """Create the series of a model version at zero, so rate() and ratios work from the first scrape."""
        for code in PREINITIALISED_CODES:
            self.requests.labels(model, version, code)
        self.latency.labels(model, version)
        self.store_errors.labels(model, version)

    def record_request(self, model: str, version: str, code: Any, seconds: float) -> None:
        c = _code(code)
        self.requests.labels(model, version, c).inc()
        if c.startswith("2"):
            self.latency.labels(model, version).observe(seconds)

    def count_unknown_entities(self, model: str, version: str, entity: str, n: int = 1) -> None:
        if n > 0:
            self.unknown_entities.labels(model, version, entity).inc(n)

    def count_online_store_error(self, model: str, version: str, n: int = 1) -> None:
        if n > 0:
            self.store_errors.labels(model, version).inc(n)


_LOCK = threading.Lock()
_BY_REGISTRY: dict[int, KindmlMetrics] = {}
_DEFAULT: KindmlMetrics | None = None  # fast path of the helpers: the default registry
_SEEN: set[tuple[int, str, str]] = set()


def register_metrics(registry: Any = None) -> KindmlMetrics:
    """Register kindml's metrics on ``registry`` (default: ``prometheus_client.REGISTRY``, which KServe serves). Idempotent."""
    global _DEFAULT
    from prometheus_client import REGISTRY, Counter, Histogram

    registry = REGISTRY if registry is None else registry
    with _LOCK:
        existing = _BY_REGISTRY.get(id(registry))
        if existing is not None and existing.registry is registry:
            return existing
        m = KindmlMetrics(
            registry=registry,
            requests=Counter("kindml_requests", "Prediction requests by HTTP status code.", ["model", "version", "code"], registry=registry),
            latency=Histogram("kindml_request_latency_seconds", "Server-side latency of successful prediction requests.",
                              ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry),
            unknown_entities=Counter("kindml_unknown_entities", "Rows scored with default features: the entity has no fresh online features.",
                                     ["model", "version", "entity"], registry=registry),
            store_errors=Counter("kindml_online_store_errors", "Online feature store lookups that failed (degraded answers).",
                                 ["model", "version"], registry=registry),
            drift=DriftCollector(),
        )
        registry.register(m.drift)
        _BY_REGISTRY[id(registry)] = m
        if registry is REGISTRY:
            _DEFAULT = m
        return m


def _metrics_for(model: str, version: str, registry: Any = None) -> KindmlMetrics:
    m = _DEFAULT if registry is None and _DEFAULT is not None else register_metrics(registry)
    key = (id(m.registry), model, version)
    if key not in _SEEN:
        with _LOCK:
            _SEEN.add(key)
        m.init_model(model, version)
    return m


# ---- the helpers the predictor calls (default registry) ----------------------------------

def register_monitor(monitor: Any, registry: Any = None) -> None:
    """Export ``monitor``'s drift (a :class:`~kindml.monitoring.drift.DriftMonitor`) at scrape time."""
    _metrics_for(monitor.model, monitor.version, registry).drift.attach(monitor)


def unregister_monitor(monitor: Any, registry: Any = None) -> None:
    register_metrics(registry).drift.detach(monitor)


def init_model(model: str, version: str, registry: Any = None) -> None:
    _metrics_for(model, version, registry)


def record_request(model: str, version: str, code: Any, seconds: float, registry: Any = None) -> None:
    """Count one request by status code; observe its latency if it succeeded (2xx)."""
    _metrics_for(model, version, registry).record_request(model, version, code, seconds)


def count_unknown_entities(model: str, version: str, entity: str, n: int = 1, registry: Any = None) -> None:
    _metrics_for(model, version, registry).count_unknown_entities(model, version, entity, n)


def count_online_store_error(model: str, version: str, n: int = 1, registry: Any = None) -> None:
    _metrics_for(model, version, registry).count_online_store_error(model, version, n)


# ---- experiments: per-variant series ---------------------------------------------------------

SCORE_BUCKETS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
_VARIANTS: dict[str, Any] = {}


def _variant_metrics() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    with _LOCK:
        if not _VARIANTS:
            labels = ["model", "experiment", "variant"]
            _VARIANTS["rows"] = Counter("kindml_experiment_rows", "Rows scored per variant of a running experiment "
                                        "(shadow: the challenger's recorded-only rows too).", labels)
            _VARIANTS["latency"] = Histogram("kindml_experiment_latency_seconds", "Scoring time of a variant's part of a request.",
                                             labels, buckets=LATENCY_BUCKETS)
            _VARIANTS["score"] = Histogram("kindml_experiment_score", "Distribution of the variant's scores (binary: p; multiclass: "
                                           "top probability).", labels, buckets=SCORE_BUCKETS)
        return _VARIANTS


def init_variants(model: str, experiment: str, variants: tuple[str, ...]) -> None:
    """Create an experiment's per-variant series at zero."""
    m = _variant_metrics()
    for v in variants:
        m["rows"].labels(model, experiment, v)
        m["latency"].labels(model, experiment, v)
        m["score"].labels(model, experiment, v)


def record_variant(model: str, experiment: str, variant: str, rows: int, seconds: float, scores: Any) -> None:
    """One variant's share of a request: its rows, scoring time and scores."""
    m = _variant_metrics()
    m["rows"].labels(model, experiment, variant).inc(rows)
    m["latency"].labels(model, experiment, variant).observe(seconds)
    hist = m["score"].labels(model, experiment, variant)
    for s in scores:
        hist.observe(float(s))


# ---- what /metrics serves ------------------------------------------------------------------

_EXPOSITION: Any = None
_EXTRA: list[Any] = []


def register_collector(collector: Any) -> None:
    """Export another scrape-time collector (e.g. realised quality) on the default registry and, with several
    workers, on the summed one: like the drift collector, it must read state every worker shares."""
    from prometheus_client import REGISTRY

    with _LOCK:
        if any(c is collector for c in _EXTRA):
            return
        _EXTRA.append(collector)
        REGISTRY.register(collector)
        if _EXPOSITION is not None:
            _EXPOSITION.register(collector)


#: Set (with ``PROMETHEUS_MULTIPROC_DIR``) by the server that chose a shared metrics folder for its workers.
#: ``PROMETHEUS_MULTIPROC_DIR`` alone is no proof of multiprocess mode: importing Feast sets it (and
#: ``PROMETHEUS_MULTIPROCESS_DIR``) to a temporary folder of Feast's own (``feast/metrics.py``), and child
#: processes inherit both — a one-worker predictor would then sum other servers' files into its scrape.
METRICS_DIR_ENV = "KINDML_METRICS_DIR"
#: Every variable prometheus_client or Feast reads to pick a multiprocess folder.
PROMETHEUS_DIR_ENVS = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "PROMETHEUS_MULTIPROCESS_DIR")


def multiprocess_dir() -> str | None:
    """The folder of prometheus_client's multiprocess mode, when kindml put this process's server in it."""
    return os.environ.get(METRICS_DIR_ENV) or None


def take_caller_metrics_dir(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """Call first in a serving process, before anything imports prometheus_client or Feast: clears every inherited
    multiprocess variable and returns the ``PROMETHEUS_MULTIPROC_DIR`` the caller chose, if any.

    A folder Feast made in a parent process (it sets ``PROMETHEUS_MULTIPROCESS_DIR`` and ``PROMETHEUS_MULTIPROC_DIR``
    to the same path; the parent deletes it when it exits) is not the caller's choice and is dropped.
    """
    given = environ.get("PROMETHEUS_MULTIPROC_DIR") or environ.get("prometheus_multiproc_dir")
    feast = environ.get("PROMETHEUS_MULTIPROCESS_DIR")
    for name in (*PROMETHEUS_DIR_ENVS, METRICS_DIR_ENV):
        environ.pop(name, None)
    return given if given and given != feast else None


def exposition_registry() -> Any:
    """The registry ``/metrics`` encodes: the default one with one worker; with several, every worker's files summed + drift.

    Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): counters and histograms of
    every process (kindml's and KServe's own) are read from their files and
    summed, and the drift collector of the default registry is added — its
    monitors read the window every worker shares, so it is the same whichever
    worker computes it.
    """
    global _EXPOSITION
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if multiprocess_dir() is None:
        return REGISTRY
    drift = register_metrics().drift
    with _LOCK:
        if _EXPOSITION is None:
            reg = CollectorRegistry()
            MultiProcessCollector(reg)
            reg.register(drift)
            for extra in _EXTRA:
                reg.register(extra)
            _EXPOSITION = reg
        return _EXPOSITION
