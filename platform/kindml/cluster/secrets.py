"""Secrets that `kindml up` generates (never committed, never in manifests/).

Values are created once per workspace with :mod:`secrets`, stored in
``<workspace>/cluster/secrets.json`` (mode 0600) so re-running ``up`` keeps
them, and applied as Secret objects through kubectl's stdin.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
from pathlib import Path
from typing import Any

from kindml.cluster import endpoints


def _generate() -> dict[str, str]:
    return {"grafana-admin-password": _secrets.token_urlsafe(24)}


def load_or_create(state_dir: Path) -> dict[str, str]:
    path = state_dir / "secrets.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    state_dir.mkdir(parents=True, exist_ok=True)
    values = _generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return values


def secret_objects(values: dict[str, str]) -> list[dict[str, Any]]:
    """The Secret objects (stringData) the platform needs."""
    feast_online = f"connection_string: {endpoints.REDIS_CONNECTION}\n"
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "grafana-admin", "namespace": endpoints.MONITORING_NAMESPACE, "labels": {"app.kubernetes.io/part-of": "kindml"}},
            "type": "Opaque",
            "stringData": {"admin-user": "admin", "admin-password": values["grafana-admin-password"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "feast-online-store", "namespace": endpoints.NAMESPACE, "labels": {"app.kubernetes.io/part-of": "kindml"}},
            "type": "Opaque",
            "stringData": {"redis": feast_online},
        },
    ]


def secrets_yaml(values: dict[str, str]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in secret_objects(values))


REDACTED = "<generated at up time, stored in the workspace (0600)>"
