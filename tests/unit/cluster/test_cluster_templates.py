"""Per-run objects: the predictor InferenceService (canary, promote, rollback)
and the training RayJob validate against the KServe 0.20 / KubeRay 1.7 CRD
schemas and meet the restricted pod security profile."""

from __future__ import annotations

import json

import pytest

from kindml.cli.main import run
from kindml.cluster import objects, templates
from kindml.errors import UsageError

pytestmark = pytest.mark.unit

CHAMP = templates.ModelVersion(version="3", model_uri="models:/fraud-detector/3")
CHALL = templates.ModelVersion(version="4", model_uri="models:/fraud-detector/4")


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
        run(["render", "isvc", "--champion-version", "3", "--champion-uri", "models:/fraud-detector/3",
             "--challenger-version", "4", "--challenger-uri", "models:/fraud-detector/4", "--action", "promote", "-o", "json"])
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
