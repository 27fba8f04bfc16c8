"""Stage ``monitor``: replay clean then drifted traffic through the predictor; a real Prometheus scrapes it and evaluates the rules.

Phases: (1) clean live traffic (the generator without drift) fills the drift
window, (2) traffic drifted by ``data.drift`` replaces it, (3) wait until a
drift alert fires (or, with no drift, for the alert's ``for`` duration plus a
margin, to show that none does). Records latency percentiles, errors, the max
PSI per feature and the alerts that fired with their first-seen time.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.monitoring.rules import DRIFT_ALERTS  # the alerts that mean "retrain"
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload
from kindml.workspace import Workspace

CLEAN_REQUESTS = 1_500
DRIFT_REQUESTS = 3_000
CLEAN_HOLD_S = 3.0  # between the clean and the drifted phase: a few scrapes of the clean window (run report's drift series)


def run(wl: Workload, env: RuntimeEnv, deployed_dir: Path, out_dir: Path, wait_s: float | None = None) -> dict[str, Any]:
    from kindml.monitoring.prometheus import LocalPrometheus
    from kindml.monitoring.rules import write_local_rules
    from kindml.serving.loadgen import payloads, run_load

    dep = json.loads((deployed_dir / "deployed.json").read_text(encoding="utf-8"))
    # drifted: wait until a drift alert fires (bounded); clean: long enough that one would have (local `for:` is 10 s)
    wait_s = wait_s if wait_s is not None else (90.0 if wl.cfg.data.drift > 0 else 30.0)
    ws = Workspace(Path(env.workspace)).ensure()
    out_dir.mkdir(parents=True, exist_ok=True)
    d = wl.cfg.data
    clean = wl.traffic(CLEAN_REQUESTS, 0.0, stream=11)
    drifted = wl.traffic(DRIFT_REQUESTS, d.drift, stream=12)
    host_port = dep["url"].removeprefix("http://")
    timeline: list[dict[str, Any]] = []
    cluster = env.target == "kind"
    if cluster:  # the cluster's Prometheus scrapes the predictor pods (PodMonitor) and holds the PrometheusRule
        import os

        from kindml.cluster import endpoints
        from kindml.monitoring.prometheus import RemotePrometheus

        prom_ctx: Any = RemotePrometheus(os.environ.get("KINDML_PROMETHEUS_URL", endpoints.PROMETHEUS_URL))
        wait_s = max(wait_s, 900.0 if d.drift > 0 else 0.0)  # cluster rules use `for: 10m`
    else:
        rules = write_local_rules(ws.serving / "prometheus" / "rules.yml")
        prom_ctx = LocalPrometheus(ws.serving / "prometheus", [host_port], rules)
    with prom_ctx as prom:
        t_start = time.time()
        if not cluster:  # scrape before the traffic (file_sd finds the target within ~5 s): the drift series shows the clean phase
            prom.wait_for(lambda: any(t.get("health") == "up" for t in prom.targets_health()), timeout=15.0)
        s1 = run_load(dep["url"], dep["model"], payloads(clean), threads=4, allow_cluster=cluster)
        timeline.append({"phase": "clean", "at": datetime.now(UTC).isoformat(), **s1.summary()})
        time.sleep(CLEAN_HOLD_S)
        s2 = run_load(dep["url"], dep["model"], payloads(drifted), threads=4, allow_cluster=cluster)
        timeline.append({"phase": "drifted" if d.drift > 0 else "clean-2", "at": datetime.now(UTC).isoformat(), **s2.summary()})
        deadline = time.monotonic() + wait_s
        fired: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for a in prom.alerts():
                if a.get("state") == "firing":
                    key = a["labels"]["alertname"] + "/" + a["labels"].get("feature", "")
                    fired.setdefault(key, {"alertname": a["labels"]["alertname"], "labels": a["labels"], "first_seen": a.get("activeAt"),
                                           "value": a.get("value")})
            if d.drift > 0 and any(f["alertname"] in DRIFT_ALERTS for f in fired.values()):
                break
            time.sleep(1.0)
        max_psi = {r["metric"]["feature"]: round(float(r["value"][1]), 4)
                   for r in prom.query(f'max by (feature) (kindml_feature_drift{{method="psi",model="{dep["model"]}"}})')}
        pred = prom.query(f'kindml_prediction_drift{{method="psi",model="{dep["model"]}"}}')
        prediction_psi = round(float(pred[0]["value"][1]), 4) if pred else None
        observed_s = round(time.time() - t_start, 1)
        series = drift_series(prom, dep["model"], t_start, time.time())
    lat = s1.latencies_ms + s2.latencies_ms
    import numpy as np

    serving = {"requests": s1.requests + s2.requests, "errors": s1.errors + s2.errors,
               "p50_ms": round(float(np.percentile(lat, 50)), 3), "p99_ms": round(float(np.percentile(lat, 99)), 3)}
    result = {
        "serving": serving,
        "drift": {"severity": d.drift, "max_psi": max_psi, "prediction_psi": prediction_psi,
                  "alerts_fired": sorted(fired.values(), key=lambda f: f["first_seen"] or ""),
                  "drift_alert_fired": any(f["alertname"] in DRIFT_ALERTS for f in fired.values()),
                  "series": series},
        "phases": timeline,
        "observed_seconds": observed_s,
        "rules": "PrometheusRule kindml-rules" if cluster else str(rules),
    }
    (out_dir / "monitor.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if dep.get("mlflow_run_id"):  # kind target: back to the laptop with the other stage results (kindml.pipeline.outputs)
        from kindml.pipeline import outputs

        outputs.publish(env, dep["mlflow_run_id"], {"monitoring": out_dir})
    return result


def drift_series(prom: Any, model: str, start: float, end: float, max_points: int = 120) -> dict[str, Any] | None:
    """Drift per feature and method over the run (a Prometheus range query, at most ``max_points`` samples).

    ``{"start", "step_s", "t_s": [seconds since start], "features": {f: {method: [v|None]}},
    "prediction": {method: [v|None]}, "window_samples": [n|None], "thresholds"}``; None if Prometheus
    cannot answer (the series is for the run report only: it never fails the stage).
    """
    import math

    from kindml.errors import MonitoringError
    from kindml.monitoring.rules import profile_values

    step = float(max(1, math.ceil((end - start) / max_points)))
    grid = [start + k * step for k in range(int((end - start) // step) + 1)]

    def rng(expr: str) -> list[dict[str, Any]]:
        return prom.api("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})["result"]

    def aligned(values: list[list[Any]]) -> list[float | None]:
        by_t = {round(float(t) - start, 3): float(v) for t, v in values}
        out = [by_t.get(round(t - start, 3)) for t in grid]
        return [round(v, 4) if v is not None and math.isfinite(v) else None for v in out]

    sel = f'model="{model}"'
    try:
        features: dict[str, dict[str, list[float | None]]] = {}
        for r in rng(f"max by (feature, method) (kindml_feature_drift{{{sel}}})"):
            features.setdefault(r["metric"]["feature"], {})[r["metric"]["method"]] = aligned(r["values"])
        prediction = {r["metric"]["method"]: aligned(r["values"]) for r in rng(f"max by (method) (kindml_prediction_drift{{{sel}}})")}
        samples = rng(f"max(kindml_window_samples{{{sel}}})")
    except MonitoringError:
        return None
    rules = profile_values("local")
    return {
        "start": datetime.fromtimestamp(start, UTC).isoformat(), "step_s": step, "t_s": [round(t - start, 1) for t in grid],
        "features": dict(sorted(features.items())), "prediction": prediction,
        "window_samples": aligned(samples[0]["values"]) if samples else [None] * len(grid),
        "thresholds": {"psi": float(rules["feature_psi"]), "prediction_psi": float(rules["prediction_psi"]),
                       "ks_min": float(rules["feature_ks_min"]), "ks_c_alpha": float(rules["ks_c_alpha"])},
    }
