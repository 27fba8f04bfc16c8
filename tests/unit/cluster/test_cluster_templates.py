"""Per-run objects: the predictor InferenceService (canary, promote, rollback,
HPA/KEDA autoscaling), the InferenceGraph traffic split and the training RayJob
validate against the CRDs of the pinned KServe / KubeRay versions
(manifests/crds), pass the admission rules of the pinned KServe read in its
source, and meet the restricted pod security profile."""

from __future__ import annotations

import json

import pytest

from kindml.cli.main import run
from kindml.cluster import objects, templates
from kindml.errors import UsageError

pytestmark = pytest.mark.unit

CHAMP = templates.ModelVersion(version="3", model_uri="models:/ticket-intent/3")
CHALL = templates.ModelVersion(version="4", model_uri="models:/ticket-intent/4")


def _check(obj, crd_schemas, validate_cr):
    validate_cr(obj, crd_schemas.schema(obj["apiVersion"], obj["kind"]))
    for label, pod, _ in objects.pod_specs(obj):
        for c in objects.containers(pod):
            assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["capabilities"]["drop"] == ["ALL"], label
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"]), label
            assert c["image"] == templates.RUNTIME_IMAGE


def test_champion_only(crd_schemas, validate_cr):
    isvc = templates.render_inferenceservice(CHAMP)
    _check(isvc, crd_schemas, validate_cr)
    assert "canary" not in isvc["spec"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    c = isvc["spec"]["predictor"]["containers"][0]
    assert c["name"] == "kserve-container"
    assert c["args"] == ["serve", "run", "--model-dir", "/mnt/models", "--port", "8080", "--host", "0.0.0.0"]
    assert c["ports"][0] == {"name": "http1", "containerPort": 8080, "protocol": "TCP"}


def test_canary(crd_schemas, validate_cr):
    """The challenger is one spec.canary entry with trafficPercent, its own named predictor."""
    isvc = templates.render_inferenceservice(CHAMP, CHALL, traffic_percent=20)
    _check(isvc, crd_schemas, validate_cr)
    (entry,) = isvc["spec"]["canary"]
    assert entry["trafficPercent"] == 20
    assert entry["predictor"]["name"] == "v4" and isvc["spec"]["predictor"]["name"] == "v3"
    assert entry["predictor"]["labels"]["kindml.io/model-version"] == "4"
    assert isvc["metadata"]["annotations"]["kindml.io/challenger-version"] == "4"
    assert templates.set_traffic(isvc, 50)["spec"]["canary"][0]["trafficPercent"] == 50


def test_promote_keeps_the_challenger_pods(crd_schemas, validate_cr):
    """Promotion: the challenger's predictor (same name and template) becomes stable; no canary left."""
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 10)
    promoted = templates.promote(isvc)
    _check(promoted, crd_schemas, validate_cr)
    assert "canary" not in promoted["spec"]
    scaling = {k: isvc["spec"]["predictor"][k] for k in ("minReplicas", "maxReplicas")}
    assert promoted["spec"]["predictor"] == {**isvc["spec"]["canary"][0]["predictor"], **scaling}  # the stable predictor's replicas carry over
    assert promoted["metadata"]["annotations"]["kindml.io/champion-version"] == "4"
    assert "kindml.io/challenger-version" not in promoted["metadata"]["annotations"]
    assert "canary" in isvc["spec"], "promote must not mutate its input"


def test_rollback_returns_to_the_champion(crd_schemas, validate_cr):
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 10)
    rolled = templates.rollback(isvc)
    _check(rolled, crd_schemas, validate_cr)
    assert rolled == templates.render_inferenceservice(CHAMP)


def test_canary_errors():
    with pytest.raises(UsageError):
        templates.render_inferenceservice(CHAMP, CHALL, 101)
    with pytest.raises(UsageError):
        templates.render_inferenceservice(CHAMP, CHAMP, 10)
    with pytest.raises(UsageError):
        templates.promote(templates.render_inferenceservice(CHAMP))
    with pytest.raises(ValueError):
        templates.ModelVersion(version="3 bad", model_uri="x")


