"""What every stage runs with: the workload, the effective config, and where things live.

Components receive the workload reference and the config as parameters
(``workload``, ``config_json``: the same on both targets, visible in the KFP
UI), and find the services in their environment: ``KINDML_RUNTIME_ENV`` set by
the local driver, or the ConfigMap ``kindml-runtime-env`` in a pod of the kind
target (:meth:`kindml.runtime.RuntimeEnv.current`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kindml.config import KindmlConfig
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload


@dataclass
class StageContext:
    workload: Workload
    cfg: KindmlConfig
    env: RuntimeEnv
    ref: str

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.workload, self.cfg, self.env))


def load(workload: str, config_json: str = "{}", **overrides: Any) -> StageContext:
    """``config_json`` is a config (or ``{}``) laid over the workload's defaults; keyword overrides are
    dotted keys with ``__`` for ``.`` (None: not given)."""
    from kindml.config import _validate, apply_defaults
    from kindml.errors import ConfigError
    from kindml.workload.loader import load_workload

    cls = load_workload(workload)
    try:
        data = json.loads(config_json or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"pipeline parameter config_json is not JSON: {exc}", "Pass the output of `kindml config show -o json`.") from None
    if not isinstance(data, dict):
        raise ConfigError("pipeline parameter config_json must be a JSON object", "Pass the output of `kindml config show -o json`.")
    base: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    apply_defaults(base, origins, cls.config_defaults(), f"defaults of workload {cls.name!r}")
    from kindml.config import KindmlConfig, _deep_merge

    # config_json may be a full dump (`kindml config show -o json`, what the driver passes): only the fields that
    # differ from the built-in defaults are settings; the rest must not hide the workload's defaults
    cfg = _validate(_deep_merge(base, _changed(data, KindmlConfig().model_dump(mode="json"))), origins, "pipeline parameter config_json")
    dotted = {k.replace("__", "."): v for k, v in overrides.items() if v is not None}
    if dotted:
        cfg = cfg.with_overrides(dotted, source="pipeline parameter")
    env = RuntimeEnv.current(cfg)
    (Path(env.workspace) / "tmp").mkdir(parents=True, exist_ok=True)
    return StageContext(cls(cfg), cfg, env, workload)


def _changed(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that differ from ``defaults`` (recursively)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        d = defaults.get(k, object())
        if isinstance(v, dict) and isinstance(d, dict) and k != "workloads":
            sub = _changed(v, d)
            if sub:
                out[k] = sub
        elif v != d:
            out[k] = v
    return out


def record_failure(stage: str, exc: BaseException) -> None:
    """Leave a machine-readable failure note for the local driver ($KINDML_RUN_DIR/errors/<stage>.json).

    On a cluster the variable is unset and the exception (message + hint) is
    the task's log, as KFP users expect.
    """
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
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(artifact.metadata), indent=2, default=str), encoding="utf-8")


def log_scalars(artifact: Any, values: dict[str, Any]) -> None:
    """Log every finite number of ``values`` on a KFP Metrics artifact, then save it (see :func:`save_metrics`)."""
    import math

    for k, v in values.items():
        if isinstance(v, bool):
            v = float(v)
        if isinstance(v, int | float) and math.isfinite(float(v)):
            artifact.log_metric(k, float(v))
    save_metrics(artifact)


# --- lineage: each stage's small JSON facts travel with its outputs -------------------------------

LINEAGE = "lineage"


def carry_lineage(src: Path, dst: Path, **new: Path) -> Path:
    """Copy ``src/lineage/*`` to ``dst/lineage/`` and add files (name → path), so every artifact knows where it came from."""
    import shutil

    out = dst / LINEAGE
    out.mkdir(parents=True, exist_ok=True)
    if (src / LINEAGE).is_dir():
        for f in (src / LINEAGE).iterdir():
            if f.is_file():
                shutil.copy2(f, out / f.name)
    for name, path in new.items():
        if path.is_file():
            shutil.copy2(path, out / f"{name}.json")
    return out


def read_lineage(folder: Path) -> dict[str, Any]:
    out = {}
    d = folder / LINEAGE
    if d.is_dir():
        for f in sorted(d.glob("*.json")):
            out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
    return out
