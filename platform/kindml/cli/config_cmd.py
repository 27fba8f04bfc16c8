"""`kindml config show|validate`."""

from __future__ import annotations

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state


def register(app: typer.Typer) -> None:
    cfg_app = typer.Typer(help="Show and check the effective configuration.", no_args_is_help=True)

    @cfg_app.command("show")
    def show(output: Output = OUTPUT_OPTION) -> None:
        """Print the effective config (defaults → kindml.yaml → KINDML_* env)."""
        import yaml

        from kindml.config import find_config_file

        cfg = state().config()
        data = cfg.model_dump(mode="json")
        src = find_config_file(state().config_path)
        header = f"# effective kindml config (file: {src or 'none, built-in defaults'})\n"
        emit(data, output, header + yaml.safe_dump(data, sort_keys=False))

    @cfg_app.command("validate")
    def validate(output: Output = OUTPUT_OPTION) -> None:
        """Check the config file and environment; exit non-zero naming the bad field."""
        from kindml.config import find_config_file

        state().config()
        src = find_config_file(state().config_path)
        emit({"valid": True, "file": str(src) if src else None}, output, f"config OK ({src or 'built-in defaults'})")

    app.add_typer(cfg_app, name="config")
