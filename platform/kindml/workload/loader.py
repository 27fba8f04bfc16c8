"""Load a workload from its reference, and build the config a workload runs with.

A reference is what a pipeline passes to every component (``workload=...``):

- ``"package.module"``: the module's ``WORKLOAD`` attribute (a :class:`Workload` subclass);
- ``"package.module:ClassName"``: that class;
- ``"path/to/file.py"`` (or ``...py:ClassName``): the file's folder is put on ``sys.path`` and
  ``PYTHONPATH`` (Ray workers and KFP tasks import it by module name too), then as above.

Only module and file names travel: the core never imports a workload by name.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from kindml.errors import UsageError
from kindml.workload.contract import TASKS, Workload

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_cache: dict[str, type[Workload]] = {}


def add_search_path(folder: Path) -> None:
    """Make modules in ``folder`` importable here and in child processes (KFP tasks, Ray workers, predictors)."""
    folder = folder.resolve()
    text = str(folder)
    if text not in sys.path:
        sys.path.insert(0, text)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if text not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([text, *parts])


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"mod:Cls"`` → (``"mod"``, ``"Cls"``); a file path keeps its own colon-free form."""
    ref = ref.strip()
    if not ref:
        raise UsageError("the workload reference is empty", "Pass a module (pkg.module), module:Class, or a .py file.")
    module, _, attr = ref.partition(":") if not re.match(r"^[A-Za-z]:\\", ref) else (ref, "", "")
    return module, (attr or None)


def load_workload(ref: str) -> type[Workload]:
    """The workload class a reference names (cached per process); a UsageError that says why otherwise."""
    if ref in _cache:
        return _cache[ref]
    target, attr = split_ref(ref)
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise UsageError(f"workload file {target} does not exist", "Pass the path of the workload's .py file, or a module name.")
        add_search_path(path.parent)
        target = path.stem
    if not _MODULE.match(target):
        raise UsageError(f"{ref!r} is not a workload reference", "Use pkg.module, pkg.module:ClassName or path/to/workload.py.")
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import workload module {target!r}: {exc}",
                         "Run from the folder that holds it, install it, or pass the .py file's path.") from None
    obj: Any = getattr(module, attr or "WORKLOAD", None)
    if obj is None:
        raise UsageError(f"module {target!r} has no {attr or 'WORKLOAD'}",
                         "A workload module sets WORKLOAD = <its Workload subclass>, or the reference names the class (module:Class).")
    if not (isinstance(obj, type) and issubclass(obj, Workload)):
        raise UsageError(f"{ref!r} is not a kindml Workload subclass (got {type(obj).__name__})",
                         "Subclass kindml.workload.contract.Workload (or kindml.tabular.TabularWorkload).")
    check_class(obj, ref)
    _cache[ref] = obj
    return obj


def check_class(cls: type[Workload], ref: str) -> None:
    """The class attributes every stage relies on, checked once with a message that names what is missing."""
    missing = [a for a in ("name", "task", "model_name", "event_table", "label", "row_id", "gate_metric") if not getattr(cls, a, None)]
    if missing:
        raise UsageError(f"workload {ref!r} does not set {', '.join(missing)}", "Set them as class attributes (see kindml.workload.contract.Workload).")
    if not _NAME.match(cls.name):
        raise UsageError(f"workload {ref!r}: name {cls.name!r} must match [a-z][a-z0-9_]*", "Use a short lowercase identifier.")
    if cls.task not in TASKS:
        raise UsageError(f"workload {ref!r}: task {cls.task!r} is not one of {', '.join(TASKS)}", "Pick a supported task.")
    from kindml.model.metrics import METRIC_SETS

    if cls.gate_metric not in METRIC_SETS[cls.task]:
        raise UsageError(f"workload {ref!r}: gate_metric {cls.gate_metric!r} is not a {cls.task} metric",
                         f"Use one of {', '.join(METRIC_SETS[cls.task])}.")


def workload_config(ref: str, config_path: Path | str | None = None, overrides: dict[str, Any] | None = None,
                    environ: dict[str, str] | None = None) -> Any:
    """The effective config for a workload: built-in → the workload's defaults → file → env → overrides."""
    from kindml.config import load_config

    cls = load_workload(ref)
    return load_config(config_path, environ=environ, overrides=overrides, defaults=cls.config_defaults(),
                       defaults_source=f"defaults of workload {cls.name!r}")


def instantiate(ref: str, cfg: Any) -> Workload:
    """The workload for ``cfg`` (its options validated)."""
    return load_workload(ref)(cfg)
