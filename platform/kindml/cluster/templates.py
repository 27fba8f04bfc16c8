"""Per-run objects rendered by kindml: the predictor InferenceService (with a
canary challenger, promotion and rollback) and the training RayJob.

Pure functions from typed parameters to plain dicts (YAML-ready). Every object
they produce validates against the upstream CRD schema (unit tests) and every
container meets the "restricted" pod security profile.

Canary design (KServe >= 0.20, Standard mode): the champion is the stable
``spec.predictor`` named ``v<version>``; a challenger is one ``spec.canary``
entry with ``trafficPercent``. KServe gives each canary its own Deployment
and Service and splits traffic by replica ratio. Promotion retargets the stable
predictor to the challenger (same name and pod template, so its pods are kept,
not restarted) and drops the canary entry; rollback drops the canary entry.
The pod template carries the model version, never the role, so that
promotion does not change it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kindml.cluster import endpoints
from kindml.errors import UsageError
from kindml.images import RUNTIME_IMAGE

RAY_VERSION = "2.60.0"
MODEL_DIR = "/mnt/models"


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
    model_uri: str = Field(min_length=1, description="MLflow URI of the exported model, e.g. models:/fraud-detector/3.")
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


def _predictor(mv: ModelVersion, model_name: str) -> dict[str, Any]:
    """The predictor component: init container fetches the model from MLflow,
    the kindml runtime serves it (KServe ModelServer, v1+v2, /metrics on 8080)."""
    env_from = [{"configMapRef": {"name": endpoints.RUNTIME_ENV_CONFIGMAP}}]
    resources = {
        "requests": {"cpu": mv.cpu, "memory": mv.memory},
        "limits": {"cpu": mv.cpu_limit, "memory": mv.memory_limit},
    }
    return {
        "name": mv.predictor_name,
        "minReplicas": mv.replicas,
        "maxReplicas": mv.replicas,
        "labels": {"kindml.io/model": model_name, "kindml.io/model-version": mv.version, "kindml.io/expose": "true"},
        "serviceAccountName": endpoints.PREDICTOR_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": _pod_sc(),
        "initContainers": [
            {
                "name": "model-fetch",
                "image": mv.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["mlflow", "artifacts", "download", "--artifact-uri", mv.model_uri, "--dst-path", MODEL_DIR],
                "envFrom": env_from,
                "env": [{"name": "HOME", "value": "/tmp"}],
                "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
                "securityContext": _restricted_container_sc(),
                "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
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
                    {"name": "HOME", "value": "/tmp"},
                    {"name": "KINDML_MODEL_NAME", "value": model_name},
                    {"name": "KINDML_MODEL_VERSION", "value": mv.version},
                ],
                "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": endpoints.PREDICTOR_PORT}, "periodSeconds": 5},
                "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": endpoints.PREDICTOR_PORT}, "periodSeconds": 10},
                "resources": resources,
                "securityContext": _restricted_container_sc(),
                "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [
            {"name": "model", "emptyDir": {"sizeLimit": "512Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }


def render_inferenceservice(
    champion: ModelVersion,
    challenger: ModelVersion | None = None,
    traffic_percent: int = 10,
    name: str = endpoints.MODEL_NAME,
    namespace: str = endpoints.NAMESPACE,
) -> dict[str, Any]:
    """The predictor InferenceService; with ``challenger``, a canary taking
    ``traffic_percent`` of the traffic."""
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
        "spec": {"predictor": _predictor(champion, name)},
    }
    if challenger is not None:
        isvc["metadata"]["annotations"]["kindml.io/challenger-version"] = challenger.version
        isvc["spec"]["canary"] = [{"trafficPercent": int(traffic_percent), "predictor": _predictor(challenger, name)}]
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
    out["spec"]["predictor"] = entry["predictor"]
    del out["spec"]["canary"]
    ann = out["metadata"].setdefault("annotations", {})
    ann["kindml.io/champion-version"] = ann.pop("kindml.io/challenger-version", entry["predictor"]["labels"]["kindml.io/model-version"])
    return out


def rollback(isvc: dict[str, Any]) -> dict[str, Any]:
    """Drop the challenger: all traffic back to the champion."""
    out = copy.deepcopy(isvc)
    _canary_entry(out)
    del out["spec"]["canary"]
    out["metadata"].get("annotations", {}).pop("kindml.io/challenger-version", None)
    return out


def set_traffic(isvc: dict[str, Any], percent: int) -> dict[str, Any]:
    if not 0 <= percent <= 100:
        raise UsageError(f"canary traffic percent {percent} is out of range", "Use a value from 0 to 100.")
    out = copy.deepcopy(isvc)
    _canary_entry(out)["trafficPercent"] = int(percent)
    return out


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
