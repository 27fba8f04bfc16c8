"""Stage ``deploy``: serve the champion with the KServe predictor and smoke-test it (v1 and v2).

Locally a ModelServer process on the workspace's bundle; on the kind target an
InferenceService (a canary next to the serving champion for a new version).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from kindml.config import KindmlConfig
from kindml.errors import ServingError
from kindml.runtime import RuntimeEnv
from kindml.workload.contract import Workload
from kindml.workspace import Workspace


def _post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.loads(r.read())
        return r.status, body, (time.perf_counter() - t0) * 1000


def v2_inputs(instance: dict[str, Any], fields: dict[str, str]) -> list[dict[str, Any]]:
    """One v1 instance as Open Inference Protocol inputs (one 1-D tensor per field)."""
    return [{"name": k, "shape": [1], "datatype": fields.get(k, "BYTES"), "data": [v]} for k, v in instance.items() if k in fields]


def smoke(url: str, model: str, instance: dict[str, Any], fields: dict[str, str], log: Path) -> dict[str, Any]:
    """One request over v1 and v2; every v2 output that the v1 answer also has must agree."""
    code1, v1, ms1 = _post(f"{url}/v1/models/{model}:predict", {"instances": [instance]})
    code2, v2, ms2 = _post(f"{url}/v2/models/{model}/infer", {"inputs": v2_inputs(instance, fields)})
    pred = v1["predictions"][0]
    mismatch = []
    for out in v2.get("outputs", []):
        if out["name"] in pred:
            a, b = pred[out["name"]], out["data"][0]
            same = abs(float(a) - float(b)) <= 1e-5 if isinstance(a, float) else a == b
            if not same:
                mismatch.append(f"{out['name']}: v1 {a!r} vs v2 {b!r}")
    if code1 != 200 or code2 != 200 or mismatch:
        raise ServingError(f"smoke test failed: v1 {code1}, v2 {code2}; " + ("; ".join(mismatch) or "no answer"), f"See {log}.")
    return {"v1_ms": round(ms1, 2), "v2_ms": round(ms2, 2), "prediction": pred, "model_version_reported": v1["model_version"]}


def run(wl: Workload, env: RuntimeEnv, registered_dir: Path, out_dir: Path) -> dict[str, Any]:
    from kindml.serving.bundle import fetch_bundle
    from kindml.serving.server import start_background

    cfg = wl.cfg
    registered = json.loads((registered_dir / "registered.json").read_text(encoding="utf-8"))
    if env.target == "kind":
        return deploy_inferenceservice(cfg, env, registered, out_dir)
    ws = Workspace(Path(env.workspace)).ensure()
    # serve the champion (the new version if the gate promoted it, else the previous champion)
    ref = f"{registered['name']}@{cfg.registry.champion_alias}"
    from kindml import registry as reg

    if reg.resolve(env.mlflow_tracking_uri, registered["name"], alias=cfg.registry.champion_alias) is None:
        if registered.get("awaiting_approval"):  # registry.require_approval (kindml.approvals)
            raise ServingError(f"nothing to serve: {registered['name']} v{registered['version']} waits for approval and there is no earlier champion",
                               f"Approve it: `kindml models approve {registered['name']}@{registered['version']} --reason ...`, then resume this run "
                               f"(`kindml run --resume {(registered.get('tags') or {}).get('kindml.pipeline_run_id', 'RUN_ID')}`) or `kindml serve start`.")
        raise ServingError(
            f"nothing to serve: the gate did not promote {registered['name']} v{registered['version']} and there is no earlier champion",
            "See the evaluation report of this run (the gate's reasons); train with more data or epochs, or lower evaluate.min_score "
            "deliberately. `--no-serve` skips deploy and monitor.",
        )
    bundle = fetch_bundle(cfg, ws, env.mlflow_tracking_uri, ref)
    st = start_background(ws, bundle.folder, bundle.name, bundle.version)
    examples = bundle.examples()
    if not examples:
        raise ServingError(f"{bundle.folder} has no examples.json to smoke-test the predictor with", "Re-export the model with kindml.")
    fields = json.loads((bundle.folder / "workload.json").read_text(encoding="utf-8"))["request_fields"]
    result = {"url": st.url, "pid": st.pid, "model": bundle.name, "version": bundle.version, "model_dir": str(bundle.folder),
              "workload": wl.name, "smoke": smoke(st.url, bundle.name, examples[0], fields, Path(st.log))}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "deployed.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def deploy_inferenceservice(cfg: KindmlConfig, env: RuntimeEnv, registered: dict[str, Any], out_dir: Path, canary_percent: int = 10,
                            timeout_s: float = 600.0) -> dict[str, Any]:
    """Kind target: create the InferenceService, or add the promoted version as a canary of the serving champion.

    Promotion of the canary (or rollback) is ``kindml.cluster.templates.promote``/``rollback`` applied the same way.
    Runs in the pipeline's pod with the runner's RBAC (InferenceServices in the kindml namespace).
    """
    from kubernetes import client, config

    from kindml.cluster import endpoints
    from kindml.cluster.templates import ModelVersion, render_inferenceservice

    if registered.get("awaiting_approval"):  # registry.require_approval (kindml.approvals)
        raise ServingError(f"{registered['name']} v{registered['version']} waits for approval; the serving champion stays",
                           f"Approve it: `kindml models approve {registered['name']}@{registered['version']} --reason ...` moves the champion alias.")
    if not registered["promoted"]:
        raise ServingError(f"{registered['name']} v{registered['version']} was not promoted by the gate; the serving champion stays",
                           "Nothing to deploy; see the evaluation report.")
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    group, ver, plural, ns = "serving.kserve.io", "v1beta1", "inferenceservices", endpoints.NAMESPACE
    name = registered["name"]  # the InferenceService is named after the registered model
    new = ModelVersion(version=registered["version"], model_uri=registered["model_uri"])
    try:
        current = api.get_namespaced_custom_object(group, ver, ns, plural, name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        current = None
    if current is None:
        isvc = render_inferenceservice(new, name=name)
        api.create_namespaced_custom_object(group, ver, ns, plural, isvc)
        mode = "created"
    else:
        champ_version = current["metadata"].get("annotations", {}).get("kindml.io/champion-version")
        champ = ModelVersion(version=champ_version, model_uri=f"models:/{registered['name']}/{champ_version}")
        isvc = render_inferenceservice(champ, new, canary_percent, name=name)
        isvc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        api.replace_namespaced_custom_object(group, ver, ns, plural, name, isvc)
        mode = f"canary {canary_percent}% next to v{champ_version}"
    deadline = time.monotonic() + timeout_s
    ready = False
    while time.monotonic() < deadline and not ready:
        obj = api.get_namespaced_custom_object(group, ver, ns, plural, name)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []))
        time.sleep(5)
    if not ready:
        raise ServingError(f"InferenceService {name} did not become Ready in {timeout_s:.0f} s",
                           f"kubectl -n {ns} describe inferenceservice {name}")
    from kindml.cluster.templates import predictor_url
    from kindml.pipeline import outputs

    url = predictor_url(name, registered["version"])  # KServe Standard mode: one Service per predictor version, port 80
    result = {"url": url, "pid": None, "model": registered["name"], "version": registered["version"], "mode": mode, "target": "kind",
              "host_url": f"http://127.0.0.1:{endpoints.UI_PORTS['model-endpoint']}", "mlflow_run_id": outputs.model_run_id(registered)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "deployed.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    outputs.publish(env, result["mlflow_run_id"], {"deployed": out_dir})
    return result


def point_endpoint(name: str) -> None:
    """Point the host's model endpoint (Service kindml-model-endpoint, NodePort 30800 on kind) at InferenceService ``name``."""
    from kubernetes import client

    from kindml.cluster import endpoints

    body = {"spec": {"selector": {"serving.kserve.io/inferenceservice": name}}}
    try:
        client.CoreV1Api().patch_namespaced_service(endpoints.MODEL_ENDPOINT_SERVICE, endpoints.NAMESPACE, body)
    except client.ApiException as exc:
        raise ServingError(f"cannot point Service {endpoints.MODEL_ENDPOINT_SERVICE} at {name}: {exc.reason}",
                           "Check the pipeline runner's Role (patch on that Service) in manifests/base/rbac/pipeline-runner.yaml.") from None
