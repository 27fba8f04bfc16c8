"""What ``kindml run`` can run: a KFP v2 pipeline from a module, a user's Python file, or compiled IR YAML.

A :class:`PipelineSource` knows how to load the pipeline, which workload (if
any) it declares (a pipeline module's ``WORKLOAD`` attribute, used for config
defaults), its parameters with their KFP types and defaults, and its tasks in
run order (the stages the progress display and ``summary.json`` show).
It is described by a small JSON-able dict so a resumed run can load it again.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kindml.errors import UsageError

KINDS = ("module", "file", "ir")


@dataclass(frozen=True)
class PipelineSource:
    kind: str
    ref: str
    """``module:function`` (module), a .py path (file), or a .yaml path (ir)."""
    name: str
    workload: str | None = None
    function: str | None = None

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineSource:
        return cls(**{k: d.get(k) for k in ("kind", "ref", "name", "workload", "function")})

    @property
    def folder(self) -> Path | None:
        """A file pipeline's folder: put on the search path so its workload module imports in every task."""
        return Path(self.ref).resolve().parent if self.kind == "file" else None

    def load(self) -> Any:
        if self.kind == "module":
            module, _, attr = self.ref.partition(":")
            return getattr(importlib.import_module(module), attr)
        if self.kind == "ir":
            from kfp import components

            try:
                return components.load_component_from_file(self.ref)
            except Exception as exc:
                raise UsageError(f"{self.ref} is not KFP pipeline IR: {type(exc).__name__}: {str(exc)[:200]}",
                                 "Pass a YAML written by `kindml pipeline compile` or kfp's Compiler.") from None
        module = _import_file(Path(self.ref))
        return _find_pipeline(module, Path(self.ref), self.function)


def _import_file(path: Path) -> Any:
    from kindml.workload.loader import add_search_path

    if not path.is_file():
        raise UsageError(f"pipeline file {path} does not exist", "Pass the path of a .py file with a @dsl.pipeline function.")
    add_search_path(path.parent)
    name = path.stem
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise UsageError(f"{path.name}: the file name must be a Python module name", "Rename it, e.g. my_pipeline.py.")
    try:
        module = importlib.import_module(name)
        if Path(getattr(module, "__file__", "") or "").resolve() != path.resolve():
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"cannot import {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
                         "Fix the error in the pipeline file (run it with python to see the traceback).") from None
    return module


def _is_pipeline(obj: Any) -> bool:
    from kfp.dsl.graph_component import GraphComponent

    return isinstance(obj, GraphComponent)


def _find_pipeline(module: Any, path: Path, function: str | None) -> Any:
    if function:
        obj = getattr(module, function, None)
        if obj is None or not _is_pipeline(obj):
            raise UsageError(f"{path} has no @dsl.pipeline function {function!r}", "Check the name after ':' in PIPELINE.")
        return obj
    found = {k: v for k, v in vars(module).items() if _is_pipeline(v) and getattr(v, "__module__", module.__name__) in (module.__name__, None)}
    found = found or {k: v for k, v in vars(module).items() if _is_pipeline(v)}
    if "pipeline" in found:
        return found["pipeline"]
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise UsageError(f"{path} defines no @dsl.pipeline function", "Decorate your pipeline function with kfp's @dsl.pipeline.")
    raise UsageError(f"{path} defines several pipelines ({', '.join(sorted(found))})",
                     f"Name one: kindml run {path}:{sorted(found)[0]} (or call it `pipeline`).")


def from_module(name: str, ref: str, workload: str | None) -> PipelineSource:
    return PipelineSource("module", ref, name, workload)


def from_path(text: str) -> PipelineSource:
    """A ``.py`` file (optionally ``file.py:function``) or an IR ``.yaml``/``.yml``."""
    path_text, _, function = text.partition(":") if text.count(":") == 1 and not re.match(r"^[A-Za-z]:\\", text) else (text, "", "")
    path = Path(path_text).expanduser()
    if path.suffix == ".py":
        resolved = str(path.resolve())
        module = _import_file(path)
        workload = getattr(module, "WORKLOAD", None)
        if isinstance(workload, str) and workload.endswith(".py") and not Path(workload).is_absolute():
            workload = str((path.parent / workload).resolve())
        src = PipelineSource("file", resolved, path.stem, workload if isinstance(workload, str) else None, function or None)
        name = getattr(src.load(), "name", None) or path.stem  # the @dsl.pipeline's name
        return PipelineSource("file", resolved, re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or path.stem, src.workload, src.function)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"pipeline IR {path} does not exist", "Compile one with `kindml pipeline compile --out DIR`.")
        src = PipelineSource("ir", str(path.resolve()), path.stem)
        comp = src.load()
        return PipelineSource("ir", src.ref, comp.name or path.stem)
    raise UsageError(f"unknown pipeline {text!r}: not a built-in name and not a .py / .yaml file",
                     "See `kindml pipeline list` for the built-in capstones, or pass your pipeline's file.")


# --- what a pipeline declares -------------------------------------------------------------------

_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool, "LIST": list, "STRUCT": dict}


def parameters(func: Any) -> dict[str, dict[str, Any]]:
    """Pipeline parameter → {"type": python type, "default": value or None, "optional": bool}."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = func.pipeline_spec
    out: dict[str, dict[str, Any]] = {}
    params = spec.root.input_definitions.parameters
    for name, p in params.items():
        type_name = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(p.parameter_type)
        default = None
        if p.HasField("default_value"):
            from google.protobuf.json_format import MessageToDict

            default = MessageToDict(p.default_value)
        out[name] = {"type": _TYPES.get(type_name, str), "kfp_type": type_name, "default": default, "optional": p.is_optional or default is not None}
    return out


def coerce_param(name: str, raw: str, info: dict[str, Any]) -> Any:
    """A ``--param k=v`` value as the parameter's type, or a UsageError that names it."""
    import json

    t = info["type"]
    try:
        if t is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if t is int:
            return int(raw)
        if t is float:
            return float(raw)
        if t in (list, dict):
            value = json.loads(raw)
            if not isinstance(value, t):
                raise ValueError(raw)
            return value
        return raw
    except ValueError:
        raise UsageError(f"--param {name}={raw!r} is not a {info['kfp_type'].lower().replace('number_', '')}",
                         f"Give {name} a value of that type.") from None


def tasks(func: Any) -> list[str]:
    """The display names of the pipeline's executing tasks, in a run order (dependencies first, then definition order)."""
    spec = func.pipeline_spec
    components = spec.components
    order: list[str] = []

    def rank(n: str) -> tuple[int, str]:  # ties in run order: the platform's stage order, then by name
        from kindml.pipeline.tasks import STAGES

        label = n.rsplit("-", 1)[0] if n.rsplit("-", 1)[-1].isdigit() else n
        return (STAGES.index(label) if label in STAGES else len(STAGES), n)

    def walk(dag: Any) -> None:
        names = sorted(dag.tasks.keys(), key=rank)
        deps = {n: list(dag.tasks[n].dependent_tasks) for n in names}
        seen: set[str] = set()

        def visit(n: str) -> None:
            if n in seen or n not in deps:
                return
            seen.add(n)
            for d in sorted(deps[n], key=rank):
                visit(d)
            task = dag.tasks[n]
            comp = components.get(task.component_ref.name)
            if comp is not None and comp.WhichOneof("implementation") == "dag":
                walk(comp.dag)
            else:
                label = task.task_info.name or n
                if label not in order:
                    order.append(label)

        for n in names:
            visit(n)

    walk(spec.root.dag)
    return order
