"""`kindml status` from what kubectl reports (kind/kubectl replaced at the subprocess boundary: no cluster here)."""

from __future__ import annotations

import json

import pytest

from kindml.cluster import endpoints, status, upstream

pytestmark = pytest.mark.unit


def _deployments(names: list[str], ready: bool = True) -> str:
    return json.dumps({"items": [{"metadata": {"name": n}, "spec": {"replicas": 1}, "status": {"readyReplicas": 1 if ready else 0}} for n in names]})


def _healthy(fake_bin, registry: str = endpoints.FEAST_REGISTRY) -> None:  # type: ignore[no-untyped-def]
    up = upstream.load_upstream()
    fake_bin.on("kind get clusters", stdout="kindml\n")
    by_ns: dict[str, list[str]] = {}
    for c in up.components:
        if c.deployments and c.addon is None:  # add-ons (KEDA) are not installed by a plain `up`
            by_ns.setdefault(c.namespace, []).extend(c.deployments)
    for ns, names in by_ns.items():
        fake_bin.on(lambda a, ns=ns: a[0] == "kubectl" and ["-n", ns, "get", "deployments"] == a[3:7], stdout=_deployments(names))
    fake_bin.on(lambda a: a[0] == "kubectl" and a[3:7] == ["-n", "kindml", "get", "deployments"], stdout=_deployments(["redis", "mlflow"]))
    fake_bin.on(lambda a: a[0] == "kubectl" and a[3:7] == ["-n", "kindml-monitoring", "get", "deployments"], stdout=_deployments(["grafana"]))
    fake_bin.on(lambda a: "featurestore" in a, stdout=json.dumps({"status": {"phase": "Ready", "serviceHostnames": {"registry": registry}}}))
    fake_bin.on(lambda a: "prometheus" in a and "get" in a, stdout=json.dumps({"status": {"conditions": [{"type": "Available", "status": "True"}]}}))
    fake_bin.on(lambda a: "inferenceservices" in a, stdout=json.dumps({"items": []}))


def test_ready_platform_shows_feast_registry_and_prometheus(fake_bin) -> None:  # type: ignore[no-untyped-def]
    _healthy(fake_bin)
    st = status.cluster_status(upstream.load_upstream())
    by = {c["component"]: c for c in st["components"]}
    assert st["ready"] is True, [c for c in st["components"] if not c["ready"]]
    assert by["feast"]["detail"] == f"FeatureStore Ready; registry {endpoints.FEAST_REGISTRY}"
    assert by["prometheus"]["ready"] and "predictor" not in by  # no InferenceService before the first capstone
    assert all("--context" in c and "kind-kindml" in c for c in fake_bin.commands() if c.startswith("kubectl"))
    text = status.status_text(st)
    assert "[ok] feast" in text and "model-endpoint" in text


def test_registry_published_elsewhere_is_not_ready_and_says_what_pods_use(fake_bin) -> None:  # type: ignore[no-untyped-def]
    _healthy(fake_bin, registry="feast-kindml-registry.kindml.svc.cluster.local:443")
    st = status.cluster_status(upstream.load_upstream())
    feast = next(c for c in st["components"] if c["component"] == "feast")
    assert st["ready"] is False and feast["ready"] is False
    assert ":443" in feast["detail"] and endpoints.FEAST_REGISTRY in feast["detail"]


def test_predictor_with_canary_is_listed(fake_bin) -> None:  # type: ignore[no-untyped-def]
    _healthy(fake_bin)
    isvc = {"metadata": {"name": "ticket-intent", "annotations": {"kindml.io/champion-version": "3", "kindml.io/challenger-version": "4"}},
            "spec": {"canary": [{"trafficPercent": 10}]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    fake_bin.on(lambda a: "inferenceservices" in a, stdout=json.dumps({"items": [isvc]}))
    st = status.cluster_status(upstream.load_upstream())
    pred = next(c for c in st["components"] if c["component"] == "predictor")
    assert pred["ready"] and pred["detail"] == "InferenceService ticket-intent Ready: champion v3, canary v4 at 10%"
