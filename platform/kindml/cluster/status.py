"""``kindml status``: is the cluster there, is each component ready, where are the UIs."""

from __future__ import annotations

import json
from typing import Any

from kindml.cluster import endpoints, proc
from kindml.cluster.plan import kubectl
from kindml.cluster.upstream import Upstream


def _deployments(ns: str) -> dict[str, tuple[int, int]] | None:
    res = proc.run(kubectl("-n", ns, "get", "deployments", "-o", "json"), timeout=30)
    if not res.ok:
        return None
    out = {}
    for item in (json.loads(res.stdout) if res.stdout.strip() else {}).get("items", []):
        st = item.get("status") or {}
        out[item["metadata"]["name"]] = (int(st.get("readyReplicas", 0) or 0), int((item.get("spec") or {}).get("replicas", 1)))
    return out


def _get(ns: str, kind: str, name: str) -> dict[str, Any] | None:
    res = proc.run(kubectl("-n", ns, "get", kind, name, "-o", "json"), timeout=30)
    return json.loads(res.stdout) if res.ok and res.stdout.strip() else None


def _condition(obj: dict[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def _custom_resources() -> list[dict[str, Any]]:
    """Readiness of the custom resources kindml owns: the FeatureStore (and the registry
    address every pod is given), our Prometheus, and the predictor if one is deployed."""
    out = []
    fs = _get(endpoints.NAMESPACE, "featurestore", endpoints.FEATURE_STORE_NAME)
    if fs is None:
        out.append({"component": "feast", "namespace": endpoints.NAMESPACE, "ready": False, "detail": f"FeatureStore {endpoints.FEATURE_STORE_NAME} not found"})
    else:
        st = fs.get("status") or {}
        registry = (st.get("serviceHostnames") or {}).get("registry", "")
        phase = st.get("phase") or "unknown"
        ok = phase == "Ready" and registry == endpoints.FEAST_REGISTRY
        detail = f"FeatureStore {phase}; registry {registry or 'not published'}"
        if registry and registry != endpoints.FEAST_REGISTRY:
            detail += f" (pods are given {endpoints.FEAST_REGISTRY}: see docs/cluster.md, troubleshooting)"
        out.append({"component": "feast", "namespace": endpoints.NAMESPACE, "ready": ok, "detail": detail})
    prom = _get(endpoints.MONITORING_NAMESPACE, "prometheus", "kindml")
    available = prom is not None and _condition(prom, "Available")
    out.append({"component": "prometheus", "namespace": endpoints.MONITORING_NAMESPACE, "ready": available,
                "detail": "Prometheus kindml " + ("Available" if available else "not Available" if prom else "not found")})
    res = proc.run(kubectl("-n", endpoints.NAMESPACE, "get", "inferenceservices", "-o", "json"), timeout=30)
    items = (json.loads(res.stdout).get("items") or []) if res.ok and res.stdout.strip() else []
    for isvc in items:  # optional: one per model, after its pipeline's first run with --target kind
        name = (isvc.get("metadata") or {}).get("name", "?")
        ann = (isvc.get("metadata") or {}).get("annotations") or {}
        canary = ((isvc.get("spec") or {}).get("canary") or [{}])[0]
        detail = f"champion v{ann.get('kindml.io/champion-version', '?')}"
        if ann.get("kindml.io/challenger-version"):
            detail += f", canary v{ann['kindml.io/challenger-version']} at {canary.get('trafficPercent', '?')}%"
        ready = _condition(isvc, "Ready")
        out.append({"component": "predictor", "namespace": endpoints.NAMESPACE, "ready": ready,
                    "detail": f"InferenceService {name} {'Ready' if ready else 'not Ready'}: {detail}"})
    return out


def cluster_status(upstream: Upstream) -> dict[str, Any]:
    from kindml.cluster.doctor import cluster_exists

    exists = cluster_exists()
    if exists is None:
        return {"cluster": "unknown", "reason": "kind is not installed or Docker is not reachable", "components": [], "urls": {}}
    if not exists:
        return {"cluster": "absent", "components": [], "urls": {}}
    comps = []
    groups = [(c.name, c.namespace, c.deployments, c.addon is not None) for c in upstream.components if c.deployments]
    groups += [("kindml", endpoints.NAMESPACE, ["redis", "mlflow"], False), ("kindml-monitoring", endpoints.MONITORING_NAMESPACE, ["grafana"], False)]
    for name, ns, deps, addon in groups:
        found = _deployments(ns)
        if addon and not (found and set(deps) & set(found)):
            continue  # an add-on (e.g. KEDA, `up --keda`) that was not installed
        if found is None:
            comps.append({"component": name, "namespace": ns, "ready": False, "detail": "namespace not reachable or absent"})
            continue
        missing = [d for d in deps if d not in found]
        not_ready = [f"{d} {found[d][0]}/{found[d][1]}" for d in deps if d in found and found[d][0] < found[d][1]]
        comps.append({
            "component": name,
            "namespace": ns,
            "ready": not missing and not not_ready,
            "detail": "; ".join(filter(None, [f"missing: {', '.join(missing)}" if missing else "", f"not ready: {', '.join(not_ready)}" if not_ready else ""])) or "all Deployments Available",
        })
    comps += _custom_resources()
    return {"cluster": "present", "context": endpoints.KUBE_CONTEXT, "ready": all(c["ready"] for c in comps), "components": comps, "urls": endpoints.ui_urls()}


def status_text(st: dict[str, Any]) -> str:
    if st["cluster"] != "present":
        return f"cluster '{endpoints.CLUSTER_NAME}': {st['cluster']}" + (f" ({st['reason']})" if st.get("reason") else "") + "\nRun `kindml up` to create it."
    lines = [f"cluster '{endpoints.CLUSTER_NAME}' (context {st['context']}): {'ready' if st['ready'] else 'NOT ready'}"]
    for c in st["components"]:
        lines.append(f"  [{'ok' if c['ready'] else '..'}] {c['component']:<20} {c['namespace']:<22} {c['detail']}")
    lines.append("UIs:")
    lines += [f"  {k:<15} {v}" for k, v in st["urls"].items()]
    return "\n".join(lines)
