"""Who moves the champion: the register stage's promotion decision, and a person's approval or rejection.

State lives in MLflow: the aliases (``champion`` is served, ``staging`` waits for approval, ``challenger``
is tried next to the champion) and, per version, the tag ``kindml.approval``:

==================  ==========================================================================
``auto``            the gate passed it and promoted it (``registry.require_approval`` off)
``pending``         the gate passed it; it holds ``staging`` and waits for a person
``approved``        a person approved it (``kindml models approve``): it became the champion
``rejected``        a person rejected it (``kindml models reject``)
``gate_rejected``   the gate rejected it; approving it needs ``--force`` (recorded as forced)
==================  ==========================================================================

(``kindml.approval_by``, ``_at``, ``_reason`` and ``_forced`` say who decided, when and why.)
Every alias move and decision is an event of the audit log (:mod:`kindml.audit`).

Order of each action: check everything (bad input fails here and nothing is written) → change MLflow
(each change remembers how to undo itself) → record the audit events (the primary copy must succeed;
if it fails the MLflow changes are undone and the error is raised). So an audit line exists only for an
action that happened, and an action that happened has its line — except when the process dies between
the MLflow change and the append (a window of one fsync'd write); the version's ``kindml.approval_*``
tags then still say who did what.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kindml import audit, registry
from kindml.errors import RegistryError, UsageError

if TYPE_CHECKING:
    from kindml.config import RegistryConfig
    from kindml.runtime import RuntimeEnv

log = logging.getLogger(__name__)

STATUS_TAG = "kindml.approval"
AUTO, PENDING, APPROVED, REJECTED, GATE_REJECTED = "auto", "pending", "approved", "rejected", "gate_rejected"
STATUSES = (AUTO, PENDING, APPROVED, REJECTED, GATE_REJECTED)
GATE = "gate"  # who, for what the register stage decides


def status_of(tags: dict[str, str]) -> str:
    """A version's approval status; versions registered before approvals existed: from the gate's tag."""
    status = tags.get(STATUS_TAG)
    if status in STATUSES:
        return status
    return {"promote": AUTO, "reject": GATE_REJECTED}.get(tags.get("kindml.gate", ""), "unknown")


def approval_info(tags: dict[str, str]) -> dict[str, Any]:
    return {"status": status_of(tags), "by": tags.get("kindml.approval_by"), "at": tags.get("kindml.approval_at"),
            "reason": tags.get("kindml.approval_reason"), "forced": tags.get("kindml.approval_forced") == "true"}


# --------------------------------------------------------------------------- the register stage's decision


@dataclass(frozen=True)
class Promotion:
    """What the register stage does with a new version."""

    gate_promote: bool
    alias: str | None  # the alias the new version gets (None: none moves)
    status: str  # its kindml.approval tag
    champion_moves: bool
    why: str


def decide(gate_promote: bool, reg: RegistryConfig) -> Promotion:
    """The promotion decision: the gate's verdict and ``registry.require_approval``."""
    if not gate_promote:
        return Promotion(False, None, GATE_REJECTED, False, "the gate rejected it: no alias moves")
    if reg.require_approval:
        return Promotion(True, reg.staging_alias, PENDING, False,
                         f"the gate passed it; registry.require_approval is on, so it gets @{reg.staging_alias} and waits for "
                         f"`kindml models approve` before it becomes @{reg.champion_alias}")
    return Promotion(True, reg.champion_alias, AUTO, True, f"the gate passed it and promoted it to @{reg.champion_alias}")


