"""Images: build the runtime image, list every image the platform needs, and
the offline bundle (pull once, ``kind load`` into the nodes).

Our images come from rendering our overlay and the per-run templates
(offline). Upstream images can only be known by rendering the pinned upstream
manifests, which needs network: ``--resolve`` does it and caches the result in
the workspace, so later listings (and a second ``up`` without network) use the
cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kindml.cluster import endpoints, objects, proc, templates
from kindml.cluster.upstream import Upstream
from kindml.errors import ClusterError
from kindml.images import RUNTIME_IMAGE
from kindml.workspace import atomic_write_json

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_problems(image: str) -> list[str]:
    """Why an image reference is not pinned (empty list: pinned)."""
    if _DIGEST.search(image):
        return []
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return [f"{image}: no tag (would pull :latest)"]
    tag = name.split(":", 1)[1]
    if tag in ("latest", "nightly", "master", "main", "dev", "dummy", "stable"):
        return [f"{image}: floating tag {tag!r}"]
    if not re.search(r"\d", tag):
        return [f"{image}: tag {tag!r} has no version number"]
    return []


def template_images() -> list[str]:
    mv = templates.ModelVersion(version="1", model_uri="models:/model/1")
    objs = [templates.render_inferenceservice(mv), templates.render_rayjob(templates.RayJobParams(run_id="x", entrypoint="true"))]
    return objects.images(objs)


def our_images(platform_objects: list[dict[str, Any]]) -> list[str]:
    return sorted(set(objects.images(platform_objects)) | set(template_images()) | {RUNTIME_IMAGE})


def cache_path(state_dir: Path) -> Path:
    return state_dir / "upstream-images.json"


def resolve_upstream_images(upstream: Upstream, gpu: bool, state_dir: Path) -> dict[str, list[str]]:
    """Render every pinned upstream source (network) and cache its images."""
    out: dict[str, list[str]] = {}
    for c in upstream.selected(gpu):
        found: set[str] = set()
        for s in c.sources:
            res = proc.run(s.render_argv(), timeout=300)
            if not res.ok:
                raise ClusterError(f"cannot render {s.url}:\n{res.tail()}", "Rendering upstream manifests needs network access to the release URLs.")
            found |= set(objects.images(objects.load_all(res.stdout)))
        out[f"{c.name}@{c.version}"] = sorted(found)
    atomic_write_json(cache_path(state_dir), {"gpu": gpu, "images": out})
    return out


def cached_upstream_images(state_dir: Path) -> dict[str, list[str]] | None:
    p = cache_path(state_dir)
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8")).get("images")


def image_list(platform_objects: list[dict[str, Any]], upstream: Upstream, state_dir: Path, gpu: bool, resolve: bool) -> dict[str, Any]:
    ours = our_images(platform_objects)
    up = resolve_upstream_images(upstream, gpu, state_dir) if resolve else cached_upstream_images(state_dir)
    return {
        "ours": ours,
        "kind_node": upstream.kind.node_image,
        "upstream": up,
        "upstream_resolved": up is not None,
        "note": None if up is not None else "upstream images are not resolved yet: run `kindml images list --resolve` once with network access",
        "problems": sorted({p for img in ours + [i for v in (up or {}).values() for i in v] for p in image_problems(img)}),
    }


def pull_and_load(images: list[str], skip: set[str] | None = None, progress: Any = None) -> list[dict[str, str]]:
    """docker pull (if not present) + kind load docker-image, image by image."""
    proc.require("docker")
    proc.require("kind")
    out = []
    for img in images:
        if skip and img in skip:
            continue
        have = proc.run(["docker", "image", "inspect", "--format", "{{.Id}}", img], timeout=60)
        if not have.ok:
            if progress:
                progress(f"pull {img}")
            pulled = proc.run(["docker", "pull", img], timeout=1800)
            if not pulled.ok:
                raise ClusterError(f"docker pull {img} failed:\n{pulled.tail()}", "Check network access and the image name; on arm64 see docs/cluster.md.")
        if progress:
            progress(f"kind load {img}")
        loaded = proc.run(["kind", "load", "docker-image", img, "--name", endpoints.CLUSTER_NAME], timeout=1800)
        if not loaded.ok:
            raise ClusterError(f"kind load docker-image {img} failed:\n{loaded.tail()}", "Is the cluster up? `kindml status`.")
        out.append({"image": img, "result": "loaded"})
    return out


def build_runtime_image(root: Path, load: bool = True, dry_run: bool = False) -> dict[str, Any]:
    """docker build of the runtime image, then kind load (when the cluster exists)."""
    build = ["docker", "build", "-t", RUNTIME_IMAGE, "-f", str(root / "Dockerfile"), str(root)]
    load_cmd = ["kind", "load", "docker-image", RUNTIME_IMAGE, "--name", endpoints.CLUSTER_NAME]
    if dry_run:
        return {"image": RUNTIME_IMAGE, "commands": [" ".join(build)] + ([" ".join(load_cmd)] if load else []), "dry_run": True}
    proc.require("docker")
    res = proc.run(build, timeout=3600)
    if not res.ok:
        raise ClusterError(f"docker build failed:\n{res.tail(20)}", "Read the build output above; `docker info` must work and the build needs network access to the package index.")
    loaded = False
    if load:
        from kindml.cluster.doctor import cluster_exists

        if cluster_exists():
            lr = proc.run(load_cmd, timeout=1800)
            if not lr.ok:
                raise ClusterError(f"kind load failed:\n{lr.tail()}", "Check `kind get clusters`; then run `kindml image build` again.")
            loaded = True
    return {"image": RUNTIME_IMAGE, "built": True, "loaded_into_kind": loaded}
