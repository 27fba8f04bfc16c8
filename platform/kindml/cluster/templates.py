"""Per-run objects rendered by kindml: the predictor InferenceService (with a
canary challenger, promotion and rollback) and the training RayJob.

Pure functions from typed parameters to plain dicts (YAML-ready). Every object
they produce validates against the upstream CRD schema (unit tests) and every
container meets the "restricted" pod security profile.

What KServe v0.20.0 (the pinned controller) does in Standard mode, read in its
source (pkg/apis/serving/v1beta1/inference_service{,_validation}.go,
pkg/controller/v1beta1/inferenceservice/components/predictor.go), and what we
render for it:

* ``spec.canary`` is a list of ``{predictor, trafficPercent}``; the webhook
  accepts it only in Standard mode, only when the stable predictor has a model
  or a storage URI (a custom container counts when its ``kserve-container``
  has ``STORAGE_URI``), with a ``predictor.name`` per canary, and without
  ``maxReplicas``/``scaleMetric``/``scaleTarget``/``autoScaling`` on the canary
  (canaries run fixed replicas). So every predictor gets ``STORAGE_URI`` =
  the MLflow ``models:/`` URI and KServe's storage initializer fetches it with
  the ClusterStorageContainer ``kindml-mlflow`` (manifests/base/serving).
* ``trafficPercent`` does NOT route requests in Standard mode: it only sizes
  the canary Deployment, ``ceil(stable minReplicas * percent / 100)`` pods, and
  lowers the stable Deployment's minReplicas by that many (at least 1). Each
  predictor gets its own Service (``<isvc>-<predictor name>-predictor``, port 80);
  no KServe object spans both. Our model endpoint Service selects every
  predictor pod of the InferenceService, so the split is the pod ratio
  (:func:`canary_split`): approximate, and 50 % with one stable replica.
* An exact per-request split is an InferenceGraph ``Splitter``
  (:func:`render_traffic_split`): KServe's router picks a step at random by
  weight for every request (weights must sum to 100). Not sticky per user.
* Promotion: the canary's ``predictor.name`` becomes the stable name and the
  canary entry goes (KServe's documented no-restart path); rollback drops it.
  The pod template carries the model version, never the role.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kindml.cluster import endpoints
from kindml.errors import UsageError
from kindml.images import RUNTIME_IMAGE

RAY_VERSION = "2.60.0"
MODEL_DIR = "/mnt/models"  # KServe's DefaultModelLocalMountPath: the storage initializer downloads here
STORAGE_CONTAINER = "kindml-mlflow"  # ClusterStorageContainer for models:/ URIs (manifests/base/serving)


def _restricted_container_sc(read_only: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_sc(uid: int = 10001) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def dns_label(text: str, max_len: int = 63) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    s = s[:max_len].rstrip("-")
    if not s or not s[0].isalpha():
        s = ("x-" + s)[:max_len].rstrip("-")
    return s


class ModelVersion(BaseModel):
    """One registered model version served by a predictor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=20, description="Registry version, e.g. '3'.")
    model_uri: str = Field(min_length=1, description="MLflow URI of the exported model, e.g. models:/ticket-intent/3.")
    image: str = RUNTIME_IMAGE
    replicas: int = Field(1, ge=1, le=10)
    cpu: str = "100m"
    memory: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"

    @field_validator("version")
    @classmethod
    def _version_chars(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("model version may contain letters, digits, '.', '_' and '-'")
        return v

    @property
    def predictor_name(self) -> str:
        return dns_label(f"v{self.version}", 20)


class Autoscaling(BaseModel):
    """Autoscaling of the stable predictor (KServe Standard mode).

    ``hpa``: KServe creates a HorizontalPodAutoscaler on ``scale_metric``
    (cpu utilisation % or memory) between ``min_replicas`` and ``max_replicas``;
    it needs a metrics API (metrics-server), which kind does not ship.
    ``keda``: KServe creates a KEDA ScaledObject whose Prometheus trigger runs
    ``query`` (default: the predictor's request rate) against ``prometheus_url``
    and scales to keep it at ``threshold`` per replica (KEDA: `kindml up --keda`).
    Canaries never autoscale (KServe rejects it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["hpa", "keda"] = "hpa"
    min_replicas: int = Field(1, ge=1, le=20)
    max_replicas: int = Field(3, ge=1, le=50)
    scale_metric: Literal["cpu", "memory"] = "cpu"
    scale_target: int = Field(80, ge=1, description="hpa: cpu utilisation % (1-100) or memory MiB per pod.")
    query: str | None = Field(None, description="keda: PromQL; default: requests per second of this InferenceService.")
    threshold: float = Field(50.0, gt=0, description="keda: target value of the query per replica.")
    prometheus_url: str = endpoints.PROMETHEUS_URL

    @field_validator("max_replicas")
    @classmethod
    def _max_ge_min(cls, v: int, info: Any) -> int:
        mn = info.data.get("min_replicas", 1)
        if v < mn:
            raise ValueError(f"max_replicas ({v}) is smaller than min_replicas ({mn})")
        return v

    @field_validator("scale_target")
    @classmethod
    def _cpu_percent(cls, v: int, info: Any) -> int:
        if info.data.get("scale_metric", "cpu") == "cpu" and v > 100:
            raise ValueError("the cpu scale target is a utilisation percentage (1-100)")
        return v


def request_rate_query(name: str, namespace: str = endpoints.NAMESPACE) -> str:
    """Requests per second served by every predictor pod of InferenceService ``name``
    (``kindml_requests_total``, scraped by the predictors' PodMonitor)."""
    return f'sum(rate(kindml_requests_total{{namespace="{namespace}",model="{name}"}}[1m]))'


def _autoscaling_fields(a: Autoscaling, name: str, namespace: str) -> dict[str, Any]:
    out: dict[str, Any] = {"minReplicas": a.min_replicas, "maxReplicas": a.max_replicas}
    if a.kind == "hpa":
        out["scaleMetric"] = a.scale_metric
        out["scaleTarget"] = a.scale_target
        return out
    threshold = f"{a.threshold:g}"
    out["autoScaling"] = {
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {"backend": "prometheus", "serverAddress": a.prometheus_url, "query": a.query or request_rate_query(name, namespace)},
                    "target": {"type": "Value", "value": threshold},
                },
            }
        ]
    }
    return out


