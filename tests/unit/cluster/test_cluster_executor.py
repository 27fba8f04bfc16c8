"""The plan executor, with `kind`, `kubectl` and `docker` mocked at the
subprocess boundary (kindml.cluster.proc._spawn): commands run in plan order,
a failed step stops the run with its hint, and the next run resumes at that
step; an interruption resumes the same way; `kind create` is skipped when the
cluster exists. No cluster is started or faked beyond recorded calls."""

from __future__ import annotations

import json

import pytest

from kindml.cluster import lifecycle
from kindml.cluster.executor import Executor
from kindml.errors import ClusterError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def plan(repo_root):
    return lifecycle.up_plan(False, repo_root)


def _executor(plan, tmp_path, **kw):
    return Executor(plan, tmp_path / "cluster", inputs={"secrets": lambda: "apiVersion: v1\nkind: Secret\n"}, doctor=kw.pop("doctor", lambda: None), **kw)


def test_runs_every_step_in_order(plan, tmp_path, fake_bin):
    """A full run issues exactly the planned commands, in order, and records completion."""
    res = _executor(plan, tmp_path).run()
    planned = [" ".join(s.argv) for st in plan.stages for s in st.steps if s.action == "command"]
    ran = [c for c in fake_bin.commands() if c != "kind get clusters"]
    assert ran == planned
    state = json.loads((tmp_path / "cluster" / "up-state.json").read_text())
    assert state["status"] == "done" and state["completed"] == plan.step_ids()
    assert res["resumed"] is False
    secrets_call = next(c for c in fake_bin.calls if c.argv[-2:] == ["-f", "-"])
    assert secrets_call.input.startswith("apiVersion: v1")


def test_failure_stops_with_hint_then_resumes_at_the_failed_step(plan, tmp_path, fake_bin):
    """A failing step raises ClusterError with a hint; the next run skips the completed steps."""
    fake_bin.on(lambda a: "kserve.yaml" in " ".join(a), rc=1, stderr="error: no matches for kind Certificate")
    with pytest.raises(ClusterError) as exc:
        _executor(plan, tmp_path).run()
    assert "kserve:install:0" in exc.value.message and "resume" in exc.value.hint
    state = json.loads((tmp_path / "cluster" / "up-state.json").read_text())
    assert state["status"] == "failed" and state["failed"]["step"] == "kserve:install:0"
    before = len(fake_bin.calls)

    fake_bin.rules.clear()
    res = _executor(plan, tmp_path).run()
    assert res["resumed"] is True
    rerun = [" ".join(c.argv) for c in fake_bin.calls[before:]]
    assert "kind create cluster" not in " ".join(rerun)
    assert "kserve.yaml" in rerun[0]
    skipped = [s["step"] for s in res["steps"] if s["result"].startswith("already completed")]
    assert "cert-manager:available" in skipped and "cluster:create" in skipped


def test_interruption_resumes(plan, tmp_path, fake_bin, monkeypatch):
    """Ctrl-C during a step leaves the state 'interrupted'; the next run resumes at that step."""
    from kindml.cluster import proc

    inner = proc._spawn

    def interrupting(full, **kw):
        if "platform-agnostic" in " ".join(full):
            raise KeyboardInterrupt
        return inner(full, **kw)

    monkeypatch.setattr(proc, "_spawn", interrupting)
    with pytest.raises(KeyboardInterrupt):
        _executor(plan, tmp_path).run()
    state = json.loads((tmp_path / "cluster" / "up-state.json").read_text())
    assert state["status"] == "interrupted"
    assert "kubeflow-pipelines:install:0" not in state["completed"]
    monkeypatch.setattr(proc, "_spawn", inner)
    n = len(fake_bin.calls)
    res = _executor(plan, tmp_path).run()
    assert res["resumed"] is True
    assert "platform-agnostic" in " ".join(fake_bin.calls[n].argv)


def test_existing_cluster_is_not_recreated(plan, tmp_path, fake_bin):
    """Idempotent: with the cluster present, `kind create cluster` is skipped."""
    fake_bin.on("kind get clusters", stdout="other\nkindml\n")
    res = _executor(plan, tmp_path).run()
    assert not any(c.startswith("kind create cluster") for c in fake_bin.commands())
    assert next(s for s in res["steps"] if s["step"] == "cluster:create")["result"].startswith("skipped")


def test_finished_plan_starts_over(plan, tmp_path, fake_bin):
    """After a finished run, `up` re-checks everything from the top (safe: every step is idempotent)."""
    _executor(plan, tmp_path).run()
    res = _executor(plan, tmp_path).run()
    assert res["resumed"] is False


def test_preflight_failure_runs_nothing(plan, tmp_path, fake_bin):
    from kindml.errors import PrerequisiteMissing

    def bad_doctor():
        raise PrerequisiteMissing("pre-flight checks failed: docker", "Start Docker.")

    with pytest.raises(PrerequisiteMissing):
        _executor(plan, tmp_path, doctor=bad_doctor).run()
    assert fake_bin.calls == []


def test_down_is_idempotent(tmp_path, fake_bin):
    """`down` deletes an existing cluster and does nothing when there is none."""
    plan = lifecycle.down_plan()
    fake_bin.on("kind get clusters", stdout="kindml\n")
    _executor(plan, tmp_path).run()
    assert "kind delete cluster --name kindml" in fake_bin.commands()
    fake_bin.calls.clear()
    fake_bin.on("kind get clusters", stdout="")
    _executor(plan, tmp_path).run()
    assert fake_bin.commands() == ["kind get clusters"]


def test_missing_binary_is_a_prerequisite_error(plan, tmp_path, fake_bin):
    from kindml.errors import PrerequisiteMissing

    fake_bin.installed = {"kubectl", "docker"}
    with pytest.raises(PrerequisiteMissing) as exc:
        _executor(plan, tmp_path).run()
    assert "kind" in exc.value.message and "kind" in exc.value.hint
