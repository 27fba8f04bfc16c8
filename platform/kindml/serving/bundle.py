"""Fetch a registered model version into the workspace as a servable bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kindml import registry
from kindml.config import KindmlConfig
from kindml.errors import RegistryError
from kindml.serving.predictor import ModelBundle
from kindml.workspace import Workspace


def fetch_bundle(cfg: KindmlConfig, ws: Workspace, tracking_uri: str, ref_text: str | None) -> ModelBundle:
    """``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS`` (default: the champion) → files under .kindml/serving/models/NAME/VERSION."""
    if not ref_text and not cfg.registry.model_name:
        raise RegistryError("which model? no --model was given and no workload sets a default", "Pass --model NAME[@VERSION|@ALIAS] (see `kindml models list`).")
    name, version, alias = registry.parse_model_ref(ref_text or cfg.registry.model, cfg.registry.champion_alias)
    ref = registry.resolve(tracking_uri, name, version, alias)
    if ref is None:
        what = f"{name} version {version}" if version else f"{name}@{alias}"
        raise RegistryError(f"no registered model {what}", "Run a pipeline (`kindml run NAME`) to register one, or see `kindml models list`.")
    dest = ws.serving / "models" / ref.name / ref.version
    if not (dest / "model.onnx").is_file():
        tmp = ws.tmp / f"download-{ref.name}-{ref.version}"
        if tmp.exists():
            shutil.rmtree(tmp)
        folder = registry.download(tracking_uri, ref, tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(folder, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        (dest / "version.json").write_text(json.dumps({"name": ref.name, "version": ref.version, "aliases": ref.aliases, "tags": ref.tags}, indent=2), encoding="utf-8")
    return ModelBundle.from_folder(dest, ref.name, ref.version, ref.tags.get("kindml.workload_ref"))


def profile_path(bundle: ModelBundle) -> Path | None:
    p = bundle.folder / "reference_profile.json"
    return p if p.is_file() else None
