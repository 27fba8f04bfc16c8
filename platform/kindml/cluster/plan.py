"""The ordered plans of ``kindml up`` and ``kindml down``.

``up`` installs in strict dependency order, each wait explicit and bounded:

1. ``preflight``        doctor checks (in-process; failures stop here)
2. ``cluster``          create the kind cluster if absent
3. ``images``           load the runtime image into the nodes
4. ``crds``             CRD-only upstream sources
5. ``crds-established`` wait for those CRDs to be Established
6. ``cert-manager``     cert-manager, then wait until its webhook is Available
7. ``controllers``      the other upstream controllers (+ our KServe config)
8. ``controllers-ready``wait for their CRDs Established and Deployments Available
9. ``platform``         namespaces, generated secrets, our overlay
10. ``platform-ready``  wait for our Deployments, Prometheus and the FeatureStore

No sleeps, no "apply until it sticks": every step either succeeds, or fails
with its hint and ``up`` can be run again to resume at that step.

``up --context NAME`` (an existing cluster, :class:`ClusterTarget`) is the same
plan without anything kind-only: no Docker/kind pre-flight (the API server,
nodes and RBAC are checked instead), no ``kind create``, no ``kind load`` (the
runtime image comes from a registry), and the platform is
``overlays/cluster`` (no node pools, NodePorts optional, storage class
configurable) applied from stdin after rendering.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kindml.cluster import endpoints, objects
from kindml.cluster.upstream import Component, Upstream
from kindml.images import RUNTIME_IMAGE

SHORT, MEDIUM, LONG = 120, 300, 900


class Guard(BaseModel):
    """Skip the step when ``argv`` succeeds and its stdout has ``line`` as one
    of its lines (or, with ``absent``, when it does not)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    argv: list[str]
    line: str
    absent: bool = False


