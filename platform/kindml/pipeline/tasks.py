"""Helpers for pipeline files: what every task of a kindml pipeline needs on a cluster.

``on_cluster(task, stage)`` sets the display name, requests and limits, and
mounts ConfigMap ``kindml-runtime-env`` (MLflow, Redis, the Feast registry
server, Prometheus addresses) as environment variables. kfp.local ignores
both, so the same pipeline runs unchanged on the embedded default.
"""

from __future__ import annotations

from typing import Any

from kindml.cluster import endpoints

# Requests and limits of each stage's pod on the cluster: (cpu request, memory request, cpu limit, memory limit).
# `train` only creates the RayJob and waits for it (the RayJob's pods carry the training resources,
# kindml.cluster.templates.RayJobParams), so it asks for little.
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    "ingest": ("250m", "512M", "1", "2G"),
    "validate": ("250m", "1G", "1", "2G"),
    "features": ("500m", "1G", "2", "4G"),
    "train": ("100m", "512M", "1", "2G"),
    "evaluate": ("250m", "1G", "1", "2G"),
    "export": ("250m", "1G", "1", "2G"),
    "register": ("250m", "1G", "1", "2G"),
    "batch": ("250m", "1G", "2", "3G"),  # a Ray Data actor pool (batch.workers) inside the pod
    "deploy": ("100m", "512M", "1", "1G"),
    "monitor": ("250m", "512M", "1", "2G"),
}
STAGES: tuple[str, ...] = tuple(RESOURCES)
"""The platform's standard stage order (a capstone's pipeline uses these names as task display names)."""


def on_cluster(task: Any, stage: str, resources: dict[str, tuple[str, str, str, str]] | None = None) -> Any:
    """Display name, resources, and the in-cluster addresses as environment variables."""
    from kfp import kubernetes

    cpu, mem, cpu_max, mem_max = (resources or RESOURCES)[stage]
    task.set_display_name(stage).set_cpu_request(cpu).set_memory_request(mem).set_cpu_limit(cpu_max).set_memory_limit(mem_max)
    kubernetes.use_config_map_as_env(task, endpoints.RUNTIME_ENV_CONFIGMAP, {k: k for k in endpoints.RUNNER_ENV})
    return task
