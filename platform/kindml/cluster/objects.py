"""Reading rendered Kubernetes objects: containers, images, resource requests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)?$")


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ("250m", "1Gi", "0.5", 2) as a Decimal of base units."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = m.group(1), m.group(2) or ""
    return Decimal(number) * Decimal(_SUFFIX[suffix])


def load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


# Where the pod template sits in each workload kind we render or install.
def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(label, podSpec, replicas) for every pod template inside an object."""
    kind = obj.get("kind", "")
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "?")
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        yield f"{kind}/{name}", spec["template"]["spec"], int(spec.get("replicas", 1))
    elif kind == "DaemonSet":
        yield f"{kind}/{name}", spec["template"]["spec"], 1
    elif kind == "Job":
        yield f"{kind}/{name}", spec["template"]["spec"], int(spec.get("parallelism", 1))
    elif kind == "Pod":
        yield f"{kind}/{name}", spec, 1
    elif kind == "RayJob":
        rc = spec.get("rayClusterSpec") or {}
        head = (rc.get("headGroupSpec") or {}).get("template", {}).get("spec")
        if head:
            yield f"RayJob/{name}/head", head, 1
        for g in rc.get("workerGroupSpecs") or []:
            yield f"RayJob/{name}/{g.get('groupName')}", g["template"]["spec"], int(g.get("replicas", g.get("minReplicas", 1)))
    elif kind == "InferenceService":
        pred = spec.get("predictor") or {}
        yield f"InferenceService/{name}/predictor", pred, int(pred.get("minReplicas", 1))
        for c in spec.get("canary") or []:
            p = c.get("predictor") or {}
            yield f"InferenceService/{name}/canary-{p.get('name')}", p, int(p.get("minReplicas", 1))


def containers(pod: dict[str, Any], include_init: bool = True) -> list[dict[str, Any]]:
    out = list(pod.get("containers") or [])
    if include_init:
        out += list(pod.get("initContainers") or [])
    return out


def images(objs: Iterable[dict[str, Any]]) -> list[str]:
    """Every container image the objects reference (Prometheus CR included)."""
    found: list[str] = []
    for obj in objs:
        if obj.get("kind") == "Prometheus" and (obj.get("spec") or {}).get("image"):
            found.append(obj["spec"]["image"])
        for _, pod, _ in pod_specs(obj):
            found += [c["image"] for c in containers(pod) if c.get("image")]
    return sorted(set(found))


@dataclass
class Totals:
    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)

    def add(self, cpu: Decimal, memory: Decimal, times: int = 1) -> None:
        self.cpu += cpu * times
        self.memory += memory * times

    @property
    def cpu_cores(self) -> float:
        return round(float(self.cpu), 3)

    @property
    def memory_gib(self) -> float:
        return round(float(self.memory) / 2**30, 3)

    def as_dict(self) -> dict[str, float]:
        return {"cpu_cores": self.cpu_cores, "memory_gib": self.memory_gib}


def pod_requests(pod: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """Effective pod request: max(sum of containers, largest init container)."""
    def req(c: dict[str, Any]) -> tuple[Decimal, Decimal]:
        r = (c.get("resources") or {}).get("requests") or {}
        return quantity(r.get("cpu", 0)), quantity(r.get("memory", 0))

    cpu = sum((req(c)[0] for c in pod.get("containers") or []), Decimal(0))
    mem = sum((req(c)[1] for c in pod.get("containers") or []), Decimal(0))
    for c in pod.get("initContainers") or []:
        icpu, imem = req(c)
        cpu, mem = max(cpu, icpu), max(mem, imem)
    return cpu, mem


def requests_of(objs: Iterable[dict[str, Any]]) -> tuple[Totals, list[dict[str, Any]]]:
    """Sum of requests of every workload, with a per-workload breakdown.

    Custom resources whose pods are created by an operator count what they ask
    for: Prometheus (``spec.resources``) and FeatureStore (each server's
    ``resources``).
    """
    total = Totals()
    rows: list[dict[str, Any]] = []

    def add(label: str, cpu: Decimal, mem: Decimal, times: int = 1) -> None:
        total.add(cpu, mem, times)
        rows.append({"workload": label, "cpu": float(cpu * times), "memory_mib": float(mem * times / 2**20)})

    for obj in objs:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        spec = obj.get("spec") or {}
        if kind == "Prometheus":
            r = (spec.get("resources") or {}).get("requests") or {}
            add(f"Prometheus/{name}", quantity(r.get("cpu", 0)), quantity(r.get("memory", 0)), int(spec.get("replicas", 1)))
        elif kind == "FeatureStore":
            for label, server in _feast_servers(spec):
                r = (server.get("resources") or {}).get("requests") or {}
                add(f"FeatureStore/{name}/{label}", quantity(r.get("cpu", 0)), quantity(r.get("memory", 0)))
        else:
            for label, pod, replicas in pod_specs(obj):
                cpu, mem = pod_requests(pod)
                add(label, cpu, mem, replicas)
    return total, rows


def _feast_servers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    services = spec.get("services") or {}
    online = (services.get("onlineStore") or {}).get("server")
    if online:
        yield "online", online
    reg = ((services.get("registry") or {}).get("local") or {}).get("server")
    if reg:
        yield "registry", reg
    offline = (services.get("offlineStore") or {}).get("server")
    if offline:
        yield "offline", offline
    ui = services.get("ui")
    if ui:
        yield "ui", ui
