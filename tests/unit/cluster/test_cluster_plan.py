"""`kindml up --dry-run` prints the full ordered plan without running anything
(here: no docker, no kind); `down --dry-run` mirrors it."""

from __future__ import annotations

import json

import pytest

from kindml.cli.main import run
from kindml.cluster import lifecycle

pytestmark = pytest.mark.unit

EXPECTED_STAGES = [
    "preflight",
    "cluster",
    "images",
    "crds",
    "crds-established",
    "cert-manager",
    "controllers",
    "controllers-ready",
    "platform",
    "platform-ready",
]


def _cli_json(capsys, *argv: str) -> dict:
    with pytest.raises(SystemExit) as exc:
        run(list(argv))
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    assert "Traceback" not in out.err
    return json.loads(out.out)


def test_up_dry_run_json_has_ordered_stages_and_requests(capsys, tmp_path, monkeypatch):
    """It prints stages in dependency order, each with its commands and objects,
    plus request totals. The subprocess boundary lets only the real, offline
    `kubectl kustomize` through: kind and docker are absent, as on this machine."""
    import subprocess

    from kindml.cluster import proc

    monkeypatch.setenv("KINDML_HOME", str(tmp_path / "ws"))
    real_which = proc.which

    def spawn(full, **kw):
        if full[1:2] == ["kustomize"]:
            return subprocess.run(full, **kw)
        raise AssertionError(f"dry-run ran {full}")

    monkeypatch.setattr(proc, "_spawn", spawn)
    monkeypatch.setattr(proc, "which", lambda name: real_which(name) if name == "kubectl" else None)
    plan = _cli_json(capsys, "up", "--dry-run", "--output", "json")
    assert [s["name"] for s in plan["stages"]] == EXPECTED_STAGES
    assert set(plan["requests"]) >= {"cpu_cores", "memory_gib"}
    for st in plan["stages"]:
        assert st["steps"] and all(s["command"] for s in st["steps"])
    cmds = [s["command"] for st in plan["stages"] for s in st["steps"]]
    assert all("--context kind-kindml" in c for c in cmds if c.startswith("kubectl")), "every kubectl call targets the kind context"
    assert not any("sleep" in c for c in cmds)
    overlay = next(s for st in plan["stages"] for s in st["steps"] if s["id"] == "platform:overlay")
    assert "Deployment/kindml/mlflow" in overlay["objects"] and "FeatureStore/kindml/kindml" in overlay["objects"]
    assert plan["urls"]["kfp-ui"] == "http://127.0.0.1:30080"


def test_plan_order_respects_dependencies(repo_root):
    """CRDs before their waits, cert-manager webhook before KServe, controllers before our CRs, secrets before the overlay."""
    plan = lifecycle.up_plan(False, repo_root)
    ids = plan.step_ids()
    idx = {i: n for n, i in enumerate(ids)}
    assert idx["crds:established"] > max(idx[i] for i in ids if ":crds:" in i)
    assert idx["cert-manager:available"] < idx["kserve:install:0"]
    assert idx["kserve:install:0"] < idx["kserve:config"]
    assert idx["kubeflow-pipelines:available"] < idx["platform:overlay"]
    assert idx["platform:namespaces"] < idx["platform:secrets"] < idx["platform:overlay"] < idx["platform:prometheus-available"]
    assert idx["platform:featurestore-ready"] < idx["platform:feast-registry-address"]
    assert len(ids) == len(set(ids))
    assert "nvidia-device-plugin:install:0" not in idx
    gpu = lifecycle.up_plan(True, repo_root)
    assert "nvidia-device-plugin:install:0" in gpu.step_ids()
    assert any("kind-config.gpu.yaml" in " ".join(s.argv) for st in gpu.stages for s in st.steps)
    assert any(s.argv[-1].endswith("overlays/kind-gpu") for st in gpu.stages for s in st.steps if s.argv)


def test_every_wait_is_bounded(repo_root):
    plan = lifecycle.up_plan(False, repo_root)
    for st in plan.stages:
        for s in st.steps:
            if "wait" in s.argv or "rollout" in s.argv:
                assert any(a.startswith("--timeout=") for a in s.argv), s.id
            assert 0 < s.timeout_s <= 1200


def test_up_dry_run_text(capsys, repo_root):
    """The text plan lists each stage with its commands and the request totals."""
    with pytest.raises(SystemExit) as exc:
        run(["up", "--dry-run"])
    out = capsys.readouterr().out
    assert exc.value.code in (0, None)
    positions = [out.index(f". {name}  [") for name in EXPECTED_STAGES]
    assert positions == sorted(positions)
    assert "resource requests of everything `up` installs" in out


def test_down_dry_run(capsys):
    plan = _cli_json(capsys, "down", "--dry-run", "-o", "json")
    assert [s["name"] for s in plan["stages"]] == ["cluster-delete"]
    assert plan["stages"][0]["steps"][0]["command"] == "kind delete cluster --name kindml"


def test_down_without_yes_refuses_in_scripts(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    with pytest.raises(SystemExit) as exc:
        run(["down"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--yes" in err and "Traceback" not in err


def test_up_checks_the_feast_registry_address_the_pods_use(repo_root):
    """`up` stops with a hint if the operator publishes another registry address than the pods are given."""
    from kindml.cluster import endpoints

    plan = lifecycle.up_plan(False, repo_root)
    step = next(s for st in plan.stages for s in st.steps if s.id == "platform:feast-registry-address")
    assert f"--for=jsonpath={{.status.serviceHostnames.registry}}={endpoints.FEAST_REGISTRY}" in step.argv
    assert "featurestore/kindml" in step.argv and "KINDML_FEAST_REGISTRY" in step.hint