def _predictor(mv: ModelVersion, model_name: str, autoscaling: Autoscaling | None = None, canary: bool = False,
               namespace: str = endpoints.NAMESPACE) -> dict[str, Any]:
    """The predictor component: KServe's storage initializer fetches the model
    (``STORAGE_URI``, our ClusterStorageContainer for ``models:/``), the kindml
    runtime serves it (KServe ModelServer, v1+v2, /metrics on 8080)."""
    env_from = [{"configMapRef": {"name": endpoints.RUNTIME_ENV_CONFIGMAP}}]
    resources = {
        "requests": {"cpu": mv.cpu, "memory": mv.memory},
        "limits": {"cpu": mv.cpu_limit, "memory": mv.memory_limit},
    }
    if canary:
        scaling: dict[str, Any] = {}  # fixed replicas, sized by KServe from trafficPercent (see canary_split)
    elif autoscaling is not None:
        scaling = _autoscaling_fields(autoscaling, model_name, namespace)
    else:
        scaling = {"minReplicas": mv.replicas, "maxReplicas": mv.replicas}
    return {
        "name": mv.predictor_name,
        **scaling,
        "labels": {"kindml.io/model": model_name, "kindml.io/model-version": mv.version, "kindml.io/expose": "true"},
        "serviceAccountName": endpoints.PREDICTOR_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": _pod_sc(),
        "containers": [
            {
                "name": "kserve-container",
                "image": mv.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["kindml"],
                "args": ["serve", "run", "--model-dir", MODEL_DIR, "--port", str(endpoints.PREDICTOR_PORT), "--host", "0.0.0.0"],
                "ports": [{"name": "http1", "containerPort": endpoints.PREDICTOR_PORT, "protocol": "TCP"}],
                "envFrom": env_from,
                "env": [
                    # KServe reads the model location from here (CustomPredictor.GetStorageUri) and injects
                    # the storage initializer; it rewrites the value to /mnt/models in the pod
                    {"name": "STORAGE_URI", "value": mv.model_uri},
                    {"name": "HOME", "value": "/tmp"},
                    {"name": "KINDML_MODEL_NAME", "value": model_name},
                    {"name": "KINDML_MODEL_VERSION", "value": mv.version},
                ],
                "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": endpoints.PREDICTOR_PORT}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": endpoints.PREDICTOR_PORT}, "periodSeconds": 10},
                "resources": resources,
                "securityContext": _restricted_container_sc(),
                # /mnt/models is mounted by KServe (volume kserve-provision-location, read-only)
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        # "tmp" is also mounted by the storage initializer (ClusterStorageContainer kindml-mlflow)
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }


def canary_split(stable_min_replicas: int, traffic_percent: int) -> dict[str, Any]:
    """What KServe v0.20.0 runs for one canary in Standard mode, and the share of
    requests the canary really gets through a Service over all predictor pods.

    KServe: canary pods = ceil(stable minReplicas * percent / 100); stable
    minReplicas -= canary pods (at least 1). The share is canary pods / all pods
    while the stable predictor is not scaled above its minimum.
    """
    canary = math.ceil(stable_min_replicas * traffic_percent / 100)
    stable = max(stable_min_replicas - canary, 1)
    effective = round(100 * canary / (stable + canary)) if canary else 0
    return {"requested_percent": traffic_percent, "stable_pods": stable, "canary_pods": canary, "effective_percent": effective,
            "exact": effective == traffic_percent}


def replicas_for_percent(traffic_percent: int, max_pods: int = 20) -> int | None:
    """The smallest stable minReplicas for which KServe's replica split is exactly ``traffic_percent`` (None if above ``max_pods``)."""
    for n in range(1, max_pods + 1):
        if canary_split(n, traffic_percent)["exact"]:
            return n
    return None


def predictor_service(name: str, version: str) -> str:
    """The Service KServe creates for one predictor (``<isvc>-<predictor name>-predictor``, port 80)."""
    return f"{dns_label(name, 45)}-{ModelVersion(version=version, model_uri='-').predictor_name}-predictor"


def predictor_url(name: str, version: str, namespace: str = endpoints.NAMESPACE) -> str:
    """In-cluster base URL of one predictor version (its own Service, port 80 -> 8080)."""
    return f"http://{predictor_service(name, version)}.{namespace}.svc.cluster.local"


def render_inferenceservice(
    champion: ModelVersion,
    challenger: ModelVersion | None = None,
    traffic_percent: int = 10,
    name: str = "model",
    namespace: str = endpoints.NAMESPACE,
    autoscaling: Autoscaling | None = None,
) -> dict[str, Any]:
    """The predictor InferenceService; with ``challenger``, a canary sized for
    ``traffic_percent`` of the traffic (by pod ratio: see :func:`canary_split`;
    the effective share is recorded in annotation ``kindml.io/canary-effective-percent``).
    ``autoscaling`` makes the stable (champion) predictor autoscale (HPA or KEDA)."""
    if challenger is not None:
        if not 0 <= traffic_percent <= 100:
            raise UsageError(f"canary traffic percent {traffic_percent} is out of range", "Use a value from 0 to 100.")
        if challenger.predictor_name == champion.predictor_name:
            raise UsageError(
                f"champion and challenger are the same model version ({champion.version})",
                "Pass the version currently serving as champion and a different candidate version.",
            )
    isvc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": dns_label(name, 45),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kindml", "kindml.io/model": name},
            "annotations": {
                "serving.kserve.io/deploymentMode": "Standard",
                "kindml.io/champion-version": champion.version,
            },
        },
        "spec": {"predictor": _predictor(champion, name, autoscaling, namespace=namespace)},
    }
    if autoscaling is not None:
        isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = autoscaling.kind
    if challenger is not None:
        stable_min = autoscaling.min_replicas if autoscaling is not None else champion.replicas
        split = canary_split(stable_min, int(traffic_percent))
        isvc["metadata"]["annotations"]["kindml.io/challenger-version"] = challenger.version
        isvc["metadata"]["annotations"]["kindml.io/canary-effective-percent"] = str(split["effective_percent"])
        isvc["spec"]["canary"] = [{"trafficPercent": int(traffic_percent), "predictor": _predictor(challenger, name, canary=True, namespace=namespace)}]
    return isvc


