"""The model registry (MLflow): versions, lineage tags and the champion alias.

Locally the tracking and registry store is SQLite in the workspace
(``.kindml/mlflow/mlflow.db``) with artifacts beside it; on the cluster it is
the MLflow tracking server. Every version carries its ONNX file with the
preprocessing spec (and later the drift reference profile) as extra files, and
lineage tags: data hash, Feast feature service and views, validation result,
pipeline run id, git commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kindml.errors import RegistryError

log = logging.getLogger(__name__)

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<ref>[A-Za-z0-9_-]+))?$")


@dataclass
class ModelRef:
    name: str
    version: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "aliases": self.aliases, "tags": self.tags, "run_id": self.run_id}


@contextlib.contextmanager
def mlflow_env(tracking_uri: str) -> Iterator[Any]:
    """Point MLflow at ``tracking_uri`` (tracking and registry) for the block."""
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield mlflow
    finally:
        if previous:
            mlflow.set_tracking_uri(previous)


def ensure_experiment(mlflow: Any, name: str, artifact_root: Path | None) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    kwargs = {"artifact_location": artifact_root.as_uri()} if artifact_root is not None else {}
    try:
        return mlflow.create_experiment(name, **kwargs)
    except Exception:  # created concurrently by another stage
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def parse_model_ref(text: str, default_alias: str = "champion") -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME@7`` or ``NAME@alias`` → (name, version, alias)."""
    m = _REF.match(text.strip())
    if not m:
        raise RegistryError(f"{text!r} is not a model reference", "Use NAME, NAME@VERSION (e.g. my-model@3) or NAME@ALIAS (e.g. my-model@champion).")
    ref = m.group("ref")
    if ref is None:
        return m.group("name"), None, default_alias
    if ref.isdigit():
        return m.group("name"), ref, None
    return m.group("name"), None, ref


def store_exists(tracking_uri: str) -> bool:
    """False only for a SQLite store whose file is missing (opening it would create an empty one)."""
    return not tracking_uri.startswith("sqlite:///") or Path(tracking_uri.removeprefix("sqlite:///")).is_file()


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve(tracking_uri: str, name: str, version: str | None = None, alias: str | None = None) -> ModelRef | None:
    """The version a reference points at, or None when the model/alias does not exist yet."""
    with mlflow_env(tracking_uri):
        from mlflow.exceptions import MlflowException

        client = _client(tracking_uri)
        try:
            if version is not None:
                mv = client.get_model_version(name, version)
            else:
                mv = client.get_model_version_by_alias(name, alias or "champion")
        except MlflowException:
            return None
        return ModelRef(name=mv.name, version=str(mv.version), aliases=list(mv.aliases or []), tags=dict(mv.tags or {}), run_id=mv.run_id, source=mv.source)


def list_models(tracking_uri: str) -> list[str]:
    """Names of every registered model."""
    with mlflow_env(tracking_uri):
        return sorted(m.name for m in _client(tracking_uri).search_registered_models())


def _not_found(exc: BaseException) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def get_registered_model(tracking_uri: str, name: str) -> Any:
    """MLflow's ``RegisteredModel`` (aliases as a dict alias → version, tags), or None when there is no such model.

    Any other failure (a server that does not answer, a broken store) is a :class:`RegistryError`.
    """
    with mlflow_env(tracking_uri):
        try:
            return _client(tracking_uri).get_registered_model(name)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise RegistryError(f"cannot query the model registry {tracking_uri}: {type(exc).__name__}: {str(exc)[:300]}",
                                "Check registry.tracking_uri (`kindml config show`) and that the MLflow server answers.") from None


def list_versions(tracking_uri: str, name: str) -> list[ModelRef]:
    """Every version of ``name``, oldest first, with its aliases (MLflow's version search leaves them out: they come
    from the registered model)."""
    with mlflow_env(tracking_uri):
        from mlflow.exceptions import MlflowException

        client = _client(tracking_uri)
        try:
            versions = client.search_model_versions(f"name = '{name}'")
            aliases = dict(client.get_registered_model(name).aliases or {}) if versions else {}
        except MlflowException:
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in sorted(aliases.items()):
            by_version.setdefault(str(version), []).append(alias)
        refs = [ModelRef(name=v.name, version=str(v.version), aliases=by_version.get(str(v.version), list(v.aliases or [])), tags=dict(v.tags or {}),
                         run_id=v.run_id, source=v.source) for v in versions]
        return sorted(refs, key=lambda r: int(r.version))


def download(tracking_uri: str, ref: ModelRef, dest: Path) -> Path:
    """Copy a version's files (model.onnx, preprocessing.json, ...) into ``dest``; returns the folder."""
    with mlflow_env(tracking_uri) as mlflow:
        dest.mkdir(parents=True, exist_ok=True)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{ref.name}/{ref.version}", dst_path=str(dest)))
    extra = local / "extra_files"  # where mlflow.onnx.log_model puts extra_files
    if extra.is_dir():
        for f in extra.iterdir():
            if not (local / f.name).exists():
                shutil.copy2(f, local / f.name)
    if not (local / "model.onnx").is_file():
        raise RegistryError(f"model {ref.name} v{ref.version} has no model.onnx", "Was it registered by kindml? Register a new version with `kindml run NAME`.")
    return local


def register_onnx(
    tracking_uri: str,
    run_id: str,
    name: str,
    onnx_path: Path,
    extra_files: list[Path],
    tags: dict[str, str],
    description: str,
    promote: bool,
    alias: str,
    model_description: str = "",
    on_registered: Callable[[ModelRef, str | None], None] | None = None,
) -> ModelRef:
    """Log the ONNX model with its extra files into ``run_id`` and register a new version.

    The version is created in one registry call after every file is logged; the alias moves only when
    ``promote`` is true. ``on_registered(version, previous)`` (the audit record; ``previous`` is the version
    the alias pointed at before, when it moved) runs last. A failure after creation — of the alias move or of
    ``on_registered`` — puts the alias back and deletes the half-made version, so the registry never holds a
    partial one.
    """
    import onnx

    with mlflow_env(tracking_uri) as mlflow:
        client = _client(tracking_uri)
        model = onnx.load(str(onnx_path))
        with mlflow.start_run(run_id=run_id):
            info = mlflow.onnx.log_model(
                model,
                name="model",
                extra_files=[str(p) for p in extra_files],
                pip_requirements=["onnxruntime==1.31.1", "onnx==1.23.2", "numpy==2.4.6"],
                save_as_external_data=False,
            )
        try:
            previous = (client.get_registered_model(name).aliases or {}).get(alias)
        except Exception:
            client.create_registered_model(name, description=model_description or "A model trained by a kindml pipeline.")
            previous = None
        mv = client.create_model_version(name=name, source=info.model_uri, run_id=run_id, tags=tags, description=description)
        moved = False
        try:
            if promote:
                client.set_registered_model_alias(name, alias, mv.version)
                moved = True
            version_ref = ModelRef(name=name, version=str(mv.version), aliases=[alias] if promote else [], tags=tags, run_id=run_id, source=info.model_uri)
            if on_registered is not None:
                on_registered(version_ref, str(previous) if promote and previous is not None else None)
        except Exception:
            if moved and previous is not None:
                with contextlib.suppress(Exception):
                    client.set_registered_model_alias(name, alias, previous)
            client.delete_model_version(name, mv.version)
            raise
        return version_ref


def copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
