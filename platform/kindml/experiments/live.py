"""A running experiment on the embedded platform: its record, the evaluator over the prediction log, acting on a decision.

The predictor routes requests and logs every answer (with ``variant``,
``experiment`` and the assigned entity) in the shared
:class:`~kindml.monitoring.quality.PredictionLog`; delayed labels join there
(``POST /v1/feedback``). :func:`evaluate` reads the outcomes that arrived since
its cursor, turns them into the experiment's :class:`Outcomes` (one per
labelled answer in ``ab``/``canary``; one *pair* per labelled request in
``shadow``), takes a look and saves the record — under a file lock, so the
predictor's evaluator thread, ``kindml experiment status`` and ``kindml
monitor watch`` can all call it and outcomes are counted once.

A final decision is *acted on* by :func:`apply_decision` (the CLI, the
pipeline's monitor stage, ``monitor watch``): the registry moves through
:func:`kindml.approvals.experiment_decided` (which honours
``registry.require_approval``) and an ``experiment_decision`` audit event.

Metric rules (``spec.metric.name``), computed from a logged answer and its outcome:

=====================  ==================================================================
``accuracy``           every labelled answer; success = the predicted label is the outcome
``catch_rate``         binary: labelled positives only; success = predicted positive
``false_alarm_rate``   binary: labelled negatives only; success = predicted positive (``direction: decrease``)
``auc``                binary, ``metric.kind: auc``: the score against the outcome
=====================  ==================================================================

Guardrails (``spec.guardrails[].name``): ``miss`` (bad = the predicted label is not the outcome) and
``false_alarm`` (binary: bad = a labelled negative predicted positive).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import ExperimentSpec, parse_spec
from kindml.experiments.state import Experiment, Outcomes

RECORD = "experiment.json"
LOCK = "experiment.lock"
HISTORY = "experiments"
SCHEMA = 1
RATE_RULES = {"accuracy": None, "catch_rate": "binary", "false_alarm_rate": "binary"}
AUC_RULES = {"auc": "binary"}
GUARDRAILS = {"miss": None, "false_alarm": "binary"}


def record_path(serving_dir: Path) -> Path:
    return serving_dir / RECORD


def check_rules(spec: ExperimentSpec, task: str) -> None:
    """The spec's metric and guardrails must be ones kindml can compute for this task."""
    rules = AUC_RULES if spec.metric.kind == "auc" else RATE_RULES
    need = rules.get(spec.metric.name, "unknown")
    if need == "unknown":
        raise ExperimentError(f"metric.name {spec.metric.name!r} is not a metric kindml computes for kind {spec.metric.kind!r}",
                              f"Use one of: {', '.join(rules)}.")
    if need is not None and need != task:
        raise ExperimentError(f"metric {spec.metric.name!r} needs a {need} model; this one is {task}", "Use metric.name accuracy.")
    for g in spec.guardrails:
        gneed = GUARDRAILS.get(g.name, "unknown")
        if gneed == "unknown":
            raise ExperimentError(f"guardrail {g.name!r} is not one kindml computes", f"Use one of: {', '.join(GUARDRAILS)}.")
        if gneed is not None and gneed != task:
            raise ExperimentError(f"guardrail {g.name!r} needs a {gneed} model; this one is {task}", "Use guardrail miss.")


def _success(rule: str, label: str | None, outcome: str) -> bool | None:
    """The rate metric's success of one answer, or None when the answer does not count for it."""
    if rule == "accuracy":
        return label == outcome
    if rule == "catch_rate":
        return None if outcome != "1" else label == "1"
    if rule == "false_alarm_rate":
        return None if outcome != "0" else label == "1"
    raise ExperimentError(f"unknown metric rule {rule!r}", "See kindml.experiments.live.")


def _bad(guardrail: str, label: str | None, outcome: str) -> bool | None:
    if guardrail == "miss":
        return label != outcome
    return None if outcome != "0" else label == "1"  # false_alarm