def _canary_entry(isvc: dict[str, Any]) -> dict[str, Any]:
    canary = (isvc.get("spec") or {}).get("canary") or []
    if not canary:
        raise UsageError(
            f"InferenceService {isvc.get('metadata', {}).get('name')} has no canary to promote or roll back",
            "Render it with a challenger first (kindml render isvc --challenger-version N --challenger-uri URI).",
        )
    if len(canary) > 1:
        raise UsageError("more than one canary entry", "kindml manages a single challenger per InferenceService.")
    return canary[0]


def promote(isvc: dict[str, Any]) -> dict[str, Any]:
    """The challenger becomes the stable predictor (its pods are kept), the
    canary entry goes away."""
    out = copy.deepcopy(isvc)
    entry = _canary_entry(out)
    stable = out["spec"]["predictor"]
    promoted = dict(entry["predictor"])
    for key in _SCALING_KEYS:  # the stable predictor's scaling carries over (canaries have none)
        if key in stable:
            promoted[key] = stable[key]
    out["spec"]["predictor"] = promoted
    del out["spec"]["canary"]
    ann = out["metadata"].setdefault("annotations", {})
    ann["kindml.io/champion-version"] = ann.pop("kindml.io/challenger-version", entry["predictor"]["labels"]["kindml.io/model-version"])
    ann.pop("kindml.io/canary-effective-percent", None)
    return out


