"""`kindml pipeline compile`: KFP IR YAML of pipelines, loaded back to prove it is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kindml.errors import UsageError


def compile_pipelines(out_dir: Path, pipelines: dict[str, Callable[[], Any]], names: list[str] | None = None) -> list[dict[str, Any]]:
    """Compile ``pipelines`` (name → factory of the pipeline function; only ``names`` if given) into ``out_dir/<name>.yaml``."""
    from kfp import compiler, components

    wanted = names or list(pipelines)
    unknown = [n for n in wanted if n not in pipelines]
    if unknown:
        raise UsageError(f"unknown pipeline(s): {', '.join(unknown)}", f"Known pipelines: {', '.join(pipelines)}.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror}", "Pass a writable folder with --out.") from None
    results = []
    for name in wanted:
        fn = pipelines[name]()
        path = out_dir / f"{name}.yaml"
        tmp = path.with_name(f".{name}.tmp.yaml")  # kfp insists on a .yaml suffix
        compiler.Compiler().compile(fn, str(tmp))
        loaded = components.load_component_from_file(str(tmp))  # round trip: kfp can load it back
        tmp.replace(path)
        results.append({"pipeline": name, "path": str(path), "name": loaded.name, "inputs": sorted(loaded.component_spec.inputs or {})})
    return results