def register_candidate(env: RuntimeEnv, reg: RegistryConfig, *, name: str, mlflow_run_id: str, pipeline_run_id: str, onnx_path: Path,
                       extra_files: list[Path], tags: dict[str, str], description: str, gate: dict[str, Any],
                       model_description: str = "") -> tuple[registry.ModelRef, Promotion, list[str]]:
    """Register a new version as :func:`decide` says, with its audit events (the gate's decision, the alias move).

    Returns the version, the decision and the audit warnings (a secondary copy not written). If the
    audit's primary copy cannot be written, the version is deleted and the alias put back.
    """
    decision = decide(bool(gate.get("promote")), reg)
    log_ = audit.AuditLog.of(env)
    warnings: list[str] = []
    user = audit.current_user()

    def on_registered(ref: registry.ModelRef, previous: str | None) -> None:
        specs: list[dict[str, Any]] = [dict(
            kind="gate_decision", model=ref.name, version=ref.version, who=GATE, via="register", run_id=pipeline_run_id,
            why="; ".join(str(r) for r in gate.get("reasons") or []) or ("promote" if decision.gate_promote else "reject"),
            details={"decision": "promote" if decision.gate_promote else "reject", "metric": gate.get("metric"),
                     "candidate": gate.get("candidate"), "champion": gate.get("champion"), "champion_version": gate.get("champion_version"),
                     "floor": gate.get("floor"), "require_approval": reg.require_approval, "status": decision.status,
                     "outcome": decision.why, "run_by": user, "mlflow_run_id": mlflow_run_id})]
        if decision.alias is not None:
            specs.append(dict(kind="alias_move", model=ref.name, version=ref.version, who=GATE, via="register", run_id=pipeline_run_id,
                              why=decision.why, details={"alias": decision.alias, "from_version": previous, "to_version": ref.version}))
        warnings.extend(log_.record(audit.batch(specs)))

    with log_.lock():
        ref = registry.register_onnx(
            env.mlflow_tracking_uri, run_id=mlflow_run_id, name=name, onnx_path=onnx_path, extra_files=extra_files,
            tags={**tags, STATUS_TAG: decision.status}, description=description, promote=decision.alias is not None,
            alias=decision.alias or reg.champion_alias, model_description=model_description, on_registered=on_registered)
    return ref, decision, warnings


# --------------------------------------------------------------------------- a person's actions


@dataclass
class Outcome:
    action: str
    model: str
    version: str | None
    message: str
    events: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "model": self.model, "version": self.version, "message": self.message,
                "events": self.events, "warnings": self.warnings}