_SCALING_KEYS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "autoScaling")


def rollback(isvc: dict[str, Any]) -> dict[str, Any]:
    """Drop the challenger: all traffic back to the champion."""
    out = copy.deepcopy(isvc)
    _canary_entry(out)
    del out["spec"]["canary"]
    out["metadata"].get("annotations", {}).pop("kindml.io/challenger-version", None)
    out["metadata"].get("annotations", {}).pop("kindml.io/canary-effective-percent", None)
    return out


def set_traffic(isvc: dict[str, Any], percent: int) -> dict[str, Any]:
    if not 0 <= percent <= 100:
        raise UsageError(f"canary traffic percent {percent} is out of range", "Use a value from 0 to 100.")
    out = copy.deepcopy(isvc)
    _canary_entry(out)["trafficPercent"] = int(percent)
    stable_min = int(out["spec"]["predictor"].get("minReplicas", 1))
    out["metadata"].setdefault("annotations", {})["kindml.io/canary-effective-percent"] = str(canary_split(stable_min, percent)["effective_percent"])
    return out


def render_traffic_split(name: str, routes: list[tuple[str, int]], namespace: str = endpoints.NAMESPACE,
                         model_name: str | None = None) -> dict[str, Any]:
    """An exact per-request weighted split between predictor versions: a KServe
    InferenceGraph whose root ``Splitter`` sends each request to one of
    ``routes`` = [(model version, weight %), ...] (weights sum to 100) at random
    by weight. Every version is a predictor of InferenceService ``model_name``
    (its own Service, :func:`predictor_url`). Clients call the graph's Service
    (``<name>``, created by KServe) with the v1 predict body; not sticky per user."""
    model = model_name or name
    if len(routes) < 2:
        raise UsageError("a traffic split needs at least two model versions", "Pass --route VERSION=WEIGHT at least twice.")
    if sum(w for _, w in routes) != 100 or any(w < 0 for _, w in routes):
        raise UsageError(f"route weights {[w for _, w in routes]} do not sum to 100", "KServe's Splitter needs weights that sum to 100.")
    versions = [v for v, _ in routes]
    if len(set(versions)) != len(versions):
        raise UsageError("a model version appears twice in the split", "Give each version one weight.")
    steps = [
        {"name": ModelVersion(version=v, model_uri="-").predictor_name,
         "serviceUrl": f"{predictor_url(model, v, namespace)}/v1/models/{model}:predict", "weight": int(w)}
        for v, w in routes
    ]
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {
            "name": dns_label(name, 45),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "kindml", "kindml.io/model": model},
            "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        },
        "spec": {
            "nodes": {"root": {"routerType": "Splitter", "steps": steps}},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "minReplicas": 1,
            "maxReplicas": 1,
        },
    }


