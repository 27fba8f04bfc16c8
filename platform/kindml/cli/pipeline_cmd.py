"""`kindml pipeline list|compile` and `kindml init NAME`."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit


def register(app: typer.Typer) -> None:
    p_app = typer.Typer(help="The built-in capstones and pipelines: list them, compile them to KFP IR YAML (for a cluster).",
                        no_args_is_help=True)

    @p_app.command("compile")
    def compile_cmd(
        out: Path = typer.Option(Path("build/pipelines"), "--out", help="Folder for <pipeline>.yaml files."),
        name: list[str] = typer.Option(None, "--name", help="Only these pipelines (repeatable): built-in names or .py files. Default: every built-in."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Write the KFP IR YAML of every capstone and platform pipeline (or of your files) and load it back with kfp."""
        from kindml.pipeline.compile import compile_pipelines
        from kindml.pipeline.source import from_path
        from kindml.pipelines import PIPELINES

        pipelines = dict(PIPELINES)
        wanted: list[str] | None = None
        if name:
            wanted = []
            for n in name:
                if n not in pipelines:
                    src = from_path(n)  # a file of yours; anything else is a UsageError naming what is known
                    pipelines[src.name] = src.load
                    n = src.name
                wanted.append(n)
        results = compile_pipelines(out, pipelines, wanted)
        emit(results, output, "\n".join(f"{r['pipeline']}: {r['path']}" for r in results))

    @p_app.command("list")
    def list_cmd(output: Output = OUTPUT_OPTION) -> None:
        """The built-in capstones (run one with `kindml run NAME`) and the platform's other pipelines."""
        from kindml.pipelines import CAPSTONES, DEFAULT_CAPSTONE, PIPELINES

        rows = []
        for name, c in CAPSTONES.items():
            w = c.workload_class()
            rows.append({"name": name, "kind": "capstone", "task": w.task, "model": w.model_name, "title": w.title, "teaches": w.teaches,
                         "default": name == DEFAULT_CAPSTONE, "run": f"kindml run {name}"})
        rows += [{"name": n, "kind": "platform", "run": f"kindml pipeline compile --name {n}"} for n in PIPELINES if n not in CAPSTONES]
        width = max(len(r["name"]) for r in rows)
        lines = [f"{r['name']:<{width}}  {r.get('title') or 'platform pipeline (cluster only)'}" + ("  [kindml capstone]" if r.get("default") else "")
                 for r in rows]
        emit(rows, output, "\n".join(lines))

    app.add_typer(p_app, name="pipeline")

    @app.command("init")
    def init(
        name: str = typer.Argument(..., help="The new workload's name: a folder ./NAME with a pipeline, a workload module and tests."),
        path: Path = typer.Option(None, "--path", help="Create the folder here instead of ./NAME."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Scaffold a workload of your own: a seeded dataset, GE suite, Feast view, tabular model, pipeline and tests that pass as written.

        Then: `kindml run ./NAME/pipeline.py` and `pytest ./NAME` — and make it yours.
        """
        from kindml.scaffold import scaffold

        created = scaffold(name, path)
        emit(created, output, "\n".join([f"created {created['folder']}:"] + [f"  {f}" for f in created["files"]]
                                        + ["next:", *[f"  {c}" for c in created["next"]]]))
