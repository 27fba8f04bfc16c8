"""The benchmark suite as a Kubernetes Job on a GPU node (``nvidia.com/gpu: 1``).

The same harness as ``kindml bench``, with ``--device cuda``: the Job fails
with a clear message when the node's onnxruntime has no CUDA EP (never a
silent CPU run), and TensorRT variants are measured when the image's
onnxruntime-gpu build has the TensorRT EP, skipped with the reason otherwise.

The image must carry ``onnxruntime-gpu`` (same version as the CPU pin) instead
of ``onnxruntime``, plus the ``bench`` extra; CUDA/cuDNN (and TensorRT for the
``trt_*`` variants) come with the NVIDIA base image. The pod lands on the GPU
pool of ``kindml up --gpu`` (``kindml.io/pool: gpu``, tolerating the
``nvidia.com/gpu`` taint). The result JSON is printed on stdout
(``--output json``): ``kubectl logs job/<name>`` collects it; the JSON,
markdown and plots are also written under ``/results`` (an emptyDir a KFP
component would return as an output artifact).

Rendered and validated offline here (kubernetes-validate, strict); never run
on a GPU in this repository's CI.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from kindml.bench.catalog import MODEL_NAME_PATTERN, SUITES
from kindml.errors import UsageError

GPU_POOL = "gpu"
RESULTS_DIR = "/results"


def _dns_label(text: str, max_len: int = 63) -> str:
    from kindml.cluster.templates import dns_label

    return dns_label(text, max_len)


def bench_command(suite: str, models: tuple[str, ...] | None, threads: int | None = None) -> list[str]:
    cmd = ["kindml", "bench", "--device", "cuda", "--suite", suite, "--output", "json", "--out-dir", RESULTS_DIR, "--source", "train"]
    if models:
        cmd += ["--models", ",".join(models)]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def render_bench_job(
    image: str,
    name: str = "kindml-bench-gpu",
    namespace: str = "kindml",
    suite: str = "quick",
    models: tuple[str, ...] | None = None,
    known_models: Collection[str] | None = None,
    gpus: int = 1,
    cpu: str = "2",
    memory: str = "8Gi",
    deadline_seconds: int = 3600,
) -> dict[str, Any]:
    """A batch/v1 Job running the suite on one GPU of the GPU pool.

    ``models``: case names (checked against ``known_models`` when given — e.g. the platform's and the
    workload registry's names; ``kindml bench`` in the pod checks them again). Workload cases that can
    come from a registry are trained in the pod (``--source train``): the Job has no registry access.
    """
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}", f"Use one of: {', '.join(SUITES)}.")
    bad = [m for m in models or () if not re.fullmatch(MODEL_NAME_PATTERN, m) or (known_models is not None and m not in known_models)]
    if bad:
        raise UsageError(f"unknown model(s): {', '.join(bad)}", f"Choose from: {', '.join(known_models)}." if known_models is not None else "Use case names such as digits_cnn or minilm_l6.")
    if gpus < 1:
        raise UsageError(f"gpus={gpus}: the GPU benchmark needs at least one GPU", "Use gpus=1.")
    labels = {"app.kubernetes.io/part-of": "kindml", "app.kubernetes.io/component": "bench", "kindml.io/suite": suite}
    container = {
        "name": "bench",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": bench_command(suite, models),
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "KINDML_HOME", "value": "/tmp/kindml"},
            {"name": "KINDML_NO_PROGRESS", "value": "1"},
            {"name": "HF_HUB_OFFLINE", "value": "1"},
            {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
            {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"},
        ],
        "workingDir": "/tmp",
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "results", "mountPath": RESULTS_DIR}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": _dns_label(name), "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": {"kindml.io/pool": GPU_POOL},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}},
                        {"name": "results", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