class _Changes:
    """MLflow changes of one action, each with its undo (run in reverse by :meth:`rollback`)."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def tag(self, version: str, key: str, value: str, old: str | None) -> None:
        self.client.set_model_version_tag(self.name, version, key, value)
        if old is None:
            self._undo.append((f"tag {key} of v{version}", lambda: self.client.delete_model_version_tag(self.name, version, key)))
        else:
            self._undo.append((f"tag {key} of v{version}", lambda: self.client.set_model_version_tag(self.name, version, key, old)))

    def alias(self, alias: str, version: str | None, old: str | None) -> None:
        if version is None:
            self.client.delete_registered_model_alias(self.name, alias)
        else:
            self.client.set_registered_model_alias(self.name, alias, version)
        if old is None:
            self._undo.append((f"alias {alias}", lambda: self.client.delete_registered_model_alias(self.name, alias)))
        else:
            self._undo.append((f"alias {alias}", lambda: self.client.set_registered_model_alias(self.name, alias, old)))

    def rollback(self) -> list[str]:
        failed = []
        for what, undo in reversed(self._undo):
            try:
                undo()
            except Exception as exc:
                failed.append(f"{what}: {type(exc).__name__}: {exc}")
        self._undo.clear()
        return failed


@dataclass
class _Target:
    log: audit.AuditLog
    client: Any
    name: str
    version: str | None
    aliases: dict[str, str]  # alias -> version
    tags: dict[str, str]  # of the version
    run_id: str | None  # the pipeline run the version came from

    @property
    def status(self) -> str:
        return status_of(self.tags)

    def holds(self, version: str | None) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if str(v) == version)


def _registry_problem(tracking_uri: str, exc: BaseException) -> RegistryError:
    return RegistryError(f"the model registry {tracking_uri} failed: {type(exc).__name__}: {str(exc)[:300]}",
                         "Check that the registry answers (`kindml models list`); nothing was changed.")


def _target(env: RuntimeEnv, name: str, version: str | None) -> _Target:
    rm = registry.get_registered_model(env.mlflow_tracking_uri, name)
    if rm is None:
        known = registry.list_models(env.mlflow_tracking_uri)
        raise RegistryError(f"no registered model {name!r}",
                            f"Registered models: {', '.join(known) if known else 'none yet'} (see `kindml models list`).")
    with registry.mlflow_env(env.mlflow_tracking_uri):
        client = registry._client(env.mlflow_tracking_uri)
        tags: dict[str, str] = {}
        run_id = None
        if version is not None:
            try:
                mv = client.get_model_version(name, version)
            except Exception as exc:
                if not registry._not_found(exc):
                    raise _registry_problem(env.mlflow_tracking_uri, exc) from None
                versions = [v.version for v in registry.list_versions(env.mlflow_tracking_uri, name)]
                have = f"versions {versions[0]}..{versions[-1]}" if len(versions) > 1 else f"version {versions[0]}" if versions else "no versions"
                raise RegistryError(f"model {name!r} has no version {version}", f"It has {have}; see `kindml models list --name {name}`.") from None
            tags = dict(mv.tags or {})
            run_id = tags.get("kindml.pipeline_run_id")
    return _Target(audit.AuditLog.of(env), client, name, version, {a: str(v) for a, v in (rm.aliases or {}).items()}, tags, run_id)


def parse_version_ref(text: str) -> tuple[str, str]:
    """``NAME@VERSION`` (a number: approvals name the exact version, never an alias that may move meanwhile)."""
    name, version, alias = registry.parse_model_ref(text or "", default_alias="")
    if version is None:
        what = f"@{alias}" if alias else "no version"
        raise UsageError(f"{text!r} names {what}: approvals and rejections take an exact version",
                         "Write NAME@VERSION, e.g. my-model@3 (see `kindml models list`).")
    return name, version


def _apply(t: _Target, change: Callable[[_Changes], None], events: list[dict[str, Any]], action: str, message: str) -> Outcome:
    """Make the MLflow changes, then record ``events`` (built and validated before anything changed)."""
    changes = _Changes(t.client, t.name)
    with registry.mlflow_env(t.log.tracking_uri):
        try:
            change(changes)
        except Exception as exc:
            failed = changes.rollback()
            err = _registry_problem(t.log.tracking_uri, exc)
            if failed:
                err.hint = f"Some changes could not be undone ({'; '.join(failed)}); check `kindml models show {t.name}@{t.version}`."
            raise err from None
        try:
            warnings = t.log.record(events)
        except RegistryError as exc:
            failed = changes.rollback()
            if failed:
                exc.hint = f"The registry changes could not all be undone ({'; '.join(failed)}); fix the audit log, then check `kindml models show`."
            raise
    return Outcome(action, t.name, t.version, message, [{**e, "registry": t.log.registry} for e in events], warnings)


def approve(env: RuntimeEnv, reg: RegistryConfig, ref: str, reason: str | None, *, force: bool = False, who: str | None = None) -> Outcome:
    """Make ``NAME@VERSION`` the champion because a person says so. Refused: the current champion (approving twice),
    a version the gate or a person rejected (unless ``force``, recorded as forced)."""
    name, version = parse_version_ref(ref)
    why = audit.check_reason(reason, "an approval")
    who = who or audit.current_user()
    log_ = audit.AuditLog.of(env)
    with log_.lock():
        t = _target(env, name, version)
        champion = t.aliases.get(reg.champion_alias)
        info = approval_info(t.tags)
        if champion == version:
            by = f" (approved by {info['by']} at {info['at']})" if info["status"] == APPROVED else f" ({info['status']})"
            raise RegistryError(f"{name} v{version} is already the champion{by}",
                                f"Nothing to do. `kindml models history {name}` shows who put it there.")
        if info["status"] in (GATE_REJECTED, REJECTED) and not force:
            who_said = "the gate" if info["status"] == GATE_REJECTED else f"{info['by']} ({info['reason']})"
            detail = t.tags.get("kindml.gate_reasons", "") if info["status"] == GATE_REJECTED else ""
            raise RegistryError(f"{name} v{version} was rejected by {who_said}" + (f": {detail}" if detail else ""),
                                "Approve it anyway with --force (recorded as a forced approval), or approve a version the gate passed.")
        forced = info["status"] in (GATE_REJECTED, REJECTED)
        staging = t.aliases.get(reg.staging_alias)
        specs: list[dict[str, Any]] = [
            dict(kind="approval", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                 details={"decision": "approved", "forced": forced, "previous_status": info["status"], "gate": t.tags.get("kindml.gate"),
                          "gate_reasons": t.tags.get("kindml.gate_reasons"), "champion_before": champion}),
            dict(kind="alias_move", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                 details={"alias": reg.champion_alias, "from_version": champion, "to_version": version})]
        if staging == version:
            specs.append(dict(kind="alias_move", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                              details={"alias": reg.staging_alias, "from_version": version, "to_version": None}))
        events = audit.batch(specs)
        at = events[0]["time"]

        def change(c: _Changes) -> None:
            for key, value in ((STATUS_TAG, APPROVED), ("kindml.approval_by", who), ("kindml.approval_at", at), ("kindml.approval_reason", why),
                               ("kindml.approval_forced", str(forced).lower())):
                c.tag(version, key, value, t.tags.get(key))
            c.alias(reg.champion_alias, version, champion)
            if staging == version:
                c.alias(reg.staging_alias, None, staging)

        was = f" (was v{champion})" if champion else ""
        msg = f"{name} v{version} approved by {who}{' (forced)' if forced else ''}: it is @{reg.champion_alias} now{was}"
        return _apply(t, change, events, "approve", msg)


def reject(env: RuntimeEnv, reg: RegistryConfig, ref: str, reason: str | None, *, who: str | None = None) -> Outcome:
    """Record that a person rejects ``NAME@VERSION``. Refused: the champion (approve its replacement first), a version
    already rejected by a person. The version leaves ``staging`` if it held it (it no longer waits); other aliases stay."""
    name, version = parse_version_ref(ref)
    why = audit.check_reason(reason, "a rejection")
    who = who or audit.current_user()
    log_ = audit.AuditLog.of(env)
    with log_.lock():
        t = _target(env, name, version)
        info = approval_info(t.tags)
        if t.aliases.get(reg.champion_alias) == version:
            raise RegistryError(f"{name} v{version} is the champion (@{reg.champion_alias}); rejecting it would leave it serving",
                                f"Approve the version that should replace it first (`kindml models approve {name}@VERSION --reason ...`), then reject this one.")
        if info["status"] == REJECTED:
            raise RegistryError(f"{name} v{version} is already rejected (by {info['by']} at {info['at']}: {info['reason']})",
                                f"Nothing to do. `kindml models history {name}` shows the decisions.")
        staging = t.aliases.get(reg.staging_alias)
        specs: list[dict[str, Any]] = [
            dict(kind="rejection", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                 details={"decision": "rejected", "previous_status": info["status"], "gate": t.tags.get("kindml.gate"),
                          "aliases": t.holds(version)})]
        if staging == version:
            specs.append(dict(kind="alias_move", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                              details={"alias": reg.staging_alias, "from_version": version, "to_version": None}))
        events = audit.batch(specs)
        at = events[0]["time"]

        def change(c: _Changes) -> None:
            for key, value in ((STATUS_TAG, REJECTED), ("kindml.approval_by", who), ("kindml.approval_at", at), ("kindml.approval_reason", why),
                               ("kindml.approval_forced", "false")):
                c.tag(version, key, value, t.tags.get(key))
            if staging == version:
                c.alias(reg.staging_alias, None, staging)

        return _apply(t, change, events, "reject", f"{name} v{version} rejected by {who}; the champion is unchanged")


def _movable(reg: RegistryConfig, alias: str) -> None:
    if alias == reg.champion_alias:
        raise UsageError(f"@{alias} moves only through an approval",
                         "Use `kindml models approve NAME@VERSION --reason ...` (it checks the gate and records the previous champion).")
    if alias not in (reg.staging_alias, reg.challenger_alias):
        raise UsageError(f"unknown alias {alias!r}",
                         f"kindml uses @{reg.staging_alias}, @{reg.challenger_alias} (set here) and @{reg.champion_alias} (set by approve).")


def set_alias(env: RuntimeEnv, reg: RegistryConfig, ref: str, alias: str, reason: str | None, *, force: bool = False,
              who: str | None = None) -> Outcome:
    """Point ``alias`` (staging or challenger) at ``NAME@VERSION``; a rejected version needs ``force``."""
    name, version = parse_version_ref(ref)
    _movable(reg, alias)
    why = audit.check_reason(reason, "an alias move")
    who = who or audit.current_user()
    log_ = audit.AuditLog.of(env)
    with log_.lock():
        t = _target(env, name, version)
        old = t.aliases.get(alias)
        if old == version:
            raise RegistryError(f"@{alias} already points at {name} v{version}", f"Nothing to do; see `kindml models list --name {name}`.")
        status = t.status
        if status in (REJECTED, GATE_REJECTED) and not force:
            raise RegistryError(f"{name} v{version} was rejected ({status})", "Pass --force to give it the alias anyway (recorded as forced).")
        specs = [dict(kind="alias_move", model=name, version=version, who=who, via="cli", run_id=t.run_id, why=why,
                      details={"alias": alias, "from_version": old, "to_version": version, "forced": status in (REJECTED, GATE_REJECTED)})]
        return _apply(t, lambda c: c.alias(alias, version, old), audit.batch(specs), "alias", f"@{alias} of {name}: v{old or '-'} -> v{version}")


def clear_alias(env: RuntimeEnv, reg: RegistryConfig, name: str, alias: str, reason: str | None, *, who: str | None = None) -> Outcome:
    """Remove ``alias`` (staging or challenger) from ``name``."""
    if "@" in (name or ""):
        raise UsageError(f"{name!r}: unalias takes the model NAME and the alias", f"Write e.g. `kindml models unalias {name.split('@')[0]} {alias}`.")
    _movable(reg, alias)
    why = audit.check_reason(reason, "an alias removal")
    who = who or audit.current_user()
    log_ = audit.AuditLog.of(env)
    with log_.lock():
        t = _target(env, name, None)
        old = t.aliases.get(alias)
        if old is None:
            raise RegistryError(f"{name} has no @{alias}", f"Nothing to do; see `kindml models list --name {name}`.")
        with registry.mlflow_env(env.mlflow_tracking_uri), contextlib.suppress(Exception):
            t.run_id = (t.client.get_model_version(name, old).tags or {}).get("kindml.pipeline_run_id")
        specs = [dict(kind="alias_move", model=name, version=old, who=who, via="cli", run_id=t.run_id, why=why,
                      details={"alias": alias, "from_version": old, "to_version": None})]
        t.version = old
        return _apply(t, lambda c: c.alias(alias, None, old), audit.batch(specs), "unalias", f"@{alias} of {name} removed (was v{old})")


# --------------------------------------------------------------------------- an experiment's decision

EXPERIMENT = "experiment"  # who, for what an experiment's sequential test decides


def experiment_decided(env: RuntimeEnv, reg: RegistryConfig, ref: str, action: str, why: str, *, experiment: str,
                       details: dict[str, Any] | None = None, run_id: str | None = None) -> Outcome:
    """Act on an experiment's final decision about the challenger ``NAME@VERSION``, recorded as ``experiment_decision``.

    ``promote``: the challenger becomes the champion — unless ``registry.require_approval`` is on, then it gets
    ``staging`` and waits for a person (the same rule as the register stage). ``rollback`` and
    ``stop_for_futility``: the champion stays. Either way the ``challenger`` alias is released.
    """
    if action not in ("promote", "rollback", "stop_for_futility"):
        raise UsageError(f"{action!r} is not a final experiment decision", "Act only on promote, rollback or stop_for_futility.")
    name, version = parse_version_ref(ref)
    why = audit.check_reason(why, "an experiment decision")
    log_ = audit.AuditLog.of(env)
    with log_.lock():
        t = _target(env, name, version)
        champion = t.aliases.get(reg.champion_alias)
        challenger = t.aliases.get(reg.challenger_alias)
        staging = t.aliases.get(reg.staging_alias)
        promote = action == "promote"
        if promote and champion == version:
            raise RegistryError(f"{name} v{version} is already the champion", f"Nothing to do; `kindml models history {name}` shows how.")
        waits = promote and reg.require_approval
        outcome = ("promoted: it is @" + reg.champion_alias if promote and not waits
                   else f"promote, but registry.require_approval is on: it gets @{reg.staging_alias} and waits for approval" if waits
                   else f"{action}: the champion v{champion or '-'} stays")
        specs: list[dict[str, Any]] = [dict(
            kind="experiment_decision", model=name, version=version, who=EXPERIMENT, via="experiment", run_id=run_id or t.run_id, why=why,
            details={"experiment": experiment, "decision": action, "champion_before": champion, "outcome": outcome, **(details or {})})]
        if promote and not waits:
            specs.append(dict(kind="alias_move", model=name, version=version, who=EXPERIMENT, via="experiment", run_id=run_id or t.run_id,
                              why=why, details={"alias": reg.champion_alias, "from_version": champion, "to_version": version}))
        if waits and staging != version:
            specs.append(dict(kind="alias_move", model=name, version=version, who=EXPERIMENT, via="experiment", run_id=run_id or t.run_id,
                              why=why, details={"alias": reg.staging_alias, "from_version": staging, "to_version": version}))
        if challenger == version:
            specs.append(dict(kind="alias_move", model=name, version=version, who=EXPERIMENT, via="experiment", run_id=run_id or t.run_id,
                              why=why, details={"alias": reg.challenger_alias, "from_version": version, "to_version": None}))

        def change(c: _Changes) -> None:
            if promote and not waits:
                c.tag(version, STATUS_TAG, AUTO if t.status in (AUTO, PENDING) else t.status, t.tags.get(STATUS_TAG))
                c.alias(reg.champion_alias, version, champion)
            if waits and staging != version:
                c.tag(version, STATUS_TAG, PENDING, t.tags.get(STATUS_TAG))
                c.alias(reg.staging_alias, version, staging)
            if challenger == version:
                c.alias(reg.challenger_alias, None, challenger)

        return _apply(t, change, audit.batch(specs), f"experiment_{action}", f"experiment {experiment}: {name} v{version} {outcome}")
