"""The inputs of the manifest security scan (`make security`): everything kindml renders for a cluster, as plain files.

Scanners such as checkov check Pods and the built-in workload kinds and pass
over custom resources. The pod specs kindml renders inside custom resources
(the InferenceService's predictor and canary, the RayJob's submitter, head and
worker groups) are therefore also written as *pod views*: one Deployment per
pod spec, named ``view-<kind>-<name>-<role>``, so every workload check applies
to them. Justified skips for the per-run templates live in ``.checkov.yaml``
(global) or in :data:`VIEW_SKIPS` (annotations on the views), each with its
reason; docs/security.md lists them.

``python -m kindml.cluster.scaninputs --out DIR`` writes::

    kind.yaml  kind-gpu.yaml             the two overlays (kubectl kustomize, offline)
    inferenceservice.yaml  rayjob.yaml  rayjob-gpu.yaml   the per-run templates as rendered
    views.yaml                           pod views of the custom resources above
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

# Fields of a Kubernetes PodSpec that may appear in a KServe component spec (predictor / canary).
POD_SPEC_FIELDS = (
    "containers", "initContainers", "volumes", "securityContext", "serviceAccountName", "automountServiceAccountToken",
    "nodeSelector", "tolerations", "affinity", "imagePullSecrets", "priorityClassName", "hostNetwork", "hostPID", "hostIPC",
    "dnsPolicy", "runtimeClassName", "enableServiceLinks", "shareProcessNamespace", "hostAliases", "restartPolicy",
    "terminationGracePeriodSeconds", "topologySpreadConstraints", "schedulerName", "preemptionPolicy",
)

# Checks that do not apply to a pod view, with the reason (checkov skip annotations on every view).
VIEW_SKIPS: dict[str, str] = {
    "CKV_K8S_43": "kindml-runtime is built locally and side-loaded into kind (`kindml image build`): it has no registry digest; "
                  "the tag is the package version",
    "CKV_K8S_15": "images are side-loaded with `kind load`: pull policy Always would fail (no registry holds them)",
}


# Role-specific skips of the RayJob's pods.
_KUBERAY_PROBES = "KubeRay injects readiness and liveness probes into Ray head and worker containers (ENABLE_PROBES_INJECTION, on by default)"
_RUN_TO_COMPLETION = "the submitter is a run-to-completion pod (restartPolicy Never, like a Job): it serves nothing to probe"
ROLE_SKIPS: dict[str, dict[str, str]] = {
    "head": {"CKV_K8S_8": _KUBERAY_PROBES, "CKV_K8S_9": _KUBERAY_PROBES},
    "worker": {"CKV_K8S_8": _KUBERAY_PROBES, "CKV_K8S_9": _KUBERAY_PROBES},
    "submitter": {"CKV_K8S_8": _RUN_TO_COMPLETION, "CKV_K8S_9": _RUN_TO_COMPLETION},
}


def _pod_view(kind: str, name: str, role: str, namespace: str | None, labels: dict[str, str], pod_spec: dict[str, Any],
              template_labels: dict[str, str] | None = None) -> dict[str, Any]:
    view = f"view-{kind.lower()}-{name}-{role}"
    tpl_labels = {**(template_labels or {}), "kindml.io/view": view}
    skips = {**VIEW_SKIPS, **(ROLE_SKIPS.get(role.split("-")[0], {}) if kind == "RayJob" else {})}
    ann = {f"checkov.io/skip{i}": f"{cid}={why}" for i, (cid, why) in enumerate(skips.items(), start=1)}
    ann["kindml.io/view-of"] = f"{kind}/{name} {role}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": view, **({"namespace": namespace} if namespace else {}), "labels": dict(labels), "annotations": ann},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"kindml.io/view": view}},
                 "template": {"metadata": {"labels": tpl_labels}, "spec": copy.deepcopy(pod_spec)}},
    }


def pod_views(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Deployments carrying the pod specs inside an InferenceService or RayJob (other objects: none)."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    name, ns, labels = meta.get("name", "x"), meta.get("namespace"), meta.get("labels") or {}
    spec = obj.get("spec") or {}
    out: list[dict[str, Any]] = []
    if kind == "InferenceService":
        components = [("predictor", spec.get("predictor"))] + [(f"canary{i}", c.get("predictor")) for i, c in enumerate(spec.get("canary") or [])]
        components += [(k, spec.get(k)) for k in ("transformer", "explainer")]
        for role, comp in components:
            if isinstance(comp, dict) and comp.get("containers"):
                pod = {k: comp[k] for k in POD_SPEC_FIELDS if k in comp}
                out.append(_pod_view(kind, name, role, ns, labels, pod, comp.get("labels")))
    elif kind == "RayJob":
        sub = spec.get("submitterPodTemplate")
        if isinstance(sub, dict):
            out.append(_pod_view(kind, name, "submitter", ns, labels, sub.get("spec") or {}, (sub.get("metadata") or {}).get("labels")))
        rc = spec.get("rayClusterSpec") or {}
        head = (rc.get("headGroupSpec") or {}).get("template")
        if isinstance(head, dict):
            out.append(_pod_view(kind, name, "head", ns, labels, head.get("spec") or {}, (head.get("metadata") or {}).get("labels")))
        for g in rc.get("workerGroupSpecs") or []:
            tpl = g.get("template") or {}
            out.append(_pod_view(kind, name, f"worker-{g.get('groupName', 'workers')}", ns, labels, tpl.get("spec") or {},
                                 (tpl.get("metadata") or {}).get("labels")))
    return out


def templates_for_scan() -> dict[str, list[dict[str, Any]]]:
    """The per-run templates with representative parameters: a canary InferenceService, a CPU and a GPU RayJob."""
    from kindml.cluster import templates

    champ = templates.ModelVersion(version="3", model_uri="models:/model/3")
    chall = templates.ModelVersion(version="4", model_uri="models:/model/4")
    job = {"run_id": "scan", "entrypoint": "python -m kindml.model.train", "workers": 2}
    return {
        "inferenceservice": [templates.render_inferenceservice(champ, chall, 10)],
        "rayjob": [templates.render_rayjob(templates.RayJobParams(**job))],
        "rayjob-gpu": [templates.render_rayjob(templates.RayJobParams(**job, gpus_per_worker=1))],
    }


def write_inputs(out_dir: Path, root: Path | None = None) -> dict[str, Path]:
    """Render everything into ``out_dir`` (see the module doc); returns name → file."""
    from kindml.cluster import lifecycle
    from kindml.cluster.templates import to_yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    docs: dict[str, list[dict[str, Any]]] = {
        "kind": lifecycle.platform_objects(gpu=False, root=root),
        "kind-gpu": lifecycle.platform_objects(gpu=True, root=root),
        **templates_for_scan(),
    }
    views = []
    for name in ("inferenceservice", "rayjob", "rayjob-gpu"):
        for v in (v for o in docs[name] for v in pod_views(o)):
            if name.endswith("-gpu"):  # same object name as the CPU RayJob's views
                v["metadata"]["name"] += "-gpu"
            views.append(v)
    docs["views"] = views
    written: dict[str, Path] = {}
    for name, objs in docs.items():
        path = out_dir / f"{name}.yaml"
        path.write_text(to_yaml(*objs), encoding="utf-8")
        written[name] = path
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kindml.cluster.scaninputs", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the rendered files into")
    args = ap.parse_args(argv)
    for name, path in write_inputs(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
