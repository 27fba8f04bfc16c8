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


EXISTING_STAGES = ["preflight", "crds", "crds-established", "cert-manager", "controllers", "controllers-ready", "platform", "platform-ready"]


def _offline_kubectl_only(monkeypatch):
    """Only the real, offline `kubectl kustomize` may run; kind and docker are absent, as on this machine."""
    import subprocess

    from kindml.cluster import proc

    real_which = proc.which

    def spawn(full, **kw):
        if full[1:2] == ["kustomize"]:
            return subprocess.run(full, **kw)
        raise AssertionError(f"dry-run ran {full}")

    monkeypatch.setattr(proc, "_spawn", spawn)
    monkeypatch.setattr(proc, "which", lambda name: real_which(name) if name == "kubectl" else None)


def test_up_dry_run_on_an_existing_cluster_has_no_kind_steps(capsys, tmp_path, monkeypatch):
    """`kindml up --dry-run --context some-cluster -o json`: the plan without kind, docker or doctor steps,
    every kubectl call on that context, the platform rendered from overlays/cluster (no NodePorts)."""
    monkeypatch.setenv("KINDML_HOME", str(tmp_path / "ws"))
    _offline_kubectl_only(monkeypatch)
    plan = _cli_json(capsys, "up", "--dry-run", "--context", "some-cluster", "-o", "json")
    assert plan["target"] == "cluster" and plan["context"] == "some-cluster"
    assert [s["name"] for s in plan["stages"]] == EXISTING_STAGES
    cmds = [s["command"] for st in plan["stages"] for s in st["steps"]]
    assert not [c for c in cmds if c.startswith(("kind ", "docker ")) or "kindml doctor" in c]
    assert all(c.startswith("kubectl --context some-cluster ") for c in cmds)
    assert "kind" not in plan["versions"] and "node_image" not in plan["versions"]
    overlay = next(s for st in plan["stages"] for s in st["steps"] if s["id"] == "platform:overlay")
    assert overlay["command"].endswith("-f - < rendered platform overlay")
    assert "Service/kindml/kindml-model-endpoint" in overlay["objects"] and "ClusterStorageContainer/kindml-mlflow" in overlay["objects"]
    assert plan["urls"] == {} and any("names no registry" in w for w in plan["warnings"])


def test_existing_cluster_settings_reach_the_rendered_objects(repo_root):
    """--storage-class on every PVC kindml creates (MLflow, the Feast registry), --image everywhere the runtime image runs, --node-ports."""
    from kindml.cluster.plan import ClusterTarget
    from kindml.images import RUNTIME_IMAGE

    t = ClusterTarget(context="prod", storage_class="fast-ssd", image="registry.example/ml/kindml-runtime:0.1.0", node_ports=True)
    objs = lifecycle.platform_objects(False, repo_root, t)
    pvcs = [o for o in objs if o["kind"] == "PersistentVolumeClaim"]
    assert pvcs and all(o["spec"]["storageClassName"] == "fast-ssd" for o in pvcs)
    fs = next(o for o in objs if o["kind"] == "FeatureStore")
    assert fs["spec"]["services"]["registry"]["local"]["persistence"]["file"]["pvc"]["create"]["storageClassName"] == "fast-ssd"
    text = json.dumps(objs)
    assert RUNTIME_IMAGE not in text.replace("registry.example/ml/" + RUNTIME_IMAGE, "") and "registry.example/ml/kindml-runtime:0.1.0" in text
    assert any(o["kind"] == "Service" and o["spec"].get("type") == "NodePort" for o in objs)
    plan = lifecycle.up_plan(False, repo_root, target=t)
    assert plan.warnings == [] and plan.urls["grafana"] == "http://<node address>:30300"
    assert plan.state_name == "up-context-prod"


def test_existing_cluster_settings_validate_against_the_pinned_crds(repo_root, crd_schemas, validate_cr):
    from kindml.cluster.plan import ClusterTarget

    objs = lifecycle.platform_objects(False, repo_root, ClusterTarget(context="prod", storage_class="fast-ssd", image="r.example/kindml-runtime:1"))
    custom = [o for o in objs if "." in o["apiVersion"].rpartition("/")[0] and not o["apiVersion"].rpartition("/")[0].endswith(".k8s.io")]
    assert {"FeatureStore", "ClusterStorageContainer", "Prometheus"} <= {o["kind"] for o in custom}
    for o in custom:
        validate_cr(o, crd_schemas.schema(o["apiVersion"], o["kind"]))


def test_existing_cluster_run_with_mocked_kubectl(repo_root, tmp_path, rendered, fake_bin):
    """The executor runs the existing-cluster plan (kubectl mocked at the subprocess boundary): no kind/docker call,
    the rendered platform goes to kubectl on stdin, progress is kept per context."""
    from kindml.cluster.plan import ClusterTarget

    t = ClusterTarget(context="prod")
    plan = lifecycle.up_plan(False, repo_root, target=t)
    objs = lifecycle.retarget(rendered["overlays/cluster"], t)  # rendered offline with the real kubectl (session fixture)
    res = lifecycle.execute(plan, tmp_path / "ws", platform=objs)
    assert res["state_file"].endswith("up-context-prod-state.json")
    assert not [c for c in fake_bin.commands() if c.startswith(("kind", "docker"))]
    overlay = next(c for c in fake_bin.calls if c.argv[-2:] == ["-f", "-"] and c.input and "ClusterStorageContainer" in c.input)
    assert "kind: FeatureStore" in overlay.input and "--context" in overlay.argv and "prod" in overlay.argv
    ns = next(c for c in fake_bin.calls if c.input and c.input.startswith("apiVersion: v1\nkind: Namespace"))
    assert "name: kserve" in ns.input


def test_kserve_namespace_is_created_before_kserve_yaml(repo_root):
    """kserve.yaml has no Namespace (KServe's generate-install.sh drops it): `up` creates it first."""
    plan = lifecycle.up_plan(False, repo_root)
    ids = plan.step_ids()
    assert ids.index("kserve:namespace") == ids.index("kserve:install:0") - 1
    step = next(s for st in plan.stages for s in st.steps if s.id == "kserve:namespace")
    assert step.document is not None and "name: kserve" in step.document and step.argv[-2:] == ["-f", "-"]


def test_kuberay_is_awaited_where_its_release_installs_it(repo_root):
    plan = lifecycle.up_plan(False, repo_root)
    step = next(s for st in plan.stages for s in st.steps if s.id == "kuberay-operator:available")
    assert step.argv[3:5] == ["-n", "default"]


def test_keda_addon(repo_root):
    plan = lifecycle.up_plan(False, repo_root)
    assert "keda:install:0" not in plan.step_ids()
    with_keda = lifecycle.up_plan(False, repo_root, addons=frozenset({"keda"}))
    assert "keda:install:0" in with_keda.step_ids() and "keda:available" in with_keda.step_ids()
    assert with_keda.requests["cpu_cores"] > plan.requests["cpu_cores"]


@pytest.mark.parametrize("argv", [["up", "--storage-class", "x"], ["up", "--node-ports"], ["up", "--image", "r/i:1"], ["up", "--context", ""]])
def test_existing_cluster_flags_need_a_context(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        run([*argv, "--dry-run"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error:" in err and "hint:" in err and "Traceback" not in err
