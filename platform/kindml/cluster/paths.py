"""Where the cluster files live.

Decision: ``manifests/``, ``kind-config.yaml`` and ``kind-config.gpu.yaml`` stay
at the top of the repository and are NOT package data. kindml finds them, in
this order: ``$KINDML_MANIFESTS_ROOT`` (a folder that contains ``manifests/``),
then the repository that holds the installed ``kindml`` package (editable
install, the supported way to run the cluster target), then the current
directory and its parents. A wheel installed elsewhere must set the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from kindml.errors import PrerequisiteMissing

ENV_ROOT = "KINDML_MANIFESTS_ROOT"


def _has_tree(root: Path) -> bool:
    return (root / "manifests" / "upstream.yaml").is_file() and (root / "kind-config.yaml").is_file()


def repo_root(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_ROOT):
        root = Path(env[ENV_ROOT]).expanduser().resolve()
        if _has_tree(root):
            return root
        raise PrerequisiteMissing(
            f"{ENV_ROOT}={root} does not contain manifests/upstream.yaml and kind-config.yaml",
            "Point it at a checkout of the kindml repository.",
        )
    import kindml

    here = Path(kindml.__file__).resolve().parent  # <repo>/platform/kindml
    candidates = [here.parent.parent]
    start = (cwd or Path.cwd()).resolve()
    candidates += [start, *start.parents]
    for root in candidates:
        if _has_tree(root):
            return root
    raise PrerequisiteMissing(
        "cannot find kindml's manifests/ and kind-config.yaml",
        f"Run from a checkout of the kindml repository (pip install -e .) or set {ENV_ROOT} to one.",
    )


def manifests_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "manifests"


def kind_config(gpu: bool = False, root: Path | None = None) -> Path:
    return (root or repo_root()) / ("kind-config.gpu.yaml" if gpu else "kind-config.yaml")


def overlay(gpu: bool = False, root: Path | None = None) -> Path:
    return manifests_dir(root) / "overlays" / ("kind-gpu" if gpu else "kind")


def dockerfile(root: Path | None = None) -> Path:
    return (root or repo_root()) / "Dockerfile"
