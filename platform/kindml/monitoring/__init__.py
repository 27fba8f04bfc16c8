"""Drift monitoring: reference profiles, sliding-window drift statistics, Prometheus metrics, alert rules, a local Prometheus.

Modules (import them directly; this package imports nothing):

- :mod:`kindml.monitoring.profile` -- the reference profile stored with a model version;
- :mod:`kindml.monitoring.drift` -- :class:`~kindml.monitoring.drift.DriftMonitor`, the bounded
  sliding-window accumulator of live inputs and scores, and the pure PSI / JS / KS functions;
- :mod:`kindml.monitoring.metrics` -- the Prometheus metrics (drift gauges computed at scrape
  time, request counters and latency histograms) and the TrustyAI name mapping;
- :mod:`kindml.monitoring.rules` -- alert and recording rules from one source, rendered as the
  cluster ``PrometheusRule`` and as a plain rule file for the local Prometheus;
- :mod:`kindml.monitoring.prometheus` -- start, query and stop a real local Prometheus.
"""
