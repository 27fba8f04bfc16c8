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
            git_commit=git_commit,
        )
