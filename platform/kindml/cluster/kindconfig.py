"""Reading kind-config.yaml: the host ports kindml publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def host_ports(cfg: dict[str, Any]) -> list[tuple[str, int]]:
    """(listenAddress, hostPort) of every extraPortMapping."""
    out = []
    for node in cfg.get("nodes") or []:
        for m in node.get("extraPortMappings") or []:
            out.append((m.get("listenAddress", "0.0.0.0"), int(m["hostPort"])))
    return out
