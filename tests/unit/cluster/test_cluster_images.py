"""The image list of the offline bundle: every image our manifests and
templates use is pinned (no :latest, no untagged); the upstream list comes
from rendering the pinned upstream manifests (network) and is cached."""

from __future__ import annotations

import pytest

from kindml.cluster import bundle, lifecycle
from kindml.cluster.upstream import load_upstream
from kindml.images import RUNTIME_IMAGE

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("redis:7.4.2-alpine", True),
        ("quay.io/prometheus/prometheus:v3.5.0", True),
        ("kindml-runtime:0.1.0", True),
        ("redis", False),
        ("redis:latest", False),
        ("ghcr.io/kubeflow/kfp-api-server:dummy", False),
        ("localhost:5000/redis", False),
        ("redis@sha256:" + "a" * 64, True),
    ],
)
def test_image_problems(image, ok):
    assert (bundle.image_problems(image) == []) is ok


def test_our_images_are_pinned(repo_root, tmp_path):
    up = load_upstream(repo_root / "manifests" / "upstream.yaml")
    for gpu in (False, True):
        res = bundle.image_list(lifecycle.platform_objects(gpu, repo_root), up, tmp_path, gpu, resolve=False)
        assert res["problems"] == []
        assert RUNTIME_IMAGE in res["ours"]
        assert {"redis:7.4.2-alpine", "grafana/grafana:11.6.0", "quay.io/prometheus/prometheus:v3.5.0"} <= set(res["ours"])
        assert res["upstream"] is None and "--resolve" in res["note"]
        assert bundle.image_problems(res["kind_node"]) == []


def test_resolve_renders_pinned_sources_and_caches(repo_root, tmp_path, fake_bin):
    """--resolve renders every pinned upstream source (mocked kubectl here) and caches the images."""
    up = load_upstream(repo_root / "manifests" / "upstream.yaml")
    fake_bin.on(lambda a: a[:2] == ["kubectl", "kustomize"] or "--dry-run=client" in a,
                stdout="apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c, image: 'example.org/x:1.2.3'}\n")
    res = bundle.image_list([], up, tmp_path, False, resolve=True)
    assert res["upstream_resolved"] and res["upstream"][f"kserve@{up.component('kserve').version}"] == ["example.org/x:1.2.3"]
    rendered = [c for c in fake_bin.commands() if "kustomize" in c or "dry-run" in c]
    assert len(rendered) == sum(len(c.sources) for c in up.selected(False))
    again = bundle.image_list([], up, tmp_path, False, resolve=False)
    assert again["upstream"] == res["upstream"]


def test_pull_and_load(fake_bin):
    fake_bin.on(lambda a: a[:3] == ["docker", "image", "inspect"] and a[-1] == "redis:7.4.2-alpine", rc=1)
    out = bundle.pull_and_load(["redis:7.4.2-alpine", RUNTIME_IMAGE], skip={RUNTIME_IMAGE})
    assert out == [{"image": "redis:7.4.2-alpine", "result": "loaded"}]
    assert fake_bin.commands()[-2:] == ["docker pull redis:7.4.2-alpine", "kind load docker-image redis:7.4.2-alpine --name kindml"]


def test_image_build_dry_run(repo_root):
    res = bundle.build_runtime_image(repo_root, dry_run=True)
    assert res["commands"][0].startswith(f"docker build -t {RUNTIME_IMAGE} -f {repo_root}/Dockerfile")
    assert res["commands"][1] == f"kind load docker-image {RUNTIME_IMAGE} --name kindml"


def test_dockerfile_is_pinned_and_non_root(repo_root):
    text = (repo_root / "Dockerfile").read_text()
    assert "USER 10001" in text and "torch==2.13.0" in text
    bases = [ln.split()[-1] for ln in text.splitlines() if ln.startswith("ARG PYTHON_IMAGE=")]
    assert bases and all(bundle.image_problems(b.split("=", 1)[-1]) == [] for b in bases)
    ignore = (repo_root / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".kindml"} <= set(ignore)
