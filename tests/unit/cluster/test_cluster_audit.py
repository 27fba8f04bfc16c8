"""The upstream audit (kindml.cluster.audit).

CI has no upstream mirrors, so most tests here check the COMMITTED results
(manifests/upstream-audit.yaml, the docs table, manifests/crds/) against what
the repository pins today: every pin, URL, object name and KServe config key is
audited at exactly the pinned version, nothing is "wrong", the CRD files are
the audited blobs. The audit's git logic runs against a small real git
repository made here; the full audit against the fetched mirrors runs only
where they exist ($KINDML_UPSTREAM_MIRRORS) and skips with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from kindml.cluster import audit
from kindml.cluster.upstream import Component, Source, Upstream, load_upstream

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def upstream(repo_root) -> Upstream:
    return load_upstream(repo_root / "manifests" / "upstream.yaml")


@pytest.fixture(scope="module")
def data(repo_root) -> dict:
    return audit.load_audit(repo_root)


def _rows(data, component, check):
    return [f for f in data["findings"] if f["component"] == component and f["check"] == check]


def test_every_pin_is_audited_at_the_pinned_version(upstream, data):
    """Each component has a tag row at exactly the version upstream.yaml pins (a bump without re-audit fails)."""
    for c in upstream.components:
        (tag,) = _rows(data, c.name, "tag")
        assert tag["subject"] == c.version and tag["pinned"] == c.version, c.name
        assert all(f["pinned"] == c.version for f in data["findings"] if f["component"] == c.name), c.name
    (kind_tag,) = _rows(data, "kind", "tag")
    assert kind_tag["subject"] == upstream.kind.version
    images = {f["subject"] for f in _rows(data, "kind", "node-image")}
    assert {upstream.kind.node_image, "kind-config.yaml", "kind-config.gpu.yaml"} <= images


def test_every_url_and_name_we_use_is_audited(upstream, data):
    """Every install URL, namespace, CRD, Deployment and DaemonSet name of upstream.yaml has its finding."""
    for c in upstream.components:
        audited = {f["subject"] for f in data["findings"] if f["component"] == c.name and f["check"] in ("kustomize", "file", "release-asset")}
        assert {s.url for s in c.sources} == audited, c.name
        assert [f["subject"] for f in _rows(data, c.name, "namespace")] == [c.namespace], c.name
        for check, names in (("crd", c.crd_names), ("deployment", c.deployments), ("daemonset", c.daemonsets)):
            assert sorted(f["subject"] for f in _rows(data, c.name, check)) == sorted(names), (c.name, check)


def test_every_kserve_config_key_we_patch_is_audited(repo_root, data):
    """Each ConfigMap key and JSON field of manifests/upstream-config/kserve exists upstream at the pinned tag."""
    cm = yaml.safe_load((repo_root / "manifests" / "upstream-config" / "kserve" / "inferenceservice-config.yaml").read_text())
    ours = {f"inferenceservice-config/{k}" for k in cm["data"]} | {f"inferenceservice-config/{k}.{f}" for k, v in cm["data"].items() for f in json.loads(v)}
    rows = {f["subject"]: f["status"] for f in _rows(data, "kserve", "config-key")}
    assert set(rows) == ours
    assert set(rows.values()) == {"OK"}


def test_nothing_is_wrong_and_unknowns_say_why(data):
    """No check failed at an existing tag; every 'unknown' carries its reason."""
    assert [f for f in data["findings"] if f["status"] == "wrong"] == []
    assert {f["status"] for f in data["findings"]} <= {"OK", "unknown"}
    assert all(f["note"] for f in data["findings"] if f["status"] == "unknown")
    for ch in data["changes"]:
        assert {"component", "check", "was", "now", "why"} <= set(ch) and ch["why"]


def test_crd_files_are_exactly_the_audited_blobs_of_the_pinned_versions(repo_root, upstream, data):
    """manifests/crds holds one folder per component at its pinned version (no other), each file the audited upstream blob."""
    crds = repo_root / "manifests" / "crds"
    expected = {audit.crd_store_path(repo_root, comp, upstream.component(comp).version, path) for comp, path in audit.CRD_FILES}
    present = set(crds.rglob("*.yaml"))
    assert present == expected, sorted(str(p.relative_to(crds)) for p in present ^ expected)
    by_file = {r["file"]: r for r in data["crds"]}
    for p in expected:
        row = by_file[str(p.relative_to(repo_root))]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == row["sha256"], p
        assert row["tag"] == upstream.component(row["component"]).version and row["commit"]
    assert (crds / "README.md").read_text() == audit.crds_readme(data)


def test_validation_schemas_come_from_the_pinned_folders_only(upstream, crd_schemas):
    """The CR validation fixture reads manifests/crds/<component>/<upstream.yaml version>/ and nothing else."""
    versions = {s.split("/")[0]: s.split("/")[1] for s in crd_schemas.sources.values()}
    for comp, ver in versions.items():
        assert upstream.component(comp).version == ver
    assert {"kserve", "feast-operator", "kuberay-operator", "prometheus-operator"} <= set(versions)
    assert crd_schemas.schema("serving.kserve.io/v1beta1", "InferenceService") is not None
    assert crd_schemas.schema("serving.kserve.io/v1alpha1", "InferenceGraph") is not None
    assert crd_schemas.schema("serving.kserve.io/v1alpha1", "ClusterStorageContainer") is not None


def test_docs_table_is_the_committed_audit(repo_root, data):
    """docs/cluster.md carries the table generated from manifests/upstream-audit.yaml, unedited."""
    assert audit.docs_block(data) in (repo_root / "docs" / "cluster.md").read_text()


@pytest.mark.parametrize(
    ("url", "mode", "kind", "repo", "ref", "path"),
    [
        ("https://github.com/kserve/kserve/releases/download/v0.20.0/kserve.yaml", "file", "release-asset", "kserve/kserve", "v0.20.0", "kserve.yaml"),
        ("https://raw.githubusercontent.com/feast-dev/feast/refs/tags/v0.66.0/infra/feast-operator/dist/install.yaml", "file", "file", "feast-dev/feast", "v0.66.0",
         "infra/feast-operator/dist/install.yaml"),
        ("https://raw.githubusercontent.com/NVIDIA/k8s-device-plugin/v0.17.1/deployments/static/x.yml", "file", "file", "NVIDIA/k8s-device-plugin", "v0.17.1",
         "deployments/static/x.yml"),
        ("github.com/ray-project/kuberay/ray-operator/config/crd?ref=v1.7.0", "kustomize", "kustomize", "ray-project/kuberay", "v1.7.0", "ray-operator/config/crd"),
    ],
)
def test_parse_source(url, mode, kind, repo, ref, path):
    assert audit.parse_source(Source(url=url, mode=mode)) == audit.ParsedSource(kind, repo, ref, path)


def test_asset_pattern_accepts_a_version_variable():
    import re

    pat = audit._asset_pattern("keda-2.20.2.yaml", "v2.20.2")
    assert re.search(pat, "$(KUSTOMIZE) build config/default > keda-$(VERSION).yaml")
    assert not re.search(audit._asset_pattern("bundle.yaml", "v0.93.0"), "example-bundle.yaml.tmpl")


# -- the audit's git logic, against a real (small) git repository --------------------------


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def fake_upstream(tmp_path_factory) -> Path:
    """A mirrors folder with acme/op: tag v1.0.0 has a kustomization, a release Makefile and a Deployment."""
    mirrors = tmp_path_factory.mktemp("mirrors")
    work = tmp_path_factory.mktemp("work")
    _git(work, "init", "-q")
    (work / "config" / "default").mkdir(parents=True)
    (work / "config" / "default" / "kustomization.yaml").write_text("namespace: op-system\nresources: [manager.yaml]\n")
    (work / "config" / "default" / "manager.yaml").write_text("kind: Deployment\nmetadata:\n  name: op-controller\n  namespace: op-system\n")
    (work / "Makefile").write_text("release:\n\tkustomize build config/default > op-$(VERSION).yaml\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "v1")
    _git(work, "tag", "v1.0.0")
    _git(work, "tag", "v1.1.0")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "acme+op" / "repo")], check=True, capture_output=True)
    return mirrors


def _comp(**kw) -> Component:
    base = {"name": "op", "repo": "acme/op", "version": "v1.0.0", "why": "t", "namespace": "op-system",
            "install": [{"url": "https://github.com/acme/op/releases/download/v1.0.0/op-1.0.0.yaml", "mode": "file"},
                        {"url": "github.com/acme/op/config/default?ref=v1.0.0", "mode": "kustomize"}],
            "deployments": ["op-controller"], "stage": "controllers", "timeout_s": 60, "arm64": True}
    return Component.model_validate({**base, **kw})


def _check(mirrors, comp, monkeypatch):
    monkeypatch.setitem(audit.SOURCE_TREES, "op", ["config"])
    monkeypatch.setitem(audit.NAMESPACE_EVIDENCE, "op", ("config/default/kustomization.yaml", "namespace: {ns}"))
    return {(f.check, f.subject): f for f in audit._component_findings(comp, audit.open_mirror(mirrors, comp.repo), Path("."))}


def test_audit_confirms_a_correct_pin(fake_upstream, monkeypatch):
    got = _check(fake_upstream, _comp(), monkeypatch)
    assert {f.status for f in got.values()} == {"OK"}, [f for f in got.values() if f.status != "OK"]
    assert got[("release-asset", "https://github.com/acme/op/releases/download/v1.0.0/op-1.0.0.yaml")].upstream == "acme/op@v1.0.0:Makefile:2"
    assert got[("namespace", "op-system")].upstream == "acme/op@v1.0.0:config/default/kustomization.yaml:1"


def test_audit_finds_a_wrong_namespace_path_and_name(fake_upstream, monkeypatch):
    comp = _comp(namespace="op", install=[{"url": "github.com/acme/op/config/nope?ref=v1.0.0", "mode": "kustomize"}], deployments=["op-manager"])
    got = _check(fake_upstream, comp, monkeypatch)
    assert got[("namespace", "op")].status == "wrong"
    assert got[("kustomize", "github.com/acme/op/config/nope?ref=v1.0.0")].status == "wrong"
    assert got[("deployment", "op-manager")].status == "unknown"


def test_audit_says_unknown_for_a_tag_the_snapshot_lacks(fake_upstream, monkeypatch):
    got = _check(fake_upstream, _comp(version="v2.0.0", install=[{"url": "https://github.com/acme/op/releases/download/v2.0.0/op.yaml", "mode": "file"}]),
                 monkeypatch)
    (only,) = got.values()
    assert only.check == "tag" and only.status == "unknown" and only.note == "snapshot's newest tag is v1.1.0"


def test_cli_without_mirrors_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv(audit.MIRRORS_ENV, raising=False)
    assert audit.main(["--mirrors", "/nonexistent-mirrors"]) == 2
    assert "error: no mirrors folder" in capsys.readouterr().err


def test_full_audit_against_the_fetched_mirrors_matches_the_committed_results(repo_root, data):
    """Where the upstream mirrors exist, a fresh audit gives exactly the committed findings and CRD rows."""
    mirrors = audit.find_mirrors()
    if mirrors is None:
        pytest.skip(f"upstream git mirrors not available (set {audit.MIRRORS_ENV} to a folder of <owner>+<name>/repo mirrors)")
    fresh = audit.run_audit(repo_root, mirrors, write=False)
    assert fresh["findings"] == data["findings"]
    assert fresh["crds"] == data["crds"]