class ClusterTarget(BaseModel):
    """An existing Kubernetes cluster instead of the kind cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str = Field(min_length=1, description="kubeconfig context of the cluster; every kubectl call names it.")
    node_ports: bool = Field(False, description="Keep the UIs' NodePort Services (default: ClusterIP, reach them with kubectl port-forward).")
    storage_class: str | None = Field(None, min_length=1, description="StorageClass of kindml's PersistentVolumeClaims (default: the cluster's default class).")
    image: str | None = Field(None, min_length=1, description="The kindml runtime image in a registry the cluster pulls from.")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str
    action: Literal["command", "doctor"] = "command"
    argv: list[str] = Field(default_factory=list)
    stdin: Literal["secrets", "platform"] | None = None
    document: str | None = Field(None, description="A literal manifest fed to stdin (e.g. a Namespace).")
    objects: list[str] = Field(default_factory=list)
    skip_if: Guard | None = None
    timeout_s: int = SHORT
    hint: str = ""

    def display(self) -> str:
        if self.action == "doctor":
            return "kindml doctor --target kind (in-process)"
        cmd = " ".join(self.argv)
        if self.stdin == "secrets":
            return cmd + " < generated Secret manifests"
        if self.stdin == "platform":
            return cmd + " < rendered platform overlay"
        if self.document is not None:
            return cmd + " < " + " ".join(self.objects)
        return cmd


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    timeout_s: int
    steps: list[Step]


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["up", "down"]
    cluster: str = endpoints.CLUSTER_NAME
    context: str = endpoints.KUBE_CONTEXT
    target: Literal["kind", "cluster"] = "kind"
    gpu: bool = False
    addons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    stages: list[Stage]
    requests: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    urls: dict[str, str] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        body = [s.model_dump(mode="json") for s in self.stages]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def state_name(self) -> str:
        """Name of the resume-state file: one per kind plan, one per existing-cluster context."""
        if self.target == "kind":
            return self.name
        return f"{self.name}-context-{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.context)}"

    def step_ids(self) -> list[str]:
        return [step.id for st in self.stages for step in st.steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.name,
            "target": self.target,
            "cluster": self.cluster,
            "context": self.context,
            "gpu": self.gpu,
            "addons": self.addons,
            "warnings": self.warnings,
            "fingerprint": self.fingerprint(),
            "stages": [
                {
                    "name": st.name,
                    "description": st.description,
                    "timeout_s": st.timeout_s,
                    "steps": [
                        {"id": s.id, "description": s.description, "command": s.display(), "objects": s.objects, "timeout_s": s.timeout_s}
                        for s in st.steps
                    ],
                }
                for st in self.stages
            ],
            "requests": self.requests,
            "versions": self.versions,
            "urls": self.urls,
        }

    def to_text(self) -> str:
        where = f"kind cluster '{self.cluster}'" if self.target == "kind" else "existing cluster"
        extras = (", GPU" if self.gpu else "") + "".join(f", {a}" for a in self.addons)
        lines = [f"kindml {self.name} plan for {where} (context {self.context}{extras}):"]
        lines += [f"warning: {w}" for w in self.warnings]
        for i, st in enumerate(self.stages, 1):
            lines.append(f"\n{i:>2}. {st.name}  [timeout {st.timeout_s}s]  {st.description}")
            for s in st.steps:
                lines.append(f"      $ {s.display()}")
                for obj in s.objects:
                    lines.append(f"          - {obj}")
        if self.requests:
            t = self.requests["total"]
            lines.append(
                f"\nresource requests of everything `up` installs: {t['cpu_cores']} CPU, {t['memory_gib']} GiB "
                f"(ours {self.requests['ours']['cpu_cores']} CPU / {self.requests['ours']['memory_gib']} GiB, "
                f"upstream {self.requests['upstream']['cpu_cores']} CPU / {self.requests['upstream']['memory_gib']} GiB; "
                f"budget {self.requests['budget']['cpu_cores']} CPU / {self.requests['budget']['memory_gib']} GiB)"
            )
        return "\n".join(lines)


def kubectl(*args: str, context: str = endpoints.KUBE_CONTEXT) -> list[str]:
    return ["kubectl", "--context", context, *args]


def _ssa(flag: str, target: str, context: str = endpoints.KUBE_CONTEXT) -> list[str]:
    return kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=kindml", flag, target, context=context)


def _wait_crds(names: list[str], timeout: int, context: str = endpoints.KUBE_CONTEXT) -> list[str]:
    return kubectl("wait", "--for=condition=Established", f"--timeout={timeout}s", *[f"crd/{n}" for n in names], context=context)


def _wait_deployments(ns: str, names: list[str], timeout: int, context: str = endpoints.KUBE_CONTEXT) -> list[str]:
    return kubectl("-n", ns, "wait", "--for=condition=Available", f"--timeout={timeout}s", *[f"deployment/{n}" for n in names], context=context)


def namespace_document(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def _component_steps(c: Component, context: str = endpoints.KUBE_CONTEXT) -> list[Step]:
    steps: list[Step] = []
    if c.create_namespace:
        # the install source has no Namespace object (e.g. KServe's kserve.yaml: see manifests/upstream-audit.yaml)
        steps.append(Step(id=f"{c.name}:namespace", description=f"namespace {c.namespace} (the {c.name} manifest does not create it)",
                          argv=_ssa("-f", "-", context), document=namespace_document(c.namespace), objects=[f"Namespace/{c.namespace}"]))
    steps += [
        Step(
            id=f"{c.name}:install:{i}",
            description=f"apply {c.name} {c.version} ({s.mode})",
            argv=_ssa("-f" if s.mode == "file" else "-k", s.url, context),
            objects=[f"{c.name} {c.version}: {s.url}"],
            timeout_s=MEDIUM,
            hint=f"Applying {c.name} needs network access to fetch {s.url}. Offline: see `kindml images pull-load` and docs/cluster.md.",
        )
        for i, s in enumerate(c.install)
    ]
    return steps


def _wait_component(c: Component, context: str = endpoints.KUBE_CONTEXT) -> list[Step]:
    steps: list[Step] = []
    if c.crd_names:
        steps.append(Step(id=f"{c.name}:crds-established", description=f"{c.name} CRDs Established", argv=_wait_crds(c.crd_names, SHORT, context), timeout_s=SHORT + 10))
    if c.deployments:
        steps.append(
            Step(
                id=f"{c.name}:available",
                description=f"{c.name} Deployments Available",
                argv=_wait_deployments(c.namespace, c.deployments, c.timeout_s, context),
                timeout_s=c.timeout_s + 10,
                hint=f"Look at `kubectl --context {context} -n {c.namespace} get pods` and `describe` the pending one (image pulls, memory).",
            )
        )
    for ds in c.daemonsets:
        steps.append(
            Step(
                id=f"{c.name}:{ds}:rollout",
                description=f"{c.name} DaemonSet {ds} rolled out",
                argv=kubectl("-n", c.namespace, "rollout", "status", f"daemonset/{ds}", f"--timeout={c.timeout_s}s", context=context),
                timeout_s=c.timeout_s + 10,
            )
        )
    return steps


def _describe(objs: list[dict[str, Any]]) -> list[str]:
    out = []
    for o in objs:
        md = o.get("metadata") or {}
        ns = md.get("namespace")
        out.append(f"{o.get('kind')}/{(ns + '/') if ns else ''}{md.get('name')}")
    return out


def requests_summary(our_objects: list[dict[str, Any]], upstream: Upstream, gpu: bool, addons: frozenset[str] = frozenset()) -> dict[str, Any]:
    ours, rows = objects.requests_of(our_objects)
    up = objects.Totals()
    up_rows = []
    for c in upstream.selected(gpu, addons):
        for r in c.requests:
            cpu, mem = objects.quantity(r.cpu), objects.quantity(r.memory)
            up.add(cpu, mem)
            up_rows.append({"component": c.name, "workload": r.workload, "cpu": float(cpu), "memory_mib": float(mem / 2**20), "basis": r.basis})
    total = objects.Totals(ours.cpu + up.cpu, ours.memory + up.memory)
    return {
        "cpu_cores": total.cpu_cores,
        "memory_gib": total.memory_gib,
        "total": total.as_dict(),
        "ours": ours.as_dict(),
        "upstream": up.as_dict(),
        "budget": {"cpu_cores": 3.0, "memory_gib": 6.0},
        "ours_breakdown": rows,
        "upstream_breakdown": up_rows,
        "upstream_estimates": sum(1 for r in up_rows if r["basis"] == "estimate"),
    }


def build_up_plan(
    upstream: Upstream,
    our_objects: list[dict[str, Any]],
    kind_config: Path,
    overlay: Path,
    manifests_root: Path,
    gpu: bool = False,
    addons: frozenset[str] = frozenset(),
    target: ClusterTarget | None = None,
) -> Plan:
    """The ``up`` plan: on the kind cluster (``target`` None) or on an existing cluster."""
    ctx = target.context if target else endpoints.KUBE_CONTEXT
    comps = upstream.selected(gpu, addons)
    cert = [c for c in comps if c.stage == "cert-manager"]
    ctrl = [c for c in comps if c.stage == "controllers"]
    crd_sources = [(c, s) for c in comps for s in c.crds]
    crd_names = sorted({n for c, _ in crd_sources for n in c.crd_names} | {n for c in cert for n in c.crd_names})

    if target is None:
        cluster_guard = Guard(argv=["kind", "get", "clusters"], line=endpoints.CLUSTER_NAME)
        head = [
            Stage(
                name="preflight",
                description="docker, kind, kubectl, memory, inotify, disk and host ports",
                timeout_s=SHORT,
                steps=[Step(id="preflight:doctor", description="pre-flight checks", action="doctor", hint="Fix the failed checks above.")],
            ),
            Stage(
                name="cluster",
                description=f"kind cluster '{endpoints.CLUSTER_NAME}' (created only if absent)",
                timeout_s=MEDIUM,
                steps=[
                    Step(
                        id="cluster:create",
                        description="create the kind cluster",
                        argv=["kind", "create", "cluster", "--name", endpoints.CLUSTER_NAME, "--config", str(kind_config), "--wait", "180s"],
                        objects=[f"kind Cluster/{endpoints.CLUSTER_NAME} ({kind_config.name}, node image {upstream.kind.node_image})"],
                        skip_if=cluster_guard,
                        timeout_s=MEDIUM,
                        hint="`kind create cluster` failed: read its output above; the usual causes are Docker memory, inotify limits and ports in use (`kindml doctor --target kind`).",
                    ),
                    Step(id="cluster:reachable", description="API server answers", argv=kubectl("cluster-info"), timeout_s=60),
                    Step(
                        id="cluster:nodes-ready",
                        description="all nodes Ready",
                        argv=kubectl("wait", "--for=condition=Ready", "node", "--all", f"--timeout={SHORT}s"),
                        timeout_s=SHORT + 10,
                    ),
                ],
            ),
            Stage(
                name="images",
                description="load the kindml runtime image into the nodes (no registry needed)",
                timeout_s=MEDIUM,
                steps=[
                    Step(
                        id="images:runtime-present",
                        description="runtime image is built locally",
                        argv=["docker", "image", "inspect", "--format", "{{.Id}}", RUNTIME_IMAGE],
                        timeout_s=60,
                        hint="Build it first: `kindml image build` (docker build + kind load).",
                    ),
                    Step(
                        id="images:runtime-load",
                        description="kind load docker-image",
                        argv=["kind", "load", "docker-image", RUNTIME_IMAGE, "--name", endpoints.CLUSTER_NAME],
                        objects=[f"image {RUNTIME_IMAGE}"],
                        timeout_s=MEDIUM,
                    ),
                ],
            ),
        ]
    else:
        head = [
            Stage(
                name="preflight",
                description=f"the existing cluster behind context '{ctx}': API server, nodes, and the rights to install cluster-wide objects",
                timeout_s=SHORT + 70,
                steps=[
                    Step(id="cluster:reachable", description="API server answers", argv=kubectl("cluster-info", context=ctx), timeout_s=60,
                         hint=f"Check the context name (`kubectl config get-contexts`) and that `kubectl --context {ctx} get nodes` works."),
                    Step(id="cluster:nodes-ready", description="all nodes Ready", argv=kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s", context=ctx),
                         timeout_s=70),
                    Step(id="cluster:can-install", description="may create CRDs and cluster roles (cluster-admin)",
                         argv=kubectl("auth", "can-i", "create", "customresourcedefinitions.apiextensions.k8s.io", context=ctx), timeout_s=30,
                         hint="Installing operators needs cluster-admin on this cluster; ask its administrator, or use the kind target."),
                ],
            ),
        ]

    platform_step = (
        Step(
            id="platform:overlay",
            description=f"overlay {overlay.name}",
            argv=_ssa("-k", str(overlay)),
            objects=_describe(our_objects),
            timeout_s=MEDIUM,
            hint="A webhook or CRD may not be ready: `kindml status`, then run `kindml up` again to resume here.",
        )
        if target is None
        else Step(
            id="platform:overlay",
            description=f"overlay {overlay.name}, rendered with this target's settings",
            argv=_ssa("-f", "-", ctx),
            stdin="platform",
            objects=_describe(our_objects),
            timeout_s=MEDIUM,
            hint=f"A webhook or CRD may not be ready: check `kubectl --context {ctx} get pods -A`, then run the same `kindml up` again to resume here.",
        )
    )
    stages = [
        *head,
        Stage(
            name="crds",
            description="CRD-only upstream sources",
            timeout_s=MEDIUM,
            steps=[
                Step(
                    id=f"{c.name}:crds:{i}",
                    description=f"{c.name} {c.version} CRDs",
                    argv=_ssa("-f" if s.mode == "file" else "-k", s.url, ctx),
                    objects=[f"{c.name} {c.version}: {s.url}"],
                    timeout_s=MEDIUM,
                    hint=f"Needs network access to fetch {s.url}.",
                )
                for i, (c, s) in enumerate(crd_sources)
            ],
        ),
        Stage(
            name="crds-established",
            description="wait until the CRDs are Established",
            timeout_s=SHORT + 10,
            steps=[Step(id="crds:established", description="CRDs Established", argv=_wait_crds(crd_names, SHORT, ctx), objects=[f"crd/{n}" for n in crd_names], timeout_s=SHORT + 10)],
        ),
        Stage(
            name="cert-manager",
            description="cert-manager controllers, then wait for its webhook (KServe's certificates need it)",
            timeout_s=MEDIUM + SHORT,
            steps=[s for c in cert for s in (*_component_steps(c, ctx), *_wait_component(c, ctx))],
        ),
        Stage(
            name="controllers",
            description=", ".join(
                {"prometheus-operator": "prometheus-operator", "kserve": "KServe (Standard mode)", "kuberay-operator": "KubeRay", "feast-operator": "Feast operator",
                 "kubeflow-pipelines": "Kubeflow Pipelines", "nvidia-device-plugin": "NVIDIA device plugin", "keda": "KEDA"}.get(c.name, c.name)
                for c in ctrl
            ),
            timeout_s=LONG,
            steps=[
                s
                for c in ctrl
                for s in (
                    *_component_steps(c, ctx),
                    *(
                        [
                            Step(
                                id=f"{c.name}:config",
                                description=f"kindml's configuration of {c.name}",
                                argv=_ssa("-k", str(manifests_root / c.config), ctx),
                                objects=[f"ConfigMap/{c.namespace}/inferenceservice-config keys deploy, ingress (field manager kindml)"],
                                timeout_s=SHORT,
                            )
                        ]
                        if c.config
                        else []
                    ),
                )
            ],
        ),
        Stage(
            name="controllers-ready",
            description="wait for the controllers' CRDs Established and Deployments Available",
            timeout_s=LONG + MEDIUM,
            steps=[s for c in ctrl for s in _wait_component(c, ctx)],
        ),
        Stage(
            name="platform",
            description="kindml's own objects: namespaces, generated secrets, then the overlay",
            timeout_s=MEDIUM,
            steps=[
                Step(id="platform:namespaces", description="namespaces", argv=_ssa("-f", str(manifests_root / "base" / "namespaces" / "namespaces.yaml"), ctx),
                     objects=[f"Namespace/{endpoints.NAMESPACE}", f"Namespace/{endpoints.MONITORING_NAMESPACE}"]),
                Step(
                    id="platform:secrets",
                    description="generated secrets (kept in the workspace, never committed)",
                    argv=_ssa("-f", "-", ctx),
                    stdin="secrets",
                    objects=[f"Secret/{endpoints.MONITORING_NAMESPACE}/grafana-admin", f"Secret/{endpoints.NAMESPACE}/feast-online-store"],
                ),
                platform_step,
            ],
        ),
        Stage(
            name="platform-ready",
            description="wait for kindml's services",
            timeout_s=LONG,
            steps=[
                Step(id="platform:kindml-available", description="Redis and MLflow Available", argv=_wait_deployments(endpoints.NAMESPACE, ["redis", "mlflow"], MEDIUM, ctx), timeout_s=MEDIUM + 10),
                Step(id="platform:grafana-available", description="Grafana Available", argv=_wait_deployments(endpoints.MONITORING_NAMESPACE, ["grafana"], MEDIUM, ctx), timeout_s=MEDIUM + 10),
                Step(
                    id="platform:prometheus-available",
                    description="Prometheus Available",
                    argv=kubectl("-n", endpoints.MONITORING_NAMESPACE, "wait", "--for=condition=Available", f"--timeout={MEDIUM}s", "prometheus/kindml", context=ctx),
                    timeout_s=MEDIUM + 10,
                ),
                Step(
                    id="platform:featurestore-ready",
                    description="FeatureStore Ready",
                    argv=kubectl("-n", endpoints.NAMESPACE, "wait", "--for=jsonpath={.status.phase}=Ready", f"--timeout={MEDIUM}s",
                                 f"featurestore/{endpoints.FEATURE_STORE_NAME}", context=ctx),
                    timeout_s=MEDIUM + 10,
                ),
                Step(
                    # the pipeline pods and the predictors are configured with this address (ConfigMap
                    # kindml-runtime-env); if the operator published another one, stop here, not at serving time
                    id="platform:feast-registry-address",
                    description=f"Feast registry server published at {endpoints.FEAST_REGISTRY}",
                    argv=kubectl("-n", endpoints.NAMESPACE, "wait", f"--for=jsonpath={{.status.serviceHostnames.registry}}={endpoints.FEAST_REGISTRY}",
                                 f"--timeout={SHORT}s", f"featurestore/{endpoints.FEATURE_STORE_NAME}", context=ctx),
                    timeout_s=SHORT + 10,
                    hint=("The Feast operator published another registry address: compare "
                          f"`kubectl --context {ctx} -n {endpoints.NAMESPACE} get featurestore {endpoints.FEATURE_STORE_NAME} "
                          "-o jsonpath={.status.serviceHostnames.registry}` with KINDML_FEAST_REGISTRY in manifests/base/kfp/runtime-env.yaml."),
                ),
            ],
        ),
    ]
    image = (target.image if target and target.image else RUNTIME_IMAGE)
    warnings = []
    if target is not None and "/" not in image.split(":")[0]:
        warnings.append(f"the runtime image {image} names no registry: every node must already have it (pass --image REGISTRY/kindml-runtime:TAG)")
    if target is None:
        urls = endpoints.ui_urls()
    elif target.node_ports:
        urls = {k: f"http://<node address>:{p}" for k, p in endpoints.UI_PORTS.items()}
    else:
        urls = {}
    return Plan(
        name="up",
        context=ctx,
        cluster=endpoints.CLUSTER_NAME if target is None else ctx,
        target="kind" if target is None else "cluster",
        gpu=gpu,
        addons=sorted(addons),
        warnings=warnings,
        stages=stages,
        requests=requests_summary(our_objects, upstream, gpu, addons),
        versions={**({"kind": upstream.kind.version, "node_image": upstream.kind.node_image} if target is None else {}),
                  **{c.name: c.version for c in comps}, "runtime_image": image},
        urls=urls,
    )


def build_down_plan() -> Plan:
    return Plan(
        name="down",
        stages=[
            Stage(
                name="cluster-delete",
                description=f"delete the kind cluster '{endpoints.CLUSTER_NAME}' (everything in it goes; the workspace stays)",
                timeout_s=MEDIUM,
                steps=[
                    Step(
                        id="cluster:delete",
                        description="kind delete cluster",
                        argv=["kind", "delete", "cluster", "--name", endpoints.CLUSTER_NAME],
                        objects=[f"kind Cluster/{endpoints.CLUSTER_NAME}"],
                        skip_if=Guard(argv=["kind", "get", "clusters"], line=endpoints.CLUSTER_NAME, absent=True),
                        timeout_s=MEDIUM,
                    )
                ],
            )
        ],
    )
