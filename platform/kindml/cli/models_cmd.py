"""`kindml models list|show|approve|reject|alias|unalias|history`: registered versions, their lineage, who may
move the champion, and the audit log of every decision (see docs/governance.md)."""

from __future__ import annotations

from typing import Any

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, state
from kindml.errors import RegistryError

REASON_OPTION = typer.Option(None, "--reason", "-r", help="Why (required; kept in the audit log).")


def _registry(must_exist: bool = True) -> tuple[Any, Any]:
    """The config and the runtime env of the registry; a :class:`RegistryError` when there is no store yet (never creates one)."""
    from kindml.runtime import RuntimeEnv

    cfg = state().config()
    ws = state().workspace(cfg)
    if must_exist and not cfg.registry.tracking_uri and not (ws.mlflow / "mlflow.db").exists():
        raise RegistryError(f"no models registered yet (registry: {ws.mlflow})",
                            "Run a pipeline first (`kindml run NAME`), or set registry.tracking_uri to your MLflow server.")
    return cfg, RuntimeEnv.local(cfg, ws)


def _outcome(out: Any, output: Output) -> None:
    import sys

    for w in out.warnings:
        sys.stderr.write(f"warning: {w}\n")
    emit(out.to_dict(), output, out.message)


def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Registered models (MLflow registry): lineage, approvals, aliases and the audit log.", no_args_is_help=True)

    @models_app.command("list")
    def list_models(name: str = typer.Option(None, help="Model name (default: every registered model)."), output: Output = OUTPUT_OPTION) -> None:
        """List the versions of a model with aliases, approval status and key lineage tags."""
        from kindml import approvals, registry

        cfg = state().config()
        ws = state().workspace(cfg)
        if not (ws.mlflow / "mlflow.db").exists() and not cfg.registry.tracking_uri:
            emit([], output, f"no models registered yet (registry: {ws.mlflow})")
            return
        _, env = _registry()
        if name and registry.get_registered_model(env.mlflow_tracking_uri, name) is None:
            known = registry.list_models(env.mlflow_tracking_uri)
            raise RegistryError(f"no registered model {name!r}", f"Registered models: {', '.join(known) if known else 'none yet'}.")
        names = [name] if name else registry.list_models(env.mlflow_tracking_uri)
        versions = [v for n in names for v in registry.list_versions(env.mlflow_tracking_uri, n)]
        rows = [v.to_dict() | {"approval": approvals.approval_info(v.tags)} for v in versions]

        def score(v: registry.ModelRef) -> str:
            metric = v.tags.get("kindml.gate_metric") or "roc_auc"
            return f"{metric}={v.tags.get(f'kindml.{metric}', '-')}"

        lines = [f"{v.name} v{v.version}  {','.join(v.aliases) or '-':<18} {approvals.status_of(v.tags):<13} {score(v)}  "
                 f"run={v.tags.get('kindml.pipeline_run_id', '-')}" for v in versions]
        emit(rows, output, "\n".join(lines) if lines else "no versions registered")

    @models_app.command("show")
    def show(ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS."), output: Output = OUTPUT_OPTION) -> None:
        """Show one version: aliases, approval (who, when, why) and all lineage tags."""
        from kindml import approvals, registry

        cfg, env = _registry()
        name, version, alias = registry.parse_model_ref(ref, cfg.registry.champion_alias)
        mv = registry.resolve(env.mlflow_tracking_uri, name, version, alias)
        if mv is None:
            raise RegistryError(f"no model version {ref!r}", "See `kindml models list` for what is registered.")
        rm = registry.get_registered_model(env.mlflow_tracking_uri, name)
        mv.aliases = sorted(a for a, v in ((rm.aliases if rm else None) or {}).items() if str(v) == mv.version)
        info = approvals.approval_info(mv.tags)
        d = mv.to_dict() | {"approval": info}
        head = [f"{mv.name} v{mv.version} aliases={mv.aliases} approval={info['status']}"]
        if info["by"]:
            head.append(f"  decided by {info['by']} at {info['at']}{' (forced)' if info['forced'] else ''}: {info['reason']}")
        emit(d, output, "\n".join(head + [f"  {k} = {v}" for k, v in sorted(mv.tags.items())]))

    @models_app.command("approve")
    def approve(
        ref: str = typer.Argument(..., help="NAME@VERSION (an exact version)."),
        reason: str = REASON_OPTION,
        force: bool = typer.Option(False, "--force", help="Approve a version the gate (or a person) rejected; recorded as forced."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Approve a version: it becomes the champion (deploy serves it); the previous champion is recorded.

        Who: $KINDML_USER, else your OS user. Refused for the current champion, and (without --force) for a rejected version.
        """
        from kindml import approvals

        cfg, env = _registry()
        _outcome(approvals.approve(env, cfg.registry, ref, reason, force=force), output)

    @models_app.command("reject")
    def reject(ref: str = typer.Argument(..., help="NAME@VERSION (an exact version)."), reason: str = REASON_OPTION,
               output: Output = OUTPUT_OPTION) -> None:
        """Reject a version: recorded, the champion is unchanged; the version leaves @staging if it held it.

        Refused for the champion: approve its replacement first.
        """
        from kindml import approvals

        cfg, env = _registry()
        _outcome(approvals.reject(env, cfg.registry, ref, reason), output)

    @models_app.command("alias")
    def alias(
        ref: str = typer.Argument(..., help="NAME@VERSION (an exact version)."),
        alias_name: str = typer.Argument(..., metavar="ALIAS", help="staging or challenger (the champion moves only by approve)."),
        reason: str = REASON_OPTION,
        force: bool = typer.Option(False, "--force", help="Give the alias to a rejected version; recorded as forced."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Point @staging or @challenger at a version (recorded in the audit log)."""
        from kindml import approvals

        cfg, env = _registry()
        _outcome(approvals.set_alias(env, cfg.registry, ref, alias_name, reason, force=force), output)

    @models_app.command("unalias")
    def unalias(
        name: str = typer.Argument(..., help="Model NAME."),
        alias_name: str = typer.Argument(..., metavar="ALIAS", help="staging or challenger."),
        reason: str = REASON_OPTION,
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Remove @staging or @challenger from a model (recorded in the audit log)."""
        from kindml import approvals

        cfg, env = _registry()
        _outcome(approvals.clear_alias(env, cfg.registry, name, alias_name, reason), output)

    @models_app.command("history")
    def history(name: str = typer.Argument(..., help="Model NAME."), output: Output = OUTPUT_OPTION) -> None:
        """The audit log of a model, oldest first: gate decisions, alias moves, approvals, rejections, experiment
        decisions — who, when, why and from which run."""
        import sys

        from kindml import audit, registry

        name = name.strip()
        if "@" in name or not registry.parse_model_ref(name)[0] == name:
            raise RegistryError(f"{name!r} is not a model name", f"history takes the NAME only, e.g. `kindml models history {name.split('@')[0]}`.")
        _, env = _registry(must_exist=False)
        h = audit.history(env, name)
        for p in h.problems:
            sys.stderr.write(f"warning: {p}\n")
        if not h.events and not h.in_registry:
            known = registry.list_models(env.mlflow_tracking_uri) if registry.store_exists(env.mlflow_tracking_uri) else []
            raise RegistryError(f"no registered model {name!r} and no audit events of it",
                                f"Registered models: {', '.join(known) if known else 'none yet'} (see `kindml models list`).")
        lines = []
        for e in h.events:
            v = f"v{e['version']}" if e.get("version") else "-"
            lines.append(f"{e['time'][:19].replace('T', ' ')}Z  {v:<5} {e['kind']:<19} {e['who']:<12} {audit.describe(e)}"
                         f"  run={e.get('run_id') or '-'}\n{'':22}why: {e['why']}")
        if not h.in_registry:
            lines.append(f"(model {name} is no longer in the registry; these events come from {audit.AuditLog.of(env).path})")
        emit(h.to_dict(), output, "\n".join(lines) if lines else f"no audit events of {name} yet")

    app.add_typer(models_app, name="models")
