"""Cluster commands: doctor, up, down, status, image build, images list|pull-load, render.

Thin: every command parses flags, calls kindml.cluster.*, prints with emit().
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from kindml.cli.common import OUTPUT_OPTION, Output, emit, progress_enabled, state
from kindml.errors import UsageError


class Target(str, Enum):  # noqa: UP042 (same style as kindml.cli.common.Output)
    kind = "kind"
    local = "local"


class Autoscaler(str, Enum):  # noqa: UP042
    hpa = "hpa"
    keda = "keda"


class CanaryAction(str, Enum):  # noqa: UP042
    canary = "canary"
    promote = "promote"
    rollback = "rollback"


def _workspace_root() -> Path:
    return Path(state().config().home)


def _progress(output: Output):
    if not progress_enabled(output):
        return None

    def show(event: str, stage: str, step, detail: str) -> None:
        if event == "stage":
            sys.stderr.write(f"== {stage}: {detail}\n")
        elif event == "step":
            sys.stderr.write(f"   $ {detail}\n")
        elif event == "step-skip":
            sys.stderr.write(f"   - {step.id}: {detail}\n")
        elif event == "step-done" and detail != "done":
            sys.stderr.write(f"     {detail}\n")
        elif event == "start":
            sys.stderr.write(f"kindml {stage}: {detail}\n")
        sys.stderr.flush()

    return show


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        target: Target = typer.Option(Target.kind, "--target", "-t", help="What to check for: the kind cluster (docker, kind, kubectl, memory, inotify, arch, disk, ports) or the local target."),
        gpu: bool = typer.Option(False, "--gpu", help="Check against kind-config.gpu.yaml."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Pre-flight checks: each failure with its fix. Exits non-zero when `up` would fail."""
        from kindml.cluster import lifecycle

        report = lifecycle.run_doctor(_workspace_root(), target.value, gpu)
        emit(report.to_dict(), output, report.to_text())
        report.raise_if_failed()

    @app.command("up")
    def up_cmd(
        gpu: bool = typer.Option(False, "--gpu", help="GPU worker (kind-config.gpu.yaml, NVIDIA device plugin, overlays/kind-gpu); with --context: the NVIDIA device plugin only."),
        keda: bool = typer.Option(False, "--keda", help="Also install KEDA (pinned in manifests/upstream.yaml) for predictor autoscaling on a Prometheus query."),
        context: str | None = typer.Option(None, "--context", help="Install onto this existing cluster (kubeconfig context) instead of creating the kind cluster."),  # noqa: UP007
        node_ports: bool = typer.Option(False, "--node-ports", help="With --context: keep the UIs on NodePorts (default: ClusterIP + kubectl port-forward)."),
        storage_class: str | None = typer.Option(None, "--storage-class", help="With --context: StorageClass of kindml's PersistentVolumeClaims (default: the cluster's default)."),  # noqa: UP007
        image: str | None = typer.Option(None, "--image", help="With --context: the kindml runtime image in a registry the cluster pulls from."),  # noqa: UP007
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the exact ordered plan (commands and objects) and the resource requests; run nothing."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Create the kind cluster (if absent), or use an existing one (--context), and install the platform, stage by stage. Idempotent; resumes after a failed stage."""
        from pydantic import ValidationError

        from kindml.cluster import lifecycle
        from kindml.cluster.plan import ClusterTarget

        addons = frozenset({"keda"} if keda else set())
        target = None
        if context is not None:
            try:
                target = ClusterTarget(context=context, node_ports=node_ports, storage_class=storage_class, image=image)
            except ValidationError as exc:
                raise UsageError(f"invalid existing-cluster option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}",
                                 "Pass a non-empty --context, --storage-class and --image.") from None
        elif node_ports or storage_class or image:
            raise UsageError("--node-ports, --storage-class and --image apply to an existing cluster",
                             "Add --context NAME (a kubeconfig context), or drop them for the kind cluster.")
        plan = lifecycle.up_plan(gpu, addons=addons, target=target)
        if dry_run:
            emit(plan.to_dict(), output, plan.to_text())
            return
        ws = _workspace_root()

        def preflight() -> None:
            report = lifecycle.run_doctor(ws, "kind", gpu)
            if not report.ok:
                sys.stderr.write(report.to_text() + "\n")
            report.raise_if_failed()

        platform = lifecycle.platform_objects(gpu, target=target) if target is not None else None
        result = lifecycle.execute(plan, ws, progress=_progress(output), doctor_check=preflight if target is None else None, platform=platform)
        result["urls"] = plan.urls
        if plan.urls:
            lines = ["kindml up: done. Open:"] + [f"  {k:<15} {v}" for k, v in plan.urls.items()]
        else:
            lines = [f"kindml up: done on context {plan.context}. The UIs are ClusterIP Services: "
                     f"kubectl --context {plan.context} -n kindml-monitoring port-forward svc/grafana 3000 (docs/cluster.md)."]
        lines.append("Grafana login: admin / the password in <workspace>/cluster/secrets.json")
        emit(result, output, "\n".join(lines))

    @app.command("down")
    def down_cmd(
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be deleted; run nothing."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """Delete the kind cluster and everything in it (the local workspace stays). Idempotent."""
        from kindml.cluster import lifecycle

        plan = lifecycle.down_plan()
        if dry_run:
            emit(plan.to_dict(), output, plan.to_text())
            return
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("`kindml down` deletes the cluster and needs confirmation", "Pass --yes to confirm in scripts.")
            typer.confirm(f"Delete the kind cluster '{plan.cluster}' and everything in it?", abort=True)
        result = lifecycle.execute(plan, _workspace_root(), progress=_progress(output))
        emit(result, output, f"kindml down: cluster '{plan.cluster}' is gone.")

    @app.command("status")
    def status_cmd(output: Output = OUTPUT_OPTION) -> None:
        """Is the cluster there, is each component ready, and the UI URLs."""
        from kindml.cluster import paths, status
        from kindml.cluster.upstream import load_upstream

        st = status.cluster_status(load_upstream(paths.manifests_dir() / "upstream.yaml"))
        emit(st, output, status.status_text(st))

    image_app = typer.Typer(help="The kindml runtime image (every component, RayJob and predictor runs it).", no_args_is_help=True)
    app.add_typer(image_app, name="image")

    @image_app.command("build")
    def image_build(
        load: bool = typer.Option(True, "--load/--no-load", help="kind load the image when the cluster exists."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands only."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """docker build the runtime image from the repo's Dockerfile, then kind load it."""
        from kindml.cluster import bundle, paths

        res = bundle.build_runtime_image(paths.repo_root(), load=load, dry_run=dry_run)
        text = "\n".join(res["commands"]) if dry_run else f"built {res['image']}" + (" and loaded it into kind" if res.get("loaded_into_kind") else "")
        emit(res, output, text)

    images_app = typer.Typer(help="Every image the platform needs; the offline bundle.", no_args_is_help=True)
    app.add_typer(images_app, name="images")

    @images_app.command("list")
    def images_list(
        resolve: bool = typer.Option(False, "--resolve", help="Render the pinned upstream manifests (needs network) and cache their images in the workspace."),
        gpu: bool = typer.Option(False, "--gpu", help="Include the GPU components."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """List the images of our manifests and templates, and (resolved or cached) of the upstream components."""
        from kindml.cluster import bundle, lifecycle, paths
        from kindml.cluster.upstream import load_upstream

        up = load_upstream(paths.manifests_dir() / "upstream.yaml")
        res = bundle.image_list(lifecycle.platform_objects(gpu), up, lifecycle.state_dir(_workspace_root()), gpu, resolve)
        lines = ["ours:"] + [f"  {i}" for i in res["ours"]] + [f"kind node: {res['kind_node']}", "upstream:"]
        if res["upstream"] is None:
            lines.append(f"  ({res['note']})")
        else:
            for comp, imgs in res["upstream"].items():
                lines.append(f"  {comp}:")
                lines += [f"    {i}" for i in imgs]
        if res["problems"]:
            lines += ["not pinned:"] + [f"  {p}" for p in res["problems"]]
        emit(res, output, "\n".join(lines))

    @images_app.command("pull-load")
    def images_pull_load(
        gpu: bool = typer.Option(False, "--gpu", help="Include the GPU components."),
        ours_only: bool = typer.Option(False, "--ours-only", help="Only our images (no upstream list needed)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """docker pull every image once, then kind load it, so a later `up` needs no network for images."""
        from kindml.cluster import bundle, lifecycle, paths
        from kindml.cluster.upstream import load_upstream
        from kindml.errors import PrerequisiteMissing
        from kindml.images import RUNTIME_IMAGE

        up = load_upstream(paths.manifests_dir() / "upstream.yaml")
        res = bundle.image_list(lifecycle.platform_objects(gpu), up, lifecycle.state_dir(_workspace_root()), gpu, resolve=False)
        imgs = list(res["ours"])
        if not ours_only:
            if res["upstream"] is None:
                raise PrerequisiteMissing("the upstream image list is not resolved yet", "Run `kindml images list --resolve` once with network access, or pass --ours-only.")
            imgs += [i for v in res["upstream"].values() for i in v]
        say = (lambda m: sys.stderr.write(m + "\n")) if progress_enabled(output) else None
        loaded = bundle.pull_and_load(sorted(set(imgs)), skip={RUNTIME_IMAGE}, progress=say)
        emit({"loaded": loaded}, output, f"loaded {len(loaded)} images into kind (the runtime image is loaded by `kindml image build`)")

    render_app = typer.Typer(help="Render manifests: the platform overlay and per-run objects (InferenceService, RayJob).", no_args_is_help=True)
    app.add_typer(render_app, name="render")

    def _print_objects(objs: list[dict], output: Output) -> None:
        from kindml.cluster.templates import to_yaml

        emit(objs if len(objs) != 1 else objs[0], output, to_yaml(*objs))

    @render_app.command("platform")
    def render_platform(gpu: bool = typer.Option(False, "--gpu", help="The kind-gpu overlay."), output: Output = OUTPUT_OPTION) -> None:
        """The overlay `up` applies (kubectl kustomize, offline)."""
        from kindml.cluster import lifecycle

        _print_objects(lifecycle.platform_objects(gpu), output)

    @render_app.command("isvc")
    def render_isvc(
        champion_version: str = typer.Option(..., "--champion-version", help="Registry version serving now."),
        champion_uri: str = typer.Option(..., "--champion-uri", help="MLflow URI of its exported model, e.g. models:/my-model/3."),
        challenger_version: str | None = typer.Option(None, "--challenger-version", help="Candidate version for the canary."),  # noqa: UP007
        challenger_uri: str | None = typer.Option(None, "--challenger-uri", help="MLflow URI of the candidate."),  # noqa: UP007
        traffic: int = typer.Option(10, "--traffic", min=0, max=100, help="Percent of traffic to the canary."),
        action: CanaryAction = typer.Option(CanaryAction.canary, "--action", help="canary: champion + challenger; promote: challenger becomes the champion; rollback: champion only."),
        replicas: int = typer.Option(1, "--replicas", min=1, max=10, help="Champion replicas (without --autoscale). The canary's pods are sized by KServe from --traffic."),
        name: str = typer.Option(..., "--name", help="InferenceService (model) name: the registered model's, e.g. ticket-intent."),
        autoscale: Autoscaler | None = typer.Option(None, "--autoscale", help="Autoscale the champion: hpa (cpu/memory, needs metrics-server) or keda (Prometheus request rate, needs `up --keda`)."),  # noqa: UP007
        min_replicas: int = typer.Option(1, "--min-replicas", min=1, max=20),
        max_replicas: int = typer.Option(3, "--max-replicas", min=1, max=50),
        scale_metric: str = typer.Option("cpu", "--scale-metric", help="hpa: cpu or memory."),
        scale_target: int = typer.Option(80, "--scale-target", help="hpa: cpu utilisation % or memory MiB per pod."),
        rps_per_replica: float = typer.Option(50.0, "--rps-per-replica", help="keda: requests per second one replica should take."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """The predictor InferenceService (KServe Standard mode), with canary, promotion or rollback, optionally autoscaled."""
        from pydantic import ValidationError

        from kindml.cluster import templates

        if (challenger_version is None) != (challenger_uri is None):
            raise UsageError("--challenger-version and --challenger-uri go together", "Pass both, or neither for a champion-only InferenceService.")
        if action != CanaryAction.canary and challenger_version is None:
            raise UsageError(f"--action {action.value} needs the challenger", "Pass --challenger-version and --challenger-uri.")
        scaling = None
        if autoscale is not None:
            try:
                scaling = templates.Autoscaling(kind=autoscale.value, min_replicas=min_replicas, max_replicas=max_replicas, scale_metric=scale_metric,
                                                scale_target=scale_target, threshold=rps_per_replica)
            except ValidationError as exc:
                raise UsageError(f"invalid autoscaling: {exc.errors()[0]['msg']}", "See `kindml render isvc --help`.") from None
        champ = templates.ModelVersion(version=champion_version, model_uri=champion_uri, replicas=replicas)
        chall = templates.ModelVersion(version=challenger_version, model_uri=challenger_uri) if challenger_version else None
        isvc = templates.render_inferenceservice(champ, chall, traffic, name=name, autoscaling=scaling)
        if action == CanaryAction.promote:
            isvc = templates.promote(isvc)
        elif action == CanaryAction.rollback:
            isvc = templates.rollback(isvc)
        _print_objects([isvc], output)

    @render_app.command("split")
    def render_split(
        route: list[str] = typer.Option(..., "--route", help="VERSION=WEIGHT, e.g. --route 3=90 --route 4=10 (weights sum to 100)."),
        name: str = typer.Option(..., "--name", help="InferenceService whose predictor versions are split (the registered model's name)."),
        graph: str | None = typer.Option(None, "--graph", help="InferenceGraph name (default: <name>-split)."),  # noqa: UP007
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """An exact per-request weighted split between predictor versions (KServe InferenceGraph Splitter)."""
        from kindml.cluster import templates

        routes = []
        for r in route:
            version, sep, weight = r.partition("=")
            if not sep or not weight.strip().isdigit() or not version.strip():
                raise UsageError(f"--route {r!r} is not VERSION=WEIGHT", "Example: --route 3=90 --route 4=10")
            routes.append((version.strip(), int(weight)))
        _print_objects([templates.render_traffic_split(graph or f"{name}-split", routes, model_name=name)], output)

    @render_app.command("rayjob")
    def render_rayjob(
        run_id: str = typer.Option(..., "--run-id", help="Pipeline run id (names the RayJob)."),
        entrypoint: str = typer.Option(..., "--entrypoint", help="Command the Ray job runs (in the runtime image)."),
        workers: int = typer.Option(2, "--workers", min=1, max=16),
        cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker"),
        memory_per_worker: str = typer.Option("2Gi", "--memory-per-worker"),
        gpus: int = typer.Option(0, "--gpus", min=0, max=8, help="GPUs per worker (needs `up --gpu`)."),
        output: Output = OUTPUT_OPTION,
    ) -> None:
        """The training RayJob (KubeRay): head + DDP workers in the runtime image, deleted when done."""
        from kindml.cluster import templates

        p = templates.RayJobParams(run_id=run_id, entrypoint=entrypoint, workers=workers, cpus_per_worker=cpus_per_worker, memory_per_worker=memory_per_worker, gpus_per_worker=gpus)
        _print_objects([templates.render_rayjob(p)], output)
