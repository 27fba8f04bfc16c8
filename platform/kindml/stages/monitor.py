"""Stage ``monitor``: replay live traffic through the predictor, then its delayed labels; a real Prometheus scrapes
the predictor and evaluates the rules.

Phases: (1) clean live traffic (the workload's generator without drift) fills
the drift window, (2) traffic drifted by ``data.drift`` replaces it, (3) late
traffic with training-like inputs whose labels follow a concept shifted by
``data.concept_shift``, (4) the delayed labels of phases 1 and 3 arrive
(``POST /v1/feedback``, joined to the logged predictions by id) — or, for a forecasting workload, the actuals
of the horizon its batch stage forecast, changed by ``data.concept_shift`` (:mod:`kindml.monitoring.actuals`), (5) wait
until the expected alerts fire — a drift alert for (2), the quality alert
(realised quality below the holdout score) for (3) — or, with neither, long
enough that one would have. Records latency percentiles, errors, the max PSI
per feature, realised quality per variant, and the alerts that fired.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.monitoring.rules import DRIFT_ALERTS  # the alerts that mean "retrain"
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload
from kindml.workspace import Workspace

CLEAN_REQUESTS = 1_500
DRIFT_REQUESTS = 3_000
CONCEPT_REQUESTS = 1_500  # late traffic: inputs as in training, labels from the shifted concept (data.concept_shift)
CLEAN_HOLD_S = 3.0  # between the clean and the drifted phase: a few scrapes of the clean window (run report's drift series)


def _frames(
    wl: Workload, n: int, drift: float, stream: int, concept: float = 0.0
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Requests for live traffic and, when the workload generates labelled events, their labels (delayed feedback)."""
    from kindml.errors import UsageError

    try:
        frame = wl.live(n, drift, stream, concept)
    except UsageError:
        return wl.traffic(n, drift, stream), None
    return wl.requests(frame), [str(v) for v in frame[wl.label].tolist()]


def prediction_ids(stats: Any) -> dict[int, str]:
    """Request index → the ``prediction_id`` of its (single-row) answer."""
    out = {}
    for i, body in stats.responses.items():
        try:
            pid = json.loads(body)["predictions"][0].get("prediction_id")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            continue
        if pid:
            out[i] = str(pid)
    return out


