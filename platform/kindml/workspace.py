"""The workspace: one folder (default ``./.kindml``) holding all local state.

Layout::

    .kindml/
      runs/<run_id>/        summary.json, logs/, kfp/ (pipeline root), reports
      features/             the Feast repo: feature_store.yaml, registry.db, online_store.db, data/
      mlflow/               MLflow tracking + registry (SQLite) and artifacts
      serving/              PID files and state of local predictors / Prometheus
      cache/                kfp.local task cache (re-runs reuse completed stages)

Nothing is created until :meth:`Workspace.ensure` is called by a command.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kindml.errors import KindmlError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def serving(self) -> Path:
        return self.root / "serving"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def ensure(self) -> Workspace:
        try:
            for d in (self.root, self.runs, self.features, self.mlflow, self.serving, self.cache, self.tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KindmlError(
                f"cannot create the workspace at {self.root}: {exc.strerror}",
                "Set KINDML_HOME (or `home:` in kindml.yaml) to a writable folder.",
            ) from None
        return self

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow / "artifacts"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def new_run_id(self, prefix: str = "capstone") -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{prefix}-{stamp}-{secrets.token_hex(3)}"

    def list_runs(self) -> list[Path]:
        if not self.runs.is_dir():
            return []
        return sorted((p for p in self.runs.iterdir() if (p / "summary.json").is_file()), key=lambda p: p.stat().st_mtime)

    def latest_run(self) -> Path | None:
        runs = self.list_runs()
        return runs[-1] if runs else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
