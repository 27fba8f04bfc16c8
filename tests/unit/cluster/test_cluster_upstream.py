"""Upstream components are pinned to exact releases in one place
(manifests/upstream.yaml), match the Python SDK pins, and the resource budget
of everything `up` installs fits a 16 GB laptop."""

from __future__ import annotations

import re

import pytest

from kindml.cluster import lifecycle, objects
from kindml.cluster.upstream import Upstream, load_upstream, pin_problems

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def upstream(repo_root) -> Upstream:
    return load_upstream(repo_root / "manifests" / "upstream.yaml")


def test_every_upstream_reference_is_pinned(upstream):
    """Every URL carries its component's exact version; no branch, latest or nightly."""
    assert pin_problems(upstream) == []


@pytest.mark.parametrize(
    ("url", "mode", "needle"),
    [
        ("github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=master", "kustomize", "floating"),
        ("https://github.com/kserve/kserve/releases/latest/download/kserve.yaml", "file", "does not contain"),
        ("github.com/ray-project/kuberay/ray-operator/config/default", "kustomize", "not pinned with ?ref"),
        ("http://example.org/x-1.2.3/a.yaml", "file", "not an https"),
    ],
)
def test_pin_lint_catches_floating_references(upstream, url, mode, needle):
    data = upstream.model_dump()
    data["components"][0]["version"] = "1.2.3"
    data["components"][0]["install"] = [{"url": url, "mode": mode}]
    data["components"][0]["crds"] = []
    problems = pin_problems(Upstream.model_validate(data))
    assert any(needle in p for p in problems), problems


def test_unknown_keys_are_rejected(repo_root, tmp_path):
    from kindml.errors import ConfigError

    bad = tmp_path / "upstream.yaml"
    bad.write_text((repo_root / "manifests" / "upstream.yaml").read_text().replace("    why: webhook", "    whyy: x\n    why: webhook", 1))
    with pytest.raises(ConfigError):
        load_upstream(bad)


def _minor(v: str) -> tuple[int, int]:
    major, minor = v.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def test_versions_match_the_python_pins(upstream, repo_root):
    """KFP backend matches the kfp SDK line; KServe and the Feast operator match their SDKs, or say in `sdk`
    which SDK version they run with (at most one minor apart: the audited upstream history had no newer tag)."""
    pins = dict(re.findall(r'"([a-z-]+)(?:\[[^\]]*\])?==([0-9.]+)"', (repo_root / "pyproject.toml").read_text()))
    kfp_line = ".".join(pins["kfp"].split(".")[:2])
    assert upstream.component("kubeflow-pipelines").version.startswith(kfp_line + ".")
    for comp, sdk in (("kserve", "kserve"), ("feast-operator", "feast")):
        c = upstream.component(comp)
        if c.version != "v" + pins[sdk]:
            assert c.sdk == pins[sdk], f"{comp} {c.version} differs from the {sdk} SDK {pins[sdk]}: say so in upstream.yaml `sdk`"
            (cm, cn), (sm, sn) = _minor(c.version), _minor(pins[sdk])
            assert cm == sm and 0 <= sn - cn <= 1, f"{comp} {c.version} is more than one minor behind the SDK {pins[sdk]}"
    assert pins["ray"] == "2.60.0"  # the RayJob rayVersion in templates.py
    from kindml.cluster.templates import RAY_VERSION

    assert pins["ray"] == RAY_VERSION


def test_no_upstream_manifest_is_copied_into_the_repo(repo_root):
    """Upstream manifests are referenced by URL only: no CRD or upstream controller is vendored (the CRD
    schemas in manifests/crds are test data, never applied: no kustomization refers to them)."""
    crds = repo_root / "manifests" / "crds"
    for p in (repo_root / "manifests").rglob("*.yaml"):
        text = p.read_text()
        if crds in p.parents:
            continue
        if p.name == "kustomization.yaml":
            assert "crds" not in text, p
        assert "kind: CustomResourceDefinition" not in text, p
        assert "name: kserve-controller-manager" not in text, p


def test_resource_budget(repo_root, upstream, capsys):
    """The sum of requests of everything `up` installs (ours rendered, upstream
    from the published values in upstream.yaml) is <= 3 CPU and 6 GiB."""
    for gpu in (False, True):
        ours = lifecycle.platform_objects(gpu, repo_root)
        from kindml.cluster.plan import requests_summary

        summary = requests_summary(ours, upstream, gpu)
        with capsys.disabled():
            print(
                f"\n[resource budget{' gpu' if gpu else ''}] total {summary['cpu_cores']} CPU / {summary['memory_gib']} GiB "
                f"(ours {summary['ours']['cpu_cores']} / {summary['ours']['memory_gib']} GiB, upstream {summary['upstream']['cpu_cores']} / "
                f"{summary['upstream']['memory_gib']} GiB, {summary['upstream_estimates']} upstream figures are estimates)"
            )
        assert summary["cpu_cores"] <= 3.0
        assert summary["memory_gib"] <= 6.0
        assert summary["ours"]["cpu_cores"] > 0 and summary["upstream"]["memory_gib"] > 0
        names = {r["workload"] for r in summary["ours_breakdown"]}
        assert {"Deployment/mlflow", "Deployment/redis", "Deployment/grafana", "Prometheus/kindml", "FeatureStore/kindml/online"} <= names


@pytest.mark.parametrize(("q", "v"), [("250m", "0.25"), ("1", "1"), ("1Gi", str(2**30)), ("500Mi", str(500 * 2**20)), ("0", "0"), (2, "2"), ("1e3", "1000")])
def test_quantity(q, v):
    from decimal import Decimal

    assert objects.quantity(q) == Decimal(v)


def test_pod_requests_count_init_containers_as_max():
    pod = {
        "initContainers": [{"resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
        "containers": [{"resources": {}}, {"resources": {"requests": {"cpu": "5m"}}}],
    }
    cpu, mem = objects.pod_requests(pod)
    assert float(cpu) == 0.01 and mem == 16 * 2**20
