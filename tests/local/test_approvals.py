"""Approvals and the audit log against a real MLflow registry (SQLite in a workspace): the register stage's
promotion decision with ``registry.require_approval`` off and on, ``kindml models approve|reject|alias|
unalias|history`` (as a subprocess, and in-process through the same entry point), bad input, undo when
the audit log cannot be written, the registry's copy of the history, concurrent approvals, the report.

Versions are registered directly (a tiny ONNX file through ``kindml.approvals.register_candidate``, the
function the register stage calls): no pipeline runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kindml import approvals, audit, registry
from kindml.config import KindmlConfig, RegistryConfig
from kindml.errors import RegistryError, ServingError
from kindml.runtime import RuntimeEnv
from kindml.workspace import Workspace

pytestmark = pytest.mark.local


@dataclass
class Reg:
    ws: Workspace
    env: RuntimeEnv
    onnx: Path
    mlflow_run: str

    @property
    def uri(self) -> str:
        return self.env.mlflow_tracking_uri

    def register(self, name: str, promote: bool = True, require_approval: bool = False, run: str = "run") -> registry.ModelRef:
        gate = {"promote": promote, "metric": "roc_auc", "candidate": 0.9 if promote else 0.5, "floor": 0.8,
                "reasons": [f"ROC AUC {'0.9000 clears' if promote else '0.5000 is below'} the floor 0.8000"]}
        ref, decision, warnings = approvals.register_candidate(
            self.env, RegistryConfig(require_approval=require_approval), name=name, mlflow_run_id=self.mlflow_run, pipeline_run_id=run,
            onnx_path=self.onnx, extra_files=[], tags={"kindml.pipeline_run_id": run, "kindml.gate": "promote" if promote else "reject",
                                                       "kindml.gate_reasons": "; ".join(gate["reasons"])},
            description="test version", gate=gate)
        assert warnings == []
        assert decision == approvals.decide(promote, RegistryConfig(require_approval=require_approval))
        return ref

    def aliases(self, name: str) -> dict[str, str]:
        rm = registry.get_registered_model(self.uri, name)
        return {a: str(v) for a, v in (rm.aliases or {}).items()}

    def tags(self, name: str, version: str) -> dict[str, str]:
        ref = registry.resolve(self.uri, name, version)
        assert ref is not None
        return ref.tags

    def history(self, name: str) -> list[dict[str, Any]]:
        h = audit.history(self.env, name)
        assert h.problems == []
        return h.events

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
        return env | {"KINDML_HOME": str(self.ws.root), "KINDML_NO_PROGRESS": "1", **extra}


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reg]:
    import onnx
    from onnx import TensorProto, helper

    ws = Workspace(tmp_path_factory.mktemp("approvals") / "ws").ensure()
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
    path = ws.tmp / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    env = RuntimeEnv.local(KindmlConfig(home=ws.root), ws)
    with registry.mlflow_env(env.mlflow_tracking_uri) as mlflow:
        exp = registry.ensure_experiment(mlflow, "kindml-approvals-test", ws.mlflow_artifacts)
        run = mlflow.MlflowClient().create_run(exp).info.run_id
    yield Reg(ws, env, path, run)


def kindml(reg: Reg, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    """The real binary: ``python -m kindml ...``."""
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, timeout=300,
                          env=reg.cli_env(KINDML_USER=user))


def kindml_inproc(reg: Reg, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
                  user: str = "alice") -> SimpleNamespace:
    """The same entry point (``kindml.cli.main.run``: error printing, exit codes) in this process, to spare MLflow's import per call."""
    from kindml.cli.main import run

    for k in [k for k in os.environ if k.startswith("KINDML_")]:
        monkeypatch.delenv(k)
    for k, v in reg.cli_env(KINDML_USER=user).items():
        if k.startswith("KINDML_"):
            monkeypatch.setenv(k, v)
    capsys.readouterr()
    code = 0
    try:
        run(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def assert_user_error(res: Any, code: int, needle: str) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stderr.startswith("error: ") and "\nhint: " in res.stderr, res.stderr
    assert needle in res.stderr, res.stderr


def champion_moves(events: list[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    return [(e["details"]["from_version"], e["details"]["to_version"]) for e in events
            if e["kind"] == "alias_move" and e["details"]["alias"] == "champion"]


def test_gate_promotes_to_champion_when_approval_is_not_required(reg: Reg) -> None:
    """Today's behaviour, now recorded: each version the gate passes becomes the champion; a rejected one gets no alias."""
    name = "auto-model"
    assert reg.register(name, run="r1").aliases == ["champion"]
    reg.register(name, run="r2")
    v3 = reg.register(name, promote=False, run="r3")
    assert reg.aliases(name) == {"champion": "2"}
    assert v3.aliases == [] and approvals.status_of(reg.tags(name, "3")) == approvals.GATE_REJECTED
    assert approvals.status_of(reg.tags(name, "1")) == approvals.AUTO
    events = reg.history(name)
    assert [(e["kind"], e["version"]) for e in events] == [("gate_decision", "1"), ("alias_move", "1"), ("gate_decision", "2"),
                                                          ("alias_move", "2"), ("gate_decision", "3")]
    assert champion_moves(events) == [(None, "1"), ("1", "2")]
    assert {e["who"] for e in events} == {"gate"} and [e["run_id"] for e in events] == ["r1", "r1", "r2", "r2", "r3"]
    assert events[4]["details"]["decision"] == "reject" and "below the floor" in events[4]["why"]
    assert all(e["stored"] == ["file", "registry"] for e in events)  # the workspace file and the registered model's tags
    rm = registry.get_registered_model(reg.uri, name)
    assert sum(k.startswith(audit.TAG_PREFIX) for k in rm.tags) == 5


def test_require_approval_stops_promotion_until_a_person_approves(reg: Reg, tmp_path: Path) -> None:
    name = "gated-model"
    v1 = reg.register(name, require_approval=True, run="g1")
    assert v1.aliases == ["staging"] and reg.aliases(name) == {"staging": "1"}
    assert approvals.status_of(reg.tags(name, "1")) == approvals.PENDING
    # deploy serves @champion: there is none yet, and its error says what to do
    from kindml.stages import deploy

    (tmp_path / "registered").mkdir()
    (tmp_path / "registered" / "registered.json").write_text(json.dumps(
        {"name": name, "version": "1", "promoted": False, "alias": "staging", "awaiting_approval": True}))
    wl = SimpleNamespace(cfg=KindmlConfig(home=reg.ws.root), name="test")
    with pytest.raises(ServingError, match="waits for approval") as err:
        deploy.run(wl, reg.env, tmp_path / "registered", tmp_path / "deployed")  # type: ignore[arg-type]
    assert f"kindml models approve {name}@1" in err.value.hint

    res = kindml(reg, "models", "approve", f"{name}@1", "--reason", "first model, reviewed the evaluation")
    assert res.returncode == 0, res.stderr
    assert "approved by alice" in res.stdout and "@champion" in res.stdout
    assert reg.aliases(name) == {"champion": "1"}  # staging left: it no longer waits
    tags = reg.tags(name, "1")
    assert (tags["kindml.approval"], tags["kindml.approval_by"], tags["kindml.approval_forced"]) == ("approved", "alice", "false")
    assert tags["kindml.approval_reason"] == "first model, reviewed the evaluation"

    reg.register(name, require_approval=True, run="g2")
    assert reg.aliases(name) == {"champion": "1", "staging": "2"}  # the champion stays until v2 is approved

    res = kindml(reg, "models", "history", name, "-o", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    got = [(e["kind"], e["version"], e["who"], e["details"].get("alias")) for e in doc["events"]]
    assert got == [("gate_decision", "1", "gate", None), ("alias_move", "1", "gate", "staging"),
                   ("approval", "1", "alice", None), ("alias_move", "1", "alice", "champion"), ("alias_move", "1", "alice", "staging"),
                   ("gate_decision", "2", "gate", None), ("alias_move", "2", "gate", "staging")]
    assert doc["events"][0]["details"]["status"] == "pending" and doc["events"][0]["details"]["require_approval"] is True
    assert doc["events"][2]["why"] == "first model, reviewed the evaluation" and doc["events"][2]["run_id"] == "g1"
    assert doc["events"][2]["time"] <= doc["events"][5]["time"] and doc["problems"] == []
    text = kindml(reg, "models", "list", "--name", name)
    assert text.returncode == 0 and "champion" in text.stdout and "pending" in text.stdout and "approved" in text.stdout


def test_bad_input_is_refused_and_changes_nothing(reg: Reg, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    name = "bad-model"
    reg.register(name, run="b1")  # v1: champion (auto)
    reg.register(name, require_approval=True, run="b2")  # v2: pending, @staging
    reg.register(name, promote=False, run="b3")  # v3: the gate rejected it
    log_file = audit.AuditLog.of(reg.env).path
    before, aliases = log_file.read_bytes(), reg.aliases(name)

    # through the real binary
    assert_user_error(kindml(reg, "models", "approve", f"{name}@2"), 2, "needs a reason")
    assert_user_error(kindml(reg, "models", "approve", f"{name}@9", "--reason", "x"), 7, "has no version 9")
    assert_user_error(kindml(reg, "models", "approve", f"{name}@1", "--reason", "again"), 7, "already the champion")
    # the same entry point in-process
    cases = [
        (("approve", f"{name}@2", "--reason", "   "), 2, "needs a reason"),
        (("approve", "no-such-model@1", "--reason", "x"), 7, "no registered model 'no-such-model'"),
        (("approve", name, "--reason", "x"), 2, "exact version"),
        (("approve", f"{name}@champion", "--reason", "x"), 2, "exact version"),
        (("approve", f"{name}@1@2", "--reason", "x"), 7, "not a model reference"),
        (("approve", f"{name}@", "--reason", "x"), 7, "not a model reference"),
        (("approve", f"{name}@3", "--reason", "x"), 7, "rejected by the gate"),
        (("reject", f"{name}@1", "--reason", "x"), 7, "is the champion"),
        (("reject", f"{name}@2"), 2, "needs a reason"),
        (("alias", f"{name}@2", "champion", "--reason", "x"), 2, "moves only through an approval"),
        (("alias", f"{name}@2", "prod", "--reason", "x"), 2, "unknown alias 'prod'"),
        (("alias", f"{name}@2", "staging", "--reason", "x"), 7, "already points at"),
        (("alias", f"{name}@3", "challenger", "--reason", "x"), 7, "was rejected"),
        (("unalias", name, "challenger", "--reason", "x"), 7, "has no @challenger"),
        (("unalias", f"{name}@2", "staging", "--reason", "x"), 2, "takes the model NAME"),
        (("history", "no-such-model"), 7, "no registered model 'no-such-model'"),
        (("history", f"{name}@2"), 7, "not a model name"),
        (("approve", f"{name}@2", "--reason", "x" * 2001), 2, "at most 2000"),
    ]
    for args, code, needle in cases:
        assert_user_error(kindml_inproc(reg, capsys, monkeypatch, "models", *args), code, needle)
    bad_user = kindml_inproc(reg, capsys, monkeypatch, "models", "approve", f"{name}@2", "--reason", "x", user=" ")
    assert_user_error(bad_user, 2, "KINDML_USER")
    assert log_file.read_bytes() == before and reg.aliases(name) == aliases  # nothing written, nothing moved
    assert approvals.status_of(reg.tags(name, "2")) == approvals.PENDING

    # the valid actions next to them
    ok = kindml_inproc(reg, capsys, monkeypatch, "models", "reject", f"{name}@2", "--reason", "overfits the new merchants", user="bob")
    assert ok.returncode == 0, ok.stderr
    assert reg.aliases(name) == {"champion": "1"}  # it left @staging
    assert_user_error(kindml_inproc(reg, capsys, monkeypatch, "models", "reject", f"{name}@2", "--reason", "x"), 7, "already rejected")
    assert_user_error(kindml_inproc(reg, capsys, monkeypatch, "models", "approve", f"{name}@2", "--reason", "x"), 7, "rejected by bob")
    forced = kindml_inproc(reg, capsys, monkeypatch, "models", "approve", f"{name}@3", "--reason", "floor too strict for Q4", "--force",
                           "-o", "json")
    assert forced.returncode == 0, forced.stderr
    out = json.loads(forced.stdout)
    assert out["events"][0]["details"]["forced"] is True and out["events"][0]["details"]["previous_status"] == "gate_rejected"
    assert reg.aliases(name) == {"champion": "3"} and reg.tags(name, "3")["kindml.approval_forced"] == "true"
    rollback = kindml_inproc(reg, capsys, monkeypatch, "models", "approve", f"{name}@1", "--reason", "roll back")
    assert rollback.returncode == 0 and "(was v3)" in rollback.stdout  # an earlier champion may be approved again
    moved = kindml_inproc(reg, capsys, monkeypatch, "models", "alias", f"{name}@1", "challenger", "--reason", "A/B next week")
    assert moved.returncode == 0 and reg.aliases(name) == {"champion": "1", "challenger": "1"}
    cleared = kindml_inproc(reg, capsys, monkeypatch, "models", "unalias", name, "challenger", "--reason", "A/B cancelled")
    assert cleared.returncode == 0 and reg.aliases(name) == {"champion": "1"}
    events = reg.history(name)
    assert champion_moves(events) == [(None, "1"), ("1", "3"), ("3", "1")]
    kinds = [(e["kind"], e["who"]) for e in events if e["via"] == "cli"]
    assert kinds == [("rejection", "bob"), ("alias_move", "bob"), ("approval", "alice"), ("alias_move", "alice"), ("approval", "alice"),
                     ("alias_move", "alice"), ("alias_move", "alice"), ("alias_move", "alice")]


def test_a_failed_audit_write_undoes_the_action(reg: Reg) -> None:
    """The audit line is the proof an action happened: when it cannot be written the registry change is undone."""
    name = "undo-model"
    reg.register(name, run="u1")
    reg.register(name, require_approval=True, run="u2")
    log_file = audit.AuditLog.of(reg.env).path
    aside = log_file.with_suffix(".aside")
    log_file.rename(aside)
    log_file.mkdir()  # a folder where the file should be: every append fails
    try:
        with pytest.raises(RegistryError, match="cannot write the audit log"):
            approvals.approve(reg.env, RegistryConfig(), f"{name}@2", "ship it", who="alice")
        assert reg.aliases(name) == {"champion": "1", "staging": "2"}
        tags = reg.tags(name, "2")
        assert tags["kindml.approval"] == "pending" and "kindml.approval_by" not in tags
        # the register stage: the new version is deleted and the champion put back
        with pytest.raises(RegistryError, match="cannot write the audit log"):
            reg.register(name, run="u3")
        assert [v.version for v in registry.list_versions(reg.uri, name)] == ["1", "2"]
        assert reg.aliases(name) == {"champion": "1", "staging": "2"}
    finally:
        log_file.rmdir()
        aside.rename(log_file)
    assert [e["run_id"] for e in reg.history(name)] == ["u1", "u1", "u2", "u2"]


def test_the_history_lives_in_the_registry_too(reg: Reg, tmp_path: Path) -> None:
    """As on a cluster (the pod's workspace is gone): another workspace on the same registry reads the history from MLflow."""
    name = "pod-model"
    reg.register(name, run="p1")
    reg.register(name, require_approval=True, run="p2")
    approvals.approve(reg.env, RegistryConfig(), f"{name}@2", "reviewed", who="carol")
    env = reg.cli_env(KINDML_HOME=str(tmp_path / "elsewhere"), KINDML_REGISTRY__TRACKING_URI=reg.uri)
    res = subprocess.run([sys.executable, "-m", "kindml", "models", "history", name, "-o", "json"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    events = json.loads(res.stdout)["events"]
    assert [e["id"] for e in events] == [e["id"] for e in reg.history(name)]
    assert all(e["stored"] == ["registry"] for e in events) and events[-2]["who"] == "carol"


def test_concurrent_approvals_keep_one_champion_chain(reg: Reg) -> None:
    """Two people approve different versions at the same moment: the workspace lock orders them; each records the champion it replaced."""
    name = "race-model"
    reg.register(name, run="c1")
    reg.register(name, require_approval=True, run="c2")
    reg.register(name, require_approval=True, run="c3")
    procs = [subprocess.Popen([sys.executable, "-m", "kindml", "models", "approve", f"{name}@{v}", "--reason", f"by {u}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=reg.cli_env(KINDML_USER=u))
             for v, u in (("2", "alice"), ("3", "bob"))]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    moves = champion_moves(reg.history(name))
    assert moves[0] == (None, "1") and len(moves) == 3
    assert all(moves[i][0] == moves[i - 1][1] for i in range(1, len(moves)))  # an unbroken chain: no approval lost its predecessor
    assert reg.aliases(name)["champion"] == moves[-1][1]


def test_report_shows_the_audit_trail_of_the_run(reg: Reg) -> None:
    from kindml.report import build_report

    name = "report-model"
    reg.register(name, run="rep-1")
    ref = reg.register(name, require_approval=True, run="rep-2")
    approvals.approve(reg.env, RegistryConfig(), f"{name}@{ref.version}", "good on the <holdout>", who="dana")
    run_dir = reg.ws.runs / "rep-2"
    registered = {"name": name, "version": ref.version, "promoted": False, "alias": "staging", "awaiting_approval": True, "tags": ref.tags}
    (run_dir / "kfp" / "p" / "register" / "registered").mkdir(parents=True)
    (run_dir / "kfp" / "p" / "register" / "registered" / "registered.json").write_text(json.dumps(registered))
    (run_dir / "summary.json").write_text(json.dumps({"run_id": "rep-2", "status": "succeeded", "stages": {"register": {"status": "succeeded"}},
                                                      "model": {k: registered[k] for k in ("name", "version", "promoted", "alias")}}))
    page = build_report(KindmlConfig(home=reg.ws.root), "rep-2", benchmarks=[]).read_text(encoding="utf-8")
    import re

    audit_html = re.search(r'<section id="audit">(.*?)</section>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "approved by dana" in audit_html and "good on the &lt;holdout&gt;" in audit_html
    # highlighted: every event about the version this run made (gate, @staging, approval, @champion, @staging removed), not v1's
    assert audit_html.count('class="best"') == 5 and audit_html.count("<tr") == 1 + 7
    registry_html = re.search(r'<section id="registry">(.*?)</section>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "approved" in registry_html and "champion" in registry_html


def test_unalias_and_history_text(reg: Reg, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    name = "text-model"
    reg.register(name, run="t1")
    reg.register(name, require_approval=True, run="t2")
    res = kindml_inproc(reg, capsys, monkeypatch, "models", "unalias", name, "staging", "--reason", "not needed")
    assert res.returncode == 0 and "removed (was v2)" in res.stdout
    assert approvals.status_of(reg.tags(name, "2")) == approvals.PENDING  # still approvable
    res = kindml_inproc(reg, capsys, monkeypatch, "models", "history", name)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "gate PROMOTE roc_auc=0.9000 -> auto" in lines[0] and "run=t1" in lines[0]
    assert "@staging v2 -> removed" in res.stdout and "why: not needed" in res.stdout


def test_register_stage_decides_with_the_setting(reg: Reg, tmp_path: Path) -> None:
    """The register stage itself (fabricated small lineage, metrics and gate; no pipeline): require_approval on → @staging and
    "awaiting_approval" in its result (what deploy reads); off → @champion, as before."""
    from kindml.stages import register as stage

    bundle, evaluation = tmp_path / "bundle", tmp_path / "evaluation"
    (bundle / "lineage").mkdir(parents=True)
    evaluation.mkdir()
    (bundle / "model.onnx").write_bytes(reg.onnx.read_bytes())
    lineage = {"ingest": {"content_hash": "ab" * 32, "rows": 10, "window_start": "2026-01-01", "window_end": "2026-02-01"},
               "validation": {"success": True, "summary": "ok"},
               "features": {"project": "p", "feature_service": "fs", "feature_views": ["v"]},
               "train_report": {"mlflow_run_id": reg.mlflow_run, "seed": 1}, "parity": {"max_abs_error": 1e-7}}
    for k, v in lineage.items():
        (bundle / "lineage" / f"{k}.json").write_text(json.dumps(v))
    (evaluation / "metrics.json").write_text(json.dumps({"roc_auc": 0.9}))
    (evaluation / "gate.json").write_text(json.dumps({"promote": True, "metric": "roc_auc", "candidate": 0.9, "reasons": ["clears the floor"]}))
    outcomes = []
    for require in (True, False):
        cfg = KindmlConfig(home=reg.ws.root).with_overrides({"registry.model_name": "stage-model", "registry.require_approval": require})
        wl = SimpleNamespace(cfg=cfg, name="test", task="binary", title="Test", gate_metric="roc_auc")
        outcomes.append(stage.run(wl, "tests.workload", reg.env, f"stage-{require}", evaluation, bundle, tmp_path / f"out-{require}"))  # type: ignore[arg-type]
    pending, auto = outcomes
    assert (pending["version"], pending["alias"], pending["promoted"], pending["approval"], pending["awaiting_approval"]) == \
        ("1", "staging", False, "pending", True)
    assert (auto["version"], auto["alias"], auto["promoted"], auto["approval"], auto["awaiting_approval"]) == ("2", "champion", True, "auto", False)
    assert pending["tags"]["kindml.approval"] == "pending" and pending["audit_warnings"] == []
    assert reg.aliases("stage-model") == {"staging": "1", "champion": "2"}
    assert [(e["kind"], e["run_id"]) for e in reg.history("stage-model")] == [
        ("gate_decision", "stage-True"), ("alias_move", "stage-True"), ("gate_decision", "stage-False"), ("alias_move", "stage-False")]