def test_rayjob(crd_schemas, validate_cr):
    p = templates.RayJobParams(run_id="capstone-20261123-abc123", entrypoint="kindml train --target kind", workers=2)
    rj = templates.render_rayjob(p)
    _check(rj, crd_schemas, validate_cr)
    spec = rj["spec"]
    assert spec["rayClusterSpec"]["rayVersion"] == "2.60.0"
    assert spec["shutdownAfterJobFinishes"] is True and spec["submissionMode"] == "K8sJobMode"
    (group,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == 2
    worker = group["template"]["spec"]
    assert worker["nodeSelector"] == {"kindml.io/pool": "general"}
    assert "nvidia.com/gpu" not in worker["containers"][0]["resources"]["limits"]
    assert len(rj["metadata"]["name"]) <= 40
    total, _ = objects.requests_of([rj])
    assert total.cpu_cores == pytest.approx(2.25)


def test_rayjob_gpu(crd_schemas, validate_cr):
    rj = templates.render_rayjob(templates.RayJobParams(run_id="r1", entrypoint="true", workers=1, gpus_per_worker=1))
    _check(rj, crd_schemas, validate_cr)
    worker = rj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["nodeSelector"] == {"kindml.io/pool": "gpu"}
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_cli_render_isvc_promote(capsys):
    with pytest.raises(SystemExit) as exc:
        run(["render", "isvc", "--champion-version", "3", "--champion-uri", "models:/ticket-intent/3",
             "--challenger-version", "4", "--challenger-uri", "models:/ticket-intent/4", "--name", "ticket-intent", "--action", "promote", "-o", "json"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    isvc = json.loads(out.out)
    assert isvc["spec"]["predictor"]["name"] == "v4" and "canary" not in isvc["spec"]


def test_cli_render_rayjob_yaml(capsys):
    import yaml

    with pytest.raises(SystemExit) as exc:
        run(["render", "rayjob", "--run-id", "r1", "--entrypoint", "true"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    assert yaml.safe_load(out.out)["kind"] == "RayJob"


# -- what KServe v0.20.0's webhook accepts (pkg/apis/serving/v1beta1/inference_service_validation.go) ----------


def kserve_webhook_problems(isvc: dict) -> list[str]:
    """The admission rules of the pinned KServe (v0.20.0) for what we render, read in its source:
    validateCanarySpecs, validateScalingHPACompExtension, validateScalingKedaCompExtension."""
    problems = []
    ann = isvc["metadata"].get("annotations", {})
    spec = isvc["spec"]
    stable = spec["predictor"]

    def storage_uri(pred: dict) -> str | None:
        kc = next((c for c in pred.get("containers", []) if c["name"] == "kserve-container"), None)
        return next((e["value"] for e in (kc or {}).get("env", []) if e["name"] == "STORAGE_URI"), None)

    if spec.get("canary"):
        if ann.get("serving.kserve.io/deploymentMode") != "Standard":
            problems.append("canary is only supported in Standard deployment mode")
        if storage_uri(stable) is None and "model" not in stable:
            problems.append("canary requires a stable predictor with a model")
        total = 0
        for c in spec["canary"]:
            p = c["predictor"]
            if not p.get("name") or p["name"] == stable.get("name"):
                problems.append("canary predictor.name missing or equal to the stable name")
            for k in ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"):
                if p.get(k):
                    problems.append(f"canary must not set {k}")
            if p.get("minReplicas", 0) > stable.get("minReplicas", 1):
                problems.append("canary minReplicas exceeds the stable minReplicas")
            total += c["trafficPercent"]
        if total > 100:
            problems.append("sum of canary trafficPercent > 100")
    cls = ann.get("serving.kserve.io/autoscalerClass", "hpa")
    if cls == "hpa":
        metric = stable.get("scaleMetric", "cpu")
        if metric not in ("cpu", "memory"):
            problems.append(f"[{metric}] is not a supported metric")
        if metric == "cpu" and "scaleTarget" in stable and not 1 <= stable["scaleTarget"] <= 100:
            problems.append("the target utilization percentage should be a [1-100] integer")
    elif cls == "keda":
        if "scaleMetric" in stable:
            problems.append("ScaleMetric is not supported for KEDA")
        for m in stable.get("autoScaling", {}).get("metrics", []):
            if m["type"] == "External" and (not m["external"]["metric"].get("query") or "value" not in m["external"]["target"]):
                problems.append("external metric needs a query and a target value")
    return problems


def test_canary_passes_the_pinned_kserve_webhook(crd_schemas, validate_cr):
    """The challenger carries no replica/autoscaling fields, the champion names its model (STORAGE_URI)."""
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 10)
    _check(isvc, crd_schemas, validate_cr)
    assert kserve_webhook_problems(isvc) == []
    for pred in (isvc["spec"]["predictor"], isvc["spec"]["canary"][0]["predictor"]):
        env = {e["name"]: e["value"] for e in pred["containers"][0]["env"]}
        assert env["STORAGE_URI"].startswith("models:/")
        assert "initContainers" not in pred, "KServe's storage initializer fetches the model (ClusterStorageContainer kindml-mlflow)"
        assert all(m["mountPath"] != templates.MODEL_DIR for m in pred["containers"][0]["volumeMounts"]), "KServe mounts /mnt/models"


def test_the_old_canary_rendering_is_what_the_webhook_rejects():
    """The rules above bite: a canary with maxReplicas and no storage URI (what kindml rendered before) is refused."""
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 10)
    isvc["spec"]["canary"][0]["predictor"]["maxReplicas"] = 1
    for e in list(isvc["spec"]["predictor"]["containers"][0]["env"]):
        if e["name"] == "STORAGE_URI":
            isvc["spec"]["predictor"]["containers"][0]["env"].remove(e)
    problems = kserve_webhook_problems(isvc)
    assert "canary must not set maxReplicas" in problems and "canary requires a stable predictor with a model" in problems


@pytest.mark.parametrize(("stable", "pct", "canary_pods", "stable_pods", "effective"),
                         [(1, 10, 1, 1, 50), (1, 0, 0, 1, 0), (1, 50, 1, 1, 50), (4, 25, 1, 3, 25), (10, 10, 1, 9, 10), (3, 10, 1, 2, 33)])
def test_canary_split_is_kserves_replica_ratio(stable, pct, canary_pods, stable_pods, effective):
    """KServe v0.20.0 (components/predictor.go canaryReplicaCount): ceil(stable*pct/100) canary pods, stable lowered by as many (>= 1)."""
    s = templates.canary_split(stable, pct)
    assert (s["canary_pods"], s["stable_pods"], s["effective_percent"]) == (canary_pods, stable_pods, effective)


def test_effective_percent_is_recorded_and_replicas_for_an_exact_split():
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 10)
    assert isvc["metadata"]["annotations"]["kindml.io/canary-effective-percent"] == "50"
    assert templates.replicas_for_percent(10) == 10 and templates.replicas_for_percent(25) == 4 and templates.replicas_for_percent(7, max_pods=5) is None
    exact = templates.render_inferenceservice(templates.ModelVersion(version="3", model_uri="models:/m/3", replicas=10), CHALL, 10)
    assert exact["metadata"]["annotations"]["kindml.io/canary-effective-percent"] == "10"
    assert templates.set_traffic(exact, 20)["metadata"]["annotations"]["kindml.io/canary-effective-percent"] == "20"


def test_hpa_autoscaling(crd_schemas, validate_cr):
    """HPA class: min/max replicas, scaleMetric, scaleTarget on the champion; the canary stays fixed."""
    a = templates.Autoscaling(kind="hpa", min_replicas=2, max_replicas=5, scale_metric="cpu", scale_target=70)
    isvc = templates.render_inferenceservice(CHAMP, CHALL, 50, autoscaling=a)
    _check(isvc, crd_schemas, validate_cr)
    assert kserve_webhook_problems(isvc) == []
    p = isvc["spec"]["predictor"]
    assert (p["minReplicas"], p["maxReplicas"], p["scaleMetric"], p["scaleTarget"]) == (2, 5, "cpu", 70)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    promoted = templates.promote(isvc)
    assert promoted["spec"]["predictor"]["maxReplicas"] == 5 and promoted["spec"]["predictor"]["name"] == "v4"
    assert kserve_webhook_problems(promoted) == []


def test_keda_autoscaling_on_the_request_rate(crd_schemas, validate_cr):
    """KEDA class: an External Prometheus metric (requests/s of this InferenceService) with a Value target."""
    a = templates.Autoscaling(kind="keda", min_replicas=1, max_replicas=4, threshold=25)
    isvc = templates.render_inferenceservice(CHAMP, autoscaling=a, name="churn-model")
    _check(isvc, crd_schemas, validate_cr)
    assert kserve_webhook_problems(isvc) == []
    (m,) = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
    assert m["type"] == "External" and m["external"]["target"] == {"type": "Value", "value": "25"}
    assert m["external"]["metric"]["backend"] == "prometheus"
    assert 'model="churn-model"' in m["external"]["metric"]["query"] and "kindml_requests_total" in m["external"]["metric"]["query"]
    assert "scaleMetric" not in isvc["spec"]["predictor"]


def test_bad_autoscaling_is_refused():
    with pytest.raises(ValueError):
        templates.Autoscaling(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError):
        templates.Autoscaling(scale_metric="cpu", scale_target=150)


def test_inferencegraph_splitter_is_an_exact_per_request_split(crd_schemas, validate_cr):
    """An InferenceGraph Splitter over the predictors' own Services; weights sum to 100 (KServe's webhook rule)."""
    ig = templates.render_traffic_split("fraud-detector-split", [("3", 90), ("4", 10)], model_name="fraud-detector")
    validate_cr(ig, crd_schemas.schema(ig["apiVersion"], ig["kind"]))
    root = ig["spec"]["nodes"]["root"]
    assert root["routerType"] == "Splitter" and sum(s["weight"] for s in root["steps"]) == 100
    assert root["steps"][0]["serviceUrl"] == "http://fraud-detector-v3-predictor.kindml.svc.cluster.local/v1/models/fraud-detector:predict"
    assert ig["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    with pytest.raises(UsageError):
        templates.render_traffic_split("s", [("3", 90), ("4", 20)])
    with pytest.raises(UsageError):
        templates.render_traffic_split("s", [("3", 100)])


def test_predictor_service_names_follow_kserve():
    """constants.PredictorServiceName: <isvc>-<predictor name>-predictor (port 80 -> the container's 8080)."""
    assert templates.predictor_service("fraud-detector", "3") == "fraud-detector-v3-predictor"
    assert templates.predictor_url("churn", "7", "ns") == "http://churn-v7-predictor.ns.svc.cluster.local"


def test_cli_render_isvc_autoscale_and_split(capsys):
    with pytest.raises(SystemExit) as exc:
        run(["render", "isvc", "--champion-version", "3", "--champion-uri", "models:/m/3", "--name", "m", "--autoscale", "keda",
             "--max-replicas", "4", "--rps-per-replica", "20", "-o", "json"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    isvc = json.loads(out.out)
    assert isvc["metadata"]["name"] == "m" and isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    with pytest.raises(SystemExit) as exc:
        run(["render", "split", "--route", "3=80", "--route", "4=20", "--name", "m", "-o", "json"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None), out.err
    assert json.loads(out.out)["kind"] == "InferenceGraph"
    with pytest.raises(SystemExit) as exc:
        run(["render", "split", "--route", "3=80", "--route", "4", "--name", "m"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error:" in err and "hint:" in err and "Traceback" not in err