@contextlib.contextmanager
def locked(serving_dir: Path) -> Iterator[None]:
    serving_dir.mkdir(parents=True, exist_ok=True)
    with open(serving_dir / LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load(serving_dir: Path) -> dict[str, Any] | None:
    """The workspace's current experiment record (running, decided or applied), or None."""
    path = record_path(serving_dir)
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"cannot read the experiment record {path}: {exc}", "Stop it with `kindml experiment stop --force`.") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        raise ExperimentError(f"{path} is not an experiment record kindml wrote", "Stop it with `kindml experiment stop --force`.")
    return rec


def _save(serving_dir: Path, rec: dict[str, Any]) -> None:
    from kindml.workspace import atomic_write_json

    rec["updated_at"] = time.time()
    atomic_write_json(record_path(serving_dir), rec)


def start(serving_dir: Path, spec: ExperimentSpec | dict[str, Any], *, model: str, task: str, threshold: float,
          champion: dict[str, str], challenger: dict[str, str], entity_field: str, started_by: str,
          run_id: str | None = None) -> dict[str, Any]:
    """Write a new running experiment record (refused while another is running)."""
    spec = spec if isinstance(spec, ExperimentSpec) else parse_spec(spec)
    check_rules(spec, task)
    if champion.get("version") == challenger.get("version"):
        raise ExperimentError(f"champion and challenger are the same version (v{champion.get('version')})",
                              "Register a new version first (`kindml run ...`) or name another --challenger.")
    with locked(serving_dir):
        old = load(serving_dir)
        if old is not None and old.get("status") == "running":
            raise ExperimentError(f"experiment {old['name']!r} is still running",
                                  "See `kindml experiment status`; stop it with `kindml experiment stop` first.")
        if old is not None:
            archive(serving_dir, old)
        exp = Experiment(spec)
        rec = {"schema": SCHEMA, "name": spec.name, "model": model, "task": task, "threshold": float(threshold),
               "entity_field": entity_field, "champion": champion, "challenger": challenger, "status": "running",
               "started_at": time.time(), "started_by": started_by, "run_id": run_id, "cursor": [0.0, ""],
               "state": exp.to_dict(), "applied": None, "design": exp.design.describe()}
        _save(serving_dir, rec)
    return rec


def archive(serving_dir: Path, rec: dict[str, Any]) -> Path:
    from kindml.workspace import atomic_write_json

    dest = serving_dir / HISTORY / f"{rec['name']}-{int(rec.get('started_at', 0))}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dest, rec)
    record_path(serving_dir).unlink(missing_ok=True)
    return dest


def outcomes_of(spec: ExperimentSpec, rows: list[dict[str, Any]]) -> Outcomes:
    """The experiment's counters from labelled log rows (``PredictionLog.labelled_since``)."""
    out = Outcomes(spec)
    rule = spec.metric.name
    if spec.mode == "shadow":
        by_id = {r["id"]: r for r in rows}
        for child in rows:
            parent = by_id.get(child["parent"]) if child["parent"] else None
            if parent is None:
                continue
            entity = parent["entity"] or parent["id"]
            outcome = str(parent["outcome"])
            if spec.metric.kind == "auc":
                out.record_score_pair(outcome == "1", float(parent["score"]), float(child["score"]))
            else:
                a, b = _success(rule, parent["label"], outcome), _success(rule, child["label"], outcome)
                if a is not None and b is not None:
                    out.record_pair(a, b, entity)
            for g in spec.guardrails:
                for arm, row in (("champion", parent), ("challenger", child)):
                    bad = _bad(g.name, row["label"], outcome)
                    if bad is not None:
                        out.record_guardrail(g.name, arm, bad, entity)
        return out
    for r in rows:
        if r["parent"] or r["variant"] not in ("champion", "challenger"):
            continue
        entity = r["entity"] or r["id"]
        outcome = str(r["outcome"])
        if spec.metric.kind == "auc":
            if r["score"] is not None:
                out.record_score(r["variant"], outcome == "1", float(r["score"]))
        else:
            ok = _success(rule, r["label"], outcome)
            if ok is not None:
                out.record(r["variant"], ok, entity)
        for g in spec.guardrails:
            bad = _bad(g.name, r["label"], outcome)
            if bad is not None:
                out.record_guardrail(g.name, r["variant"], bad, entity)
    return out