def send_feedback(url: str, outcomes: list[tuple[str, str]], chunk: int = 500) -> dict[str, int]:
    """POST the delayed labels to the predictor's /v1/feedback; totals of joined / unknown / duplicate."""
    totals = {"sent": 0, "joined": 0, "unknown": 0, "duplicate": 0, "errors": 0}
    for k in range(0, len(outcomes), chunk):
        part = outcomes[k : k + chunk]
        body = json.dumps(
            {"outcomes": [{"prediction_id": pid, "outcome": o} for pid, o in part]}
        ).encode()
        req = urllib.request.Request(
            f"{url}/v1/feedback",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        totals["sent"] += len(part)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                ans = json.loads(r.read())
        except urllib.error.HTTPError as e:
            ans = json.loads(e.read() or b"{}") if e.code in (404, 409) else {}
            if e.code not in (404, 409):
                totals["errors"] += len(part)
                continue
        totals["joined"] += int(ans.get("joined", 0))
        totals["unknown"] += len(ans.get("unknown", []))
        totals["duplicate"] += len(ans.get("duplicate", []))
    return totals


def run(
    wl: Workload, env: RuntimeEnv, deployed_dir: Path, out_dir: Path, wait_s: float | None = None
) -> dict[str, Any]:
    from kindml.monitoring.prometheus import LocalPrometheus
    from kindml.monitoring.rules import QUALITY_ALERTS, write_local_rules
    from kindml.serving.loadgen import payloads, run_load

    dep = json.loads((deployed_dir / "deployed.json").read_text(encoding="utf-8"))
    d = wl.cfg.data
    # wait until the expected alerts fire (bounded); clean: long enough that one would have (local `for:` is 10 s)
    expect_drift, expect_quality = d.drift > 0, d.concept_shift > 0
    wait_s = wait_s if wait_s is not None else (90.0 if expect_drift or expect_quality else 30.0)
    ws = Workspace(Path(env.workspace)).ensure()
    out_dir.mkdir(parents=True, exist_ok=True)
    clean, clean_labels = _frames(wl, CLEAN_REQUESTS, 0.0, stream=11)
    drifted, _ = _frames(wl, DRIFT_REQUESTS, d.drift, stream=12)
    late, late_labels = _frames(wl, CONCEPT_REQUESTS, 0.0, stream=13, concept=d.concept_shift)
    host_port = dep["url"].removeprefix("http://")
    timeline: list[dict[str, Any]] = []
    cluster = env.target == "kind"
    if cluster:  # the cluster's Prometheus scrapes the predictor pods (PodMonitor) and holds the PrometheusRule
        import os

        from kindml.cluster import endpoints
        from kindml.monitoring.prometheus import RemotePrometheus

        prom_ctx: Any = RemotePrometheus(
            os.environ.get("KINDML_PROMETHEUS_URL", endpoints.PROMETHEUS_URL)
        )
        wait_s = max(
            wait_s, 1_200.0 if expect_drift or expect_quality else 0.0
        )  # cluster rules use `for: 10m` / `15m`
    else:
        rules = write_local_rules(ws.serving / "prometheus" / "rules.yml")
        prom_ctx = LocalPrometheus(ws.serving / "prometheus", [host_port], rules)
    with prom_ctx as prom:
        t_start = time.time()
        if not cluster:  # scrape before the traffic (file_sd finds the target within ~5 s): the drift series shows the clean phase
            prom.wait_for(
                lambda: any(t.get("health") == "up" for t in prom.targets_health()), timeout=15.0
            )
        s1 = run_load(
            dep["url"],
            dep["model"],
            payloads(clean),
            threads=4,
            allow_cluster=cluster,
            collect=True,
        )
        timeline.append({"phase": "clean", "at": datetime.now(UTC).isoformat(), **s1.summary()})
        time.sleep(CLEAN_HOLD_S)
        s2 = run_load(dep["url"], dep["model"], payloads(drifted), threads=4, allow_cluster=cluster)
        timeline.append(
            {
                "phase": "drifted" if d.drift > 0 else "clean-2",
                "at": datetime.now(UTC).isoformat(),
                **s2.summary(),
            }
        )
        # late traffic with the inputs of the training distribution; its labels follow the shifted concept (if any)
        s3 = run_load(
            dep["url"], dep["model"], payloads(late), threads=4, allow_cluster=cluster, collect=True
        )
        timeline.append(
            {
                "phase": "late" + (" (concept shift)" if expect_quality else ""),
                "at": datetime.now(UTC).isoformat(),
                **s3.summary(),
            }
        )
        # the labels arrive later: the clean phase's, then the late phase's
        feedback: dict[str, Any] | None = None
        ids1, ids3 = prediction_ids(s1), prediction_ids(s3)
        if clean_labels is not None and late_labels is not None and (ids1 or ids3):
            outcomes = [(pid, clean_labels[i]) for i, pid in sorted(ids1.items())] + [
                (pid, late_labels[i]) for i, pid in sorted(ids3.items())
            ]
            feedback = send_feedback(dep["url"], outcomes)
        actuals: dict[str, Any] | None = None
        if feedback is None and not cluster:  # a forecasting workload: the actuals of what the batch stage forecast arrive later
            actuals = ingest_generated_actuals(wl, ws, dep, d.concept_shift)
            if actuals is not None and "joined" in actuals:
                feedback = {"sent": actuals["rows"], "joined": actuals["joined"], "unknown": actuals["unknown_rows"],
                            "duplicate": actuals["duplicate"], "errors": 0, "actuals": True}
        deadline = time.monotonic() + wait_s
        fired: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for a in prom.alerts():
                if a.get("state") == "firing":
                    key = (
                        a["labels"]["alertname"]
                        + "/"
                        + a["labels"].get("feature", "")
                        + a["labels"].get("metric", "")
                    )
                    fired.setdefault(
                        key,
                        {
                            "alertname": a["labels"]["alertname"],
                            "labels": a["labels"],
                            "first_seen": a.get("activeAt"),
                            "value": a.get("value"),
                        },
                    )
            names = {f["alertname"] for f in fired.values()}
            drift_done = not expect_drift or bool(names & set(DRIFT_ALERTS))
            quality_done = (
                not expect_quality or feedback is None or bool(names & set(QUALITY_ALERTS))
            )
            if (expect_drift or expect_quality) and drift_done and quality_done:
                break
            time.sleep(1.0)
        max_psi = {
            r["metric"]["feature"]: round(float(r["value"][1]), 4)
            for r in prom.query(
                f'max by (feature) (kindml_feature_drift{{method="psi",model="{dep["model"]}"}})'
            )
        }
        pred = prom.query(f'kindml_prediction_drift{{method="psi",model="{dep["model"]}"}}')
        prediction_psi = round(float(pred[0]["value"][1]), 4) if pred else None
        realised = {
            f"{r['metric'].get('variant', '')}:{r['metric']['metric']}": round(
                float(r["value"][1]), 4
            )
            for r in prom.query(f'kindml_quality{{model="{dep["model"]}"}}')
        }
        reference = {
            r["metric"]["metric"]: round(float(r["value"][1]), 4)
            for r in prom.query(f'kindml_quality_reference{{model="{dep["model"]}"}}')
        }
        observed_s = round(time.time() - t_start, 1)
        series = drift_series(prom, dep["model"], t_start, time.time())
        q_series = quality_series(prom, dep["model"], t_start, time.time())
    lat = s1.latencies_ms + s2.latencies_ms + s3.latencies_ms
    import numpy as np

    serving = {
        "requests": s1.requests + s2.requests + s3.requests,
        "errors": s1.errors + s2.errors + s3.errors,
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }
    alerts = sorted(fired.values(), key=lambda f: f["first_seen"] or "")
    result = {
        "serving": serving,
        "drift": {
            "severity": d.drift,
            "max_psi": max_psi,
            "prediction_psi": prediction_psi,
            "alerts_fired": alerts,
            "drift_alert_fired": any(f["alertname"] in DRIFT_ALERTS for f in fired.values()),
            "series": series,
        },
        "quality": {
            "concept_shift": d.concept_shift,
            "feedback": feedback,
            "realised": realised,
            "reference": reference,
            "quality_alert_fired": any(f["alertname"] in QUALITY_ALERTS for f in fired.values()),
            "series": q_series,
            **({"actuals": actuals} if actuals is not None else {}),
            **(
                {}
                if feedback is not None
                else {
                    "note": "no delayed labels: the predictor returned no prediction ids, or the workload "
                    "generates no labelled live events"
                }
            ),
        },
        "phases": timeline,
        "experiment": experiment_status(ws, dep) if not cluster else None,
        "observed_seconds": observed_s,
        "rules": "PrometheusRule kindml-rules" if cluster else str(rules),
    }
    (out_dir / "monitor.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if dep.get(
        "mlflow_run_id"
    ):  # kind target: back to the laptop with the other stage results (kindml.pipeline.outputs)
        from kindml.pipeline import outputs

        outputs.publish(env, dep["mlflow_run_id"], {"monitoring": out_dir})
    return result


def ingest_generated_actuals(wl: Workload, ws: Workspace, dep: dict[str, Any], shift: float) -> dict[str, Any] | None:
    """The workload's generated actuals (``shift`` = ``data.concept_shift``) joined to the served version's batch forecasts
    and logged where the predictor exports the realised error; None when the workload generates no actuals, a
    ``{"note"}`` when they cannot be joined (no batch forecasts of the served version)."""
    from kindml.errors import DataError, UsageError
    from kindml.monitoring import actuals as act
    from kindml.monitoring.feedback import log_path
    from kindml.monitoring.quality import PredictionLog

    try:
        frame = wl.actuals(shift)
    except UsageError:
        return None
    try:
        forecasts, horizon, _ = act.load_forecasts(ws.root, dep["model"], str(dep["version"]))
        result = act.ingest_actuals(PredictionLog(log_path(ws.serving)), dep["model"], str(dep["version"]), forecasts, horizon, frame)
    except DataError as exc:
        return {"note": f"actuals not ingested: {exc}"}
    return {"shift": shift, **result}


def experiment_status(ws: Workspace, dep: dict[str, Any]) -> dict[str, Any] | None:
    """The experiment deploy started (registry.promotion: experiment): a look over the outcomes labelled so far.

    It keeps running after the pipeline (a decision needs more labelled outcomes than one run's traffic):
    `kindml experiment status` looks again and acts on a final decision."""
    if not dep.get("experiment"):
        return None
    from kindml.experiments import live
    from kindml.monitoring.feedback import log_path
    from kindml.monitoring.quality import PredictionLog

    rec = live.evaluate(ws.serving, PredictionLog(log_path(ws.serving)))
    return live.report(rec) if rec is not None else None


def quality_series(
    prom: Any, model: str, start: float, end: float, max_points: int = 120
) -> dict[str, Any] | None:
    """Realised quality per variant and metric over the run (range query), for the report; None if Prometheus cannot answer."""
    import math

    from kindml.errors import MonitoringError

    step = float(max(1, math.ceil((end - start) / max_points)))
    try:
        res = prom.api(
            "query_range",
            {
                "query": f'kindml_quality{{model="{model}"}}',
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{step:g}",
            },
        )["result"]
    except MonitoringError:
        return None
    return {
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "step_s": step,
        "series": {
            f"{r['metric'].get('variant', '')}:{r['metric']['metric']}": [
                [round(float(t) - start, 1), round(float(v), 4)] for t, v in r["values"]
            ]
            for r in res
        },
    }


def drift_series(
    prom: Any, model: str, start: float, end: float, max_points: int = 120
) -> dict[str, Any] | None:
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
        return prom.api(
            "query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )["result"]

    def aligned(values: list[list[Any]]) -> list[float | None]:
        by_t = {round(float(t) - start, 3): float(v) for t, v in values}
        out = [by_t.get(round(t - start, 3)) for t in grid]
        return [round(v, 4) if v is not None and math.isfinite(v) else None for v in out]

    sel = f'model="{model}"'
    try:
        features: dict[str, dict[str, list[float | None]]] = {}
        for r in rng(f"max by (feature, method) (kindml_feature_drift{{{sel}}})"):
            features.setdefault(r["metric"]["feature"], {})[r["metric"]["method"]] = aligned(
                r["values"]
            )
        prediction = {
            r["metric"]["method"]: aligned(r["values"])
            for r in rng(f"max by (method) (kindml_prediction_drift{{{sel}}})")
        }
        samples = rng(f"max(kindml_window_samples{{{sel}}})")
    except MonitoringError:
        return None
    rules = profile_values("local")
    return {
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "step_s": step,
        "t_s": [round(t - start, 1) for t in grid],
        "features": dict(sorted(features.items())),
        "prediction": prediction,
        "window_samples": aligned(samples[0]["values"]) if samples else [None] * len(grid),
        "thresholds": {
            "psi": float(rules["feature_psi"]),
            "prediction_psi": float(rules["prediction_psi"]),
            "ks_min": float(rules["feature_ks_min"]),
            "ks_c_alpha": float(rules["ks_c_alpha"]),
        },
    }