class RayJobParams(BaseModel):
    """A training run as a RayJob on KubeRay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(min_length=1)
    entrypoint: str = Field(min_length=1, description="Shell command the Ray job runs on the head (kindml CLI or python -m ...).")
    image: str = RUNTIME_IMAGE
    workers: int = Field(2, ge=1, le=16)
    cpus_per_worker: float = Field(1.0, gt=0, le=16)
    memory_per_worker: str = "2Gi"
    gpus_per_worker: int = Field(0, ge=0, le=8)
    head_cpu: str = "250m"
    head_memory: str = "1536Mi"
    active_deadline_s: int = Field(3600, ge=60, le=86_400)
    ttl_after_finished_s: int = Field(600, ge=0, le=86_400)
    namespace: str = endpoints.NAMESPACE


def _cpu_qty(cores: float) -> str:
    milli = int(round(cores * 1000))
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def _ray_container(name: str, p: RayJobParams, requests: dict[str, str], limits: dict[str, Any], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": p.image,
        "imagePullPolicy": "IfNotPresent",
        "envFrom": [{"configMapRef": {"name": endpoints.RUNTIME_ENV_CONFIGMAP}}],
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "KINDML_RUN_ID", "value": p.run_id}],
        "resources": {"requests": requests, "limits": limits},
        "securityContext": _restricted_container_sc(read_only=True),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if ports:
        c["ports"] = ports
    return c


def _ray_volumes(shm: str) -> list[dict[str, Any]]:
    return [
        {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}},
    ]


def render_rayjob(p: RayJobParams) -> dict[str, Any]:
    """The training RayJob: a throw-away RayCluster (head + ``workers`` DDP
    workers) that runs ``entrypoint`` and is deleted when it finishes."""
    name = dns_label(f"train-{p.run_id}", 40)
    pool = "gpu" if p.gpus_per_worker else "general"
    worker_limits: dict[str, Any] = {"cpu": _cpu_qty(max(p.cpus_per_worker, 0.5) * 2), "memory": p.memory_per_worker}
    if p.gpus_per_worker:
        worker_limits["nvidia.com/gpu"] = p.gpus_per_worker
    head = {
        "serviceAccountName": "default",
        "automountServiceAccountToken": False,
        "securityContext": _pod_sc(),
        "nodeSelector": {"kindml.io/pool": "general"},
        "containers": [
            _ray_container(
                "ray-head",
                p,
                {"cpu": p.head_cpu, "memory": p.head_memory},
                {"cpu": "1", "memory": p.head_memory},
                ports=[
                    {"name": "gcs-server", "containerPort": 6379},
                    {"name": "dashboard", "containerPort": 8265},
                    {"name": "client", "containerPort": 10001},
                ],
            )
        ],
        "volumes": _ray_volumes("512Mi"),
    }
    worker = {
        "serviceAccountName": "default",
        "automountServiceAccountToken": False,
        "securityContext": _pod_sc(),
        "nodeSelector": {"kindml.io/pool": pool},
        "containers": [
            _ray_container("ray-worker", p, {"cpu": _cpu_qty(p.cpus_per_worker), "memory": p.memory_per_worker}, worker_limits)
        ],
        "volumes": _ray_volumes("1Gi"),
    }
    if p.gpus_per_worker:
        worker["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    submitter = {
        "metadata": {"labels": {"app.kubernetes.io/part-of": "kindml", "kindml.io/run-id": dns_label(p.run_id)}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": _pod_sc(),
            "nodeSelector": {"kindml.io/pool": "general"},
            "containers": [
                {
                    "name": "ray-job-submitter",
                    "image": p.image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "HOME", "value": "/tmp"}, {"name": "RAY_AUTH_MODE", "value": "disabled"}],
                    "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
                    "securityContext": _restricted_container_sc(),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        },
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": name,
            "namespace": p.namespace,
            "labels": {"app.kubernetes.io/part-of": "kindml", "kindml.io/run-id": dns_label(p.run_id)},
        },
        "spec": {
            "entrypoint": p.entrypoint,
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": p.ttl_after_finished_s,
            "activeDeadlineSeconds": p.active_deadline_s,
            "backoffLimit": 0,
            "submitterPodTemplate": submitter,
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": False,
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": {"metadata": {"labels": {"kindml.io/run-id": dns_label(p.run_id)}}, "spec": head},
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "ddp",
                        "replicas": p.workers,
                        "minReplicas": p.workers,
                        "maxReplicas": p.workers,
                        "rayStartParams": {"num-cpus": str(max(1, int(p.cpus_per_worker))), **({"num-gpus": str(p.gpus_per_worker)} if p.gpus_per_worker else {})},
                        "template": {"metadata": {"labels": {"kindml.io/run-id": dns_label(p.run_id)}}, "spec": worker},
                    }
                ],
            },
        },
    }


def to_yaml(*objs: dict[str, Any]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)
