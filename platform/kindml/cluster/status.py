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
    for item in json.loads(res.stdout).get("items", []):
        st = item.get("status") or {}
        out[item["metadata"]["name"]] = (int(st.get("readyReplicas", 0) or 0), int((item.get("spec") or {}).get("replicas", 1)))
    return out


def cluster_status(upstream: Upstream) -> dict[str, Any]:
    from kindml.cluster.doctor import cluster_exists

    exists = cluster_exists()
    if exists is None:
        return {"cluster": "unknown", "reason": "kind is not installed or Docker is not reachable", "components": [], "urls": {}}
    if not exists:
        return {"cluster": "absent", "components": [], "urls": {}}
    comps = []
    groups = [(c.name, c.namespace, c.deployments) for c in upstream.components if c.deployments]
    groups += [("kindml", endpoints.NAMESPACE, ["redis", "mlflow"]), ("kindml-monitoring", endpoints.MONITORING_NAMESPACE, ["grafana"])]
    for name, ns, deps in groups:
        found = _deployments(ns)
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
