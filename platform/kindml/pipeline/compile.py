"""`kindml pipeline compile`: KFP IR YAML for every pipeline, loaded back to prove it is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kindml.errors import UsageError


def compile_all(out_dir: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    from kfp import compiler, components

    from kindml.pipelines import PIPELINES

    wanted = names or list(PIPELINES)
    unknown = [n for n in wanted if n not in PIPELINES]
    if unknown:
        raise UsageError(f"unknown pipeline(s): {', '.join(unknown)}", f"Known pipelines: {', '.join(PIPELINES)}.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror}", "Pass a writable folder with --out.") from None
    results = []
    for name in wanted:
        fn = PIPELINES[name]()
        path = out_dir / f"{name}.yaml"
        tmp = path.with_name(f".{name}.tmp.yaml")  # kfp insists on a .yaml suffix
        compiler.Compiler().compile(fn, str(tmp))
        loaded = components.load_component_from_file(str(tmp))  # round trip: kfp can load it back
        tmp.replace(path)
        results.append({"pipeline": name, "path": str(path), "name": loaded.name, "inputs": sorted(loaded.component_spec.inputs or {})})
    return results
