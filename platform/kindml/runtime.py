"""Where things live for one pipeline run: the part of the setup that differs
between the embedded default and the kind cluster.

The driver builds a :class:`RuntimeEnv` and hands it to every component as a
JSON string, together with the effective :class:`~kindml.config.KindmlConfig`.
Components never read the caller's environment or files on their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kindml.config import KindmlConfig
from kindml.workspace import Workspace


class RuntimeEnv(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Literal["local", "kind"] = "local"
    workspace: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None = None
    feature_repo: str
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = ""
    # host:port of a Feast registry server; empty: the file registry inside feature_repo
    feature_registry: str = ""
    git_commit: str = ""

    @property
    def feature_repo_path(self) -> Path:
        return Path(self.feature_repo)

    @classmethod
    def local(cls, cfg: KindmlConfig, ws: Workspace, redis_connection: str = "", git_commit: str = "") -> RuntimeEnv:
        return cls(
            target="local",
            workspace=str(ws.root),
            mlflow_tracking_uri=cfg.registry.tracking_uri or ws.mlflow_tracking_uri,
            mlflow_artifact_root=str(ws.mlflow_artifacts) if not cfg.registry.tracking_uri else None,
            feature_repo=str(ws.features),
            online_store=cfg.features.online_store,
            redis_connection=redis_connection or cfg.features.redis_connection,
            feature_registry=cfg.features.registry,
            git_commit=git_commit,
        )

    @classmethod
    def kind(cls, environ: dict[str, str] | None = None) -> RuntimeEnv:
        """The in-cluster defaults (services created by manifests/), overridable by pod env
        (ConfigMap ``kindml-runtime-env``, i.e. :data:`kindml.cluster.endpoints.RUNNER_ENV`).

        The Feast registry is the Feast operator's registry server, shared by
        the features stage (KFP pod), training (RayJob) and the predictor
        (KServe pod); the online store is the shared Redis. Only the offline
        parquet tables stay inside the features pod, which is the only one
        that reads them.
        """
        import os

        from kindml.cluster import endpoints

        e = os.environ if environ is None else environ
        online = e.get("KINDML_FEAST_ONLINE_STORE", "redis")
        if online not in ("sqlite", "redis"):
            from kindml.errors import ConfigError

            raise ConfigError(f"KINDML_FEAST_ONLINE_STORE={online!r} is not sqlite or redis",
                              "Fix ConfigMap kindml-runtime-env (manifests/base/kfp/runtime-env.yaml).")
        return cls(
            target="kind",
            workspace=e.get("KINDML_WORKSPACE", endpoints.POD_WORKSPACE),
            mlflow_tracking_uri=e.get("MLFLOW_TRACKING_URI", endpoints.MLFLOW_URI),
            mlflow_artifact_root=None,
            feature_repo=e.get("KINDML_FEATURE_REPO", f"{endpoints.POD_WORKSPACE}/features"),
            online_store=online,  # type: ignore[arg-type]
            redis_connection=e.get("KINDML_REDIS", endpoints.REDIS_CONNECTION),
            feature_registry=e.get("KINDML_FEAST_REGISTRY", endpoints.FEAST_REGISTRY),
            git_commit=e.get("KINDML_GIT_COMMIT", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> RuntimeEnv:
        """What components receive: the driver's JSON, or (empty) the in-cluster defaults."""
        return cls.model_validate_json(text) if text.strip() else cls.kind()

    @classmethod
    def current(cls, cfg: KindmlConfig, environ: dict[str, str] | None = None) -> RuntimeEnv:
        """Where things live for a component: what the driver put in ``KINDML_RUNTIME_ENV`` (a local run), the
        in-cluster services in a pod of the kind target (``KINDML_TARGET=kind``), else the workspace of ``cfg``."""
        import os

        e = os.environ if environ is None else environ
        if e.get(ENV_VAR, "").strip():
            from pydantic import ValidationError

            from kindml.errors import ConfigError

            try:
                return cls.model_validate_json(e[ENV_VAR])
            except ValidationError as exc:
                raise ConfigError(f"{ENV_VAR} is not a runtime environment: {exc.errors()[0]['msg']}",
                                  "It is set by `kindml run`; unset it to use the workspace of the config.") from None
        if e.get("KINDML_TARGET") == "kind":
            return cls.kind(dict(e))
        return cls.local(cfg, Workspace(Path(cfg.home)))

    def exported(self) -> dict[str, str]:
        """The environment variable that hands this runtime to components (kfp.local tasks inherit it)."""
        return {ENV_VAR: self.model_dump_json()}


ENV_VAR = "KINDML_RUNTIME_ENV"
