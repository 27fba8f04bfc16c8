"""Render the one rule source (``rules.yaml``) for the cluster (PrometheusRule) and the local Prometheus (rule file)."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

RULE_NAME = "kindml-rules"


def _source() -> dict[str, Any]:
    return yaml.safe_load(resources.files("kindml.monitoring").joinpath("rules.yaml").read_text(encoding="utf-8"))


def render_groups(profile: str) -> list[dict[str, Any]]:
    src = _source()
    if profile not in src["profiles"]:
        raise ValueError(f"unknown rule profile {profile!r}; known: {', '.join(src['profiles'])}")
    values = {**src["thresholds"], **src["profiles"][profile]}

    def sub(v: Any) -> Any:
        if isinstance(v, str):
            for k, val in values.items():
                v = v.replace("{{" + k + "}}", str(val))
            return v
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v

    return sub(copy.deepcopy(src["groups"]))


def render_local(profile: str = "local") -> str:
    return yaml.safe_dump({"groups": render_groups(profile)}, sort_keys=False, width=200)


def render_prometheusrule() -> str:
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": RULE_NAME, "labels": {"app.kubernetes.io/part-of": "kindml", "kindml.io/rules": "true"}},
        "spec": {"groups": render_groups("cluster")},
    }
    header = "# GENERATED from platform/kindml/monitoring/rules.yaml by `kindml monitoring render-rules`; do not edit.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=200)


def write_local_rules(path: Path, profile: str = "local") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_local(profile), encoding="utf-8")
    return path
