"""`kindml pipeline compile|list`."""

from __future__ import annotations

from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit


def register(app: typer.Typer) -> None:
    p_app = typer.Typer(help="Compile kindml's KFP pipelines to IR YAML (for a KFP cluster).", no_args_is_help=True)

    @p_app.command("compile")
    def compile_cmd(
        out: Path = typer.Option(Path("build/pipelines"), "--out", help="Folder for <pipeline>.yaml files."),
        name: list[str] = typer.Option(None, "--name", help="Only these pipelines (repeatable). Default: all."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Write the KFP IR YAML of every pipeline and load it back with kfp to prove it is valid."""
        from kindml.pipeline.compile import compile_all

        results = compile_all(out, name or None)
        emit(results, output, "\n".join(f"{r['pipeline']}: {r['path']}" for r in results))

    @p_app.command("list")
    def list_cmd(output: Output = OUTPUT_OPTION) -> None:
        """List the pipelines kindml ships."""
        from kindml.pipelines import PIPELINES

        emit(sorted(PIPELINES), output, "\n".join(sorted(PIPELINES)))

    app.add_typer(p_app, name="pipeline")
