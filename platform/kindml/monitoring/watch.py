"""Automated retraining: poll Prometheus alerts; on a drift or a quality alert run the pipeline on recent data and
promote only through the gate.

Each decision is appended to ``.kindml/monitoring/decisions.jsonl``: the
alert that triggered it, the challenger run and version, the gate's verdict
and what is served afterwards. A cooldown keeps one alert from starting a
retraining storm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.config import KindmlConfig
from kindml.monitoring.rules import RETRAIN_ALERTS
from kindml.workspace import Workspace


def firing_retrain_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firing alerts that mean "retrain": input drift (PSI) or realised quality on delayed labels."""
    return [
        a
        for a in alerts
        if a.get("state") == "firing" and a.get("labels", {}).get("alertname") in RETRAIN_ALERTS
    ]


firing_drift_alerts = firing_retrain_alerts  # the earlier name


def record(ws: Workspace, decision: dict[str, Any]) -> Path:
    path = ws.root / "monitoring" / "decisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(decision, default=str) + "\n")
    return path


def retrain(cfg: KindmlConfig, ws: Workspace, trigger: list[dict[str, Any]], run_capstone: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Run the served model's pipeline on recent (drifted) data without serving; the gate decides promotion."""
    recent = cfg.with_overrides({"data.history_drift": cfg.data.drift, "data.seed": cfg.data.seed + 1}, source="monitor watch")
    summary = run_capstone(recent, ws, serve=False)
    model = summary.get("model") or {}
    metric = (summary.get("gate") or {}).get("metric")
    decision = {
        "at": datetime.now(UTC).isoformat(),
        "trigger": [{"alertname": a["labels"]["alertname"], "feature": a["labels"].get("feature"), "activeAt": a.get("activeAt")} for a in trigger],
        "challenger_run": summary["run_id"],
        "challenger_version": model.get("version"),
        "metric": metric,
        "score": (summary.get("metrics") or {}).get(metric) if metric else None,
        "roc_auc": (summary.get("metrics") or {}).get("roc_auc"),
        "gate": summary.get("gate"),
        "promoted": bool(model.get("promoted")),
    }
    return decision


def watch(cfg: KindmlConfig, ws: Workspace, alerts: Callable[[], list[dict[str, Any]]], run_capstone: Callable[..., dict[str, Any]],
          on_promote: Callable[[dict[str, Any]], None] | None = None, interval: float = 5.0, timeout: float | None = None,
          max_retrains: int = 1, cooldown: float = 300.0) -> list[dict[str, Any]]:
    decisions: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout if timeout else None
    last = -1e18
    while deadline is None or time.monotonic() < deadline:
        firing = firing_retrain_alerts(alerts())
        if firing and time.monotonic() - last >= cooldown:
            last = time.monotonic()
            decision = retrain(cfg, ws, firing, run_capstone)
            if decision["promoted"] and on_promote is not None:
                on_promote(decision)
                decision["served_after"] = decision["challenger_version"]
            record(ws, decision)
            decisions.append(decision)
            if len(decisions) >= max_retrains:
                break
        time.sleep(interval)
    return decisions
