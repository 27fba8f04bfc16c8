"""Rebuild the config and runtime a component runs with from its JSON parameters."""

from __future__ import annotations

import json
from typing import Any

from kindml.config import KindmlConfig
from kindml.runtime import RuntimeEnv


def load(config_json: str, env_json: str = "", **overrides: Any) -> tuple[KindmlConfig, RuntimeEnv]:
    """``config_json`` is the effective config (or ``{}`` for defaults); keyword overrides are dotted keys with ``__`` for ``.``."""
    from kindml.config import _validate
    from kindml.errors import ConfigError

    try:
        data = json.loads(config_json or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"pipeline parameter config_json is not JSON: {exc}", "Pass the output of `kindml config show -o json`.") from None
    if not isinstance(data, dict):
        raise ConfigError("pipeline parameter config_json must be a JSON object", "Pass the output of `kindml config show -o json`.")
    base = _validate(data, {}, "pipeline parameter config_json")
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    cfg = base.with_overrides(dotted, source="pipeline parameter") if dotted else base
    env = RuntimeEnv.from_json(env_json)
    from pathlib import Path

    for sub in ("tmp",):
        (Path(env.workspace) / sub).mkdir(parents=True, exist_ok=True)
    return cfg, env


def record_failure(stage: str, exc: BaseException) -> None:
    """Leave a machine-readable failure note for the local driver ($KINDML_RUN_DIR/errors/<stage>.json).

    On a cluster the variable is unset and the exception (message + hint) is
    the task's log, as KFP users expect.
    """
    import os
    from pathlib import Path

    from kindml.errors import KindmlError

    run_dir = os.environ.get("KINDML_RUN_DIR")
    if not run_dir:
        return
    payload = exc.to_dict() if isinstance(exc, KindmlError) else {"error": type(exc).__name__, "message": str(exc), "hint": ""}
    payload["exit_code"] = getattr(exc, "exit_code", 1)
    path = Path(run_dir) / "errors" / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def save_metrics(artifact: Any) -> None:
    """Also write a Metrics artifact's values to its file.

    KFP carries metrics in the executor output, not in the artifact file, and
    kfp.local treats a cache entry whose artifact file is missing as a miss —
    so without the file no stage downstream of a Metrics output is ever
    reused on resume. The file is harmless (and readable) on a cluster too.
    """
    from pathlib import Path

    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(artifact.metadata), indent=2, default=str), encoding="utf-8")