def evaluate(serving_dir: Path, log: Any, now: float | None = None) -> dict[str, Any] | None:
    """Count the outcomes that arrived since the last evaluation, take a look, save. None when no experiment runs."""
    with locked(serving_dir):
        rec = load(serving_dir)
        if rec is None:
            return None
        if rec["status"] != "running":
            return rec
        exp = Experiment.from_dict(rec["state"])
        rows = log.labelled_since(rec["name"], (float(rec["cursor"][0]), str(rec["cursor"][1])))
        if rows:
            exp.add(outcomes_of(exp.spec, rows))
            rec["cursor"] = [rows[-1]["outcome_ts"], rows[-1]["id"]]
        status = exp.look(now=now)
        rec["state"] = exp.to_dict()
        rec["last_look"] = status.to_dict()
        if status.decision.final:
            rec["status"] = "decided"
            rec["decided_at"] = time.time() if now is None else now
        _save(serving_dir, rec)
        return rec


def report(rec: dict[str, Any]) -> dict[str, Any]:
    """What `experiment status` and the run report show: the design, counts, the path, the decision."""
    exp = Experiment.from_dict(rec["state"])
    rep = exp.report()
    rates = None
    o = exp.outcomes
    if o.kind != "auc" and min(o.per_arm) > 0:
        cur = exp.current() or {}
        rates = cur.get("rate")
    return {"name": rec["name"], "model": rec["model"], "mode": exp.spec.mode, "split": exp.spec.challenger_share,
            "status": rec["status"], "champion": rec["champion"], "challenger": rec["challenger"],
            "metric": exp.spec.metric.name, "rates": rates, "design": rep["design"], "design_text": rep["design_text"],
            "outcomes_per_arm": rep["outcomes_per_arm"], "path": rep["path"], "current": rep["current"],
            "guardrails": rep["guardrails"], "decision": rep["decision"], "applied": rec.get("applied"),
            "started_at": rec["started_at"], "started_by": rec.get("started_by")}


def apply_decision(serving_dir: Path, env: Any, reg: Any) -> dict[str, Any] | None:
    """Act once on a decided experiment in the registry (audited); returns what was done, or None if nothing to do."""
    from kindml import approvals

    with locked(serving_dir):
        rec = load(serving_dir)
        if rec is None or rec["status"] != "decided" or rec.get("applied"):
            return None
        exp = Experiment.from_dict(rec["state"])
        assert exp.decision is not None
        ref = f"{rec['model']}@{rec['challenger']['version']}"
        cur = exp.current() or {}
        details = {"mode": exp.spec.mode, "metric": exp.spec.metric.name, "outcomes_per_arm": list(exp.outcomes.per_arm),
                   "looks": len(exp.looks), "current": {k: cur[k] for k in ("rate", "diff", "z", "ci") if k in cur}}
        outcome = approvals.experiment_decided(env, reg, ref, exp.decision.action, f"experiment {rec['name']}: {exp.decision.reason}",
                                               experiment=rec["name"], details=json.loads(json.dumps(details, default=float)),
                                               run_id=rec.get("run_id"))
        rec["applied"] = {"action": exp.decision.action, "message": outcome.message, "at": time.time()}
        rec["status"] = "applied"
        _save(serving_dir, rec)
        return rec["applied"]


def stop(serving_dir: Path, reason: str, who: str) -> dict[str, Any]:
    """End the experiment without a statistical decision (the champion stays); archived."""
    with locked(serving_dir):
        rec = load(serving_dir)
        if rec is None:
            raise ExperimentError("no experiment to stop", "Start one with `kindml experiment start --challenger NAME@VERSION`.")
        rec["stopped"] = {"by": who, "reason": reason, "at": time.time(), "status_before": rec["status"]}
        if rec["status"] == "running":
            rec["status"] = "stopped"
        path = archive(serving_dir, rec)
    return {**rec, "archived_to": str(path)}
