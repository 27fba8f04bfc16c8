"""The library behind ``kindml up/down/status/render``: paths + upstream pins
+ rendered overlay -> plan -> executor. The CLI only parses flags and prints."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kindml.cluster import doctor, kustomize, objects, paths, secrets
from kindml.cluster.executor import Executor, Progress
from kindml.cluster.plan import ClusterTarget, Plan, build_down_plan, build_up_plan
from kindml.cluster.upstream import Upstream, load_upstream
from kindml.images import RUNTIME_IMAGE


def state_dir(workspace_root: Path) -> Path:
    return workspace_root / "cluster"


def cluster_overlay(target: ClusterTarget, root: Path | None = None) -> Path:
    return paths.manifests_dir(root) / "overlays" / ("cluster-nodeports" if target.node_ports else "cluster")


def retarget(objs: list[dict[str, Any]], target: ClusterTarget) -> list[dict[str, Any]]:
    """The existing-cluster settings on rendered objects: ``storageClassName`` of
    every PersistentVolumeClaim kindml creates (MLflow's, the Feast registry's)
    and the runtime image in a registry."""
    out = copy.deepcopy(objs)
    for o in out:
        kind, spec = o.get("kind"), o.get("spec") or {}
        if target.storage_class:
            if kind == "PersistentVolumeClaim":
                spec["storageClassName"] = target.storage_class
            elif kind == "FeatureStore":
                pvc = (((spec.get("services") or {}).get("registry") or {}).get("local") or {}).get("persistence", {}).get("file", {}).get("pvc")
                if pvc and "create" in pvc:
                    pvc["create"]["storageClassName"] = target.storage_class
        if target.image:
            containers = [c for _, pod, _ in objects.pod_specs(o) for c in objects.containers(pod)]
            if kind == "ClusterStorageContainer":
                containers.append(spec["container"])
            for c in containers:
                if c.get("image") == RUNTIME_IMAGE:
                    c["image"] = target.image
    return out


def platform_objects(gpu: bool = False, root: Path | None = None, target: ClusterTarget | None = None) -> list[dict[str, Any]]:
    if target is not None:
        return retarget(kustomize.build_objects(cluster_overlay(target, root)), target)
    return kustomize.build_objects(paths.overlay(gpu, root))


def up_plan(gpu: bool = False, root: Path | None = None, upstream: Upstream | None = None,
            addons: frozenset[str] = frozenset(), target: ClusterTarget | None = None) -> Plan:
    root = root or paths.repo_root()
    up = upstream or load_upstream(paths.manifests_dir(root) / "upstream.yaml")
    return build_up_plan(
        up,
        platform_objects(gpu, root, target),
        kind_config=paths.kind_config(gpu, root),
        overlay=cluster_overlay(target, root) if target else paths.overlay(gpu, root),
        manifests_root=paths.manifests_dir(root),
        gpu=gpu,
        addons=addons,
        target=target,
    )


def down_plan() -> Plan:
    return build_down_plan()


def arm64_missing(up: Upstream) -> list[str]:
    return [f"{c.name} {c.version}" for c in up.components if not c.arm64]


def run_doctor(workspace_root: Path, target: str = "kind", gpu: bool = False, root: Path | None = None) -> doctor.Report:
    root = root or paths.repo_root()
    up = load_upstream(paths.manifests_dir(root) / "upstream.yaml")
    return doctor.run_doctor(paths.kind_config(gpu, root), arm64_missing(up), workspace_root, target)


def execute(plan: Plan, workspace_root: Path, progress: Progress | None = None, doctor_check: Callable[[], None] | None = None,
            platform: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``plan``; ``platform`` are the rendered objects an existing-cluster plan applies from stdin."""
    from kindml.cluster.templates import to_yaml

    sd = state_dir(workspace_root)
    inputs = {"secrets": lambda: secrets.secrets_yaml(secrets.load_or_create(sd))}
    if platform is not None:
        inputs["platform"] = lambda: to_yaml(*platform)
    ex = Executor(
        plan,
        sd,
        inputs=inputs,
        doctor=doctor_check,
        progress=progress,
    )
    return ex.run()
