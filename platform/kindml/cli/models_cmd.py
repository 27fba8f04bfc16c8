"""`kindml models list|show`: registered model versions and their lineage."""

from __future__ import annotations

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import RegistryError


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Registered models (MLflow registry) and their lineage.", no_args_is_help=True)

    @models_app.command("list")
    def list_models(name: str = typer.Option(None, help="Model name (default: every registered model)."), output: Output = OUTPUT_OPTION) -> None:
        """List the versions of a model with aliases and key lineage tags."""
        from kindml import registry
        from kindml.runtime import RuntimeEnv

        cfg = state().config()
        ws = state().workspace(cfg)
        if not (ws.mlflow / "mlflow.db").exists() and not cfg.registry.tracking_uri:
            emit([], output, f"no models registered yet (registry: {ws.mlflow})")
            return
        env = RuntimeEnv.local(cfg, ws)
        names = [name] if name else registry.list_models(env.mlflow_tracking_uri)
        versions = [v for n in names for v in registry.list_versions(env.mlflow_tracking_uri, n)]
        rows = [v.to_dict() for v in versions]

        def score(v: registry.ModelRef) -> str:
            metric = v.tags.get("kindml.gate_metric") or "roc_auc"
            return f"{metric}={v.tags.get(f'kindml.{metric}', '-')}"

        lines = [f"{v.name} v{v.version}  {','.join(v.aliases) or '-':<10} {score(v)}  run={v.tags.get('kindml.pipeline_run_id', '-')}" for v in versions]
        emit(rows, output, "\n".join(lines) if lines else "no versions registered")

    @models_app.command("show")
    def show(ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."), output: Output = OUTPUT_OPTION) -> None:
        """Show one version with all lineage tags."""
        from kindml import registry
        from kindml.runtime import RuntimeEnv

        cfg = state().config()
        env = RuntimeEnv.local(cfg, state().workspace(cfg))
        name, version, alias = registry.parse_model_ref(ref, cfg.registry.champion_alias)
        mv = registry.resolve(env.mlflow_tracking_uri, name, version, alias)
        if mv is None:
            raise RegistryError(f"no model version {ref!r}", "See `kindml models list` for what is registered.")
        d = mv.to_dict()
        emit(d, output, "\n".join([f"{mv.name} v{mv.version} aliases={mv.aliases}"] + [f"  {k} = {v}" for k, v in sorted(mv.tags.items())]))

    app.add_typer(models_app, name="models")
