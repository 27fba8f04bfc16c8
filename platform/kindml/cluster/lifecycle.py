"""The library behind ``kindml up/down/status/render``: paths + upstream pins
+ rendered overlay -> plan -> executor. The CLI only parses flags and prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kindml.cluster import doctor, kustomize, paths, secrets
from kindml.cluster.executor import Executor, Progress
from kindml.cluster.plan import Plan, build_down_plan, build_up_plan
from kindml.cluster.upstream import Upstream, load_upstream


def state_dir(workspace_root: Path) -> Path:
    return workspace_root / "cluster"


def platform_objects(gpu: bool = False, root: Path | None = None) -> list[dict[str, Any]]:
    return kustomize.build_objects(paths.overlay(gpu, root))


def up_plan(gpu: bool = False, root: Path | None = None, upstream: Upstream | None = None) -> Plan:
    root = root or paths.repo_root()
    up = upstream or load_upstream(paths.manifests_dir(root) / "upstream.yaml")
    return build_up_plan(
        up,
        platform_objects(gpu, root),
        kind_config=paths.kind_config(gpu, root),
        overlay=paths.overlay(gpu, root),
        manifests_root=paths.manifests_dir(root),
        gpu=gpu,
    )


def down_plan() -> Plan:
    return build_down_plan()


def arm64_missing(up: Upstream) -> list[str]:
    return [f"{c.name} {c.version}" for c in up.components if not c.arm64]


def run_doctor(workspace_root: Path, target: str = "kind", gpu: bool = False, root: Path | None = None) -> doctor.Report:
    root = root or paths.repo_root()
    up = load_upstream(paths.manifests_dir(root) / "upstream.yaml")
    return doctor.run_doctor(paths.kind_config(gpu, root), arm64_missing(up), workspace_root, target)


def execute(plan: Plan, workspace_root: Path, progress: Progress | None = None, doctor_check: Callable[[], None] | None = None) -> dict[str, Any]:
    sd = state_dir(workspace_root)
    ex = Executor(
        plan,
        sd,
        inputs={"secrets": lambda: secrets.secrets_yaml(secrets.load_or_create(sd))},
        doctor=doctor_check,
        progress=progress,
    )
    return ex.run()
