"""The kind target's Feast layout, run here for real: a registry SERVER shared by two "pods".

On the cluster the features stage runs in a KFP pod and the predictor in a
KServe pod; they share only the Feast operator's registry server
(``feast serve_registry``, gRPC) and Redis. This test starts exactly that
server command with its config in ``FEATURE_STORE_YAML_BASE64`` (how the
operator's registry Deployment passes it), a real Redis, and runs:

* the real ``features`` stage with the in-cluster RuntimeEnv
  (``RuntimeEnv.kind`` from a pod environment) in folder A;
* the predictor's feature source (``features_for`` with ``KINDML_TARGET=kind``)
  in an EMPTY folder B: it must find the feature service through the server
  and read fresh values from Redis, with no registry file of its own.

Only the operator itself (its Deployment, Service name and PVC) is not run
here; the Service address it publishes is checked against the manifests in
tests/unit/cluster.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.local


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"feast serve_registry exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"feast serve_registry did not listen on {port} within {timeout} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from kindml.localproc import free_port

    feast = Path(sys.executable).with_name("feast")
    if not feast.exists():
        feast = Path(shutil.which("feast") or "feast")
    folder = tmp_path_factory.mktemp("registry-server")
    # what the operator renders for the registry service of a file-persisted local registry
    server_yaml = {"project": "kindml", "provider": "local", "entity_key_serialization_version": 3,
                   "registry": {"registry_type": "file", "path": str(folder / "registry.db")}}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env["FEATURE_STORE_YAML_BASE64"] = base64.b64encode(yaml.safe_dump(server_yaml).encode()).decode()
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(feast), "serve_registry", "--port", str(port)], cwd=folder, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_port(port, proc, log)
        yield {"address": f"127.0.0.1:{port}", "folder": folder, "proc": proc, "log": log}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from kindml.services.redis import ensure_redis, stop_redis
    from kindml.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("redis-ws")).ensure()
    conn = ensure_redis(ws)
    try:
        yield conn
    finally:
        stop_redis(ws)


def pod_env(registry: str, redis: str, folder: Path, **extra: str) -> dict[str, str]:
    """A pod's environment as ConfigMap kindml-runtime-env gives it, with the test's addresses."""
    from kindml.cluster import endpoints

    env = dict(endpoints.RUNNER_ENV)
    env |= {"KINDML_FEAST_REGISTRY": registry, "KINDML_REDIS": redis, "KINDML_WORKSPACE": str(folder),
            "KINDML_FEATURE_REPO": str(folder / "features"), "MLFLOW_TRACKING_URI": f"file:{folder / 'mlruns'}"}
    return env | extra


def test_features_stage_in_one_pod_predictor_lookup_in_another(registry_server, redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kindml.config import KindmlConfig
    from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES
    from kindml.pipelines.fraud.definitions import FEATURE_SERVICE
    from kindml.pipelines.fraud.workload import FraudWorkload
    from kindml.runtime import RuntimeEnv
    from kindml.serving.online import features_for
    from kindml.stages import features as features_stage
    from kindml.stages import ingest
    from kindml.workspace import Workspace

    cfg = KindmlConfig.model_validate({"data": {"rows": 6000, "days": 30}, "workloads": {"fraud": {"accounts": 300, "merchants": 60}}})
    wl = FraudWorkload(cfg)
    address = str(registry_server["address"])
    # pod A: the KFP features task
    pod_a = tmp_path / "pod-a"
    env_a = RuntimeEnv.kind(pod_env(address, redis, pod_a))
    assert env_a.target == "kind" and env_a.feature_registry == address and env_a.online_store == "redis"
    raw = tmp_path / "raw"
    ingest.run(wl, raw)
    info = features_stage.run(wl, env_a, raw, tmp_path / "training")
    assert info["registry"] == address and info["rows"] == 6000
    assert not (pod_a / "features" / "registry.db").exists()  # definitions went to the server, not a local file
    assert (Path(str(registry_server["folder"])) / "registry.db").is_file()  # the server persisted them (its PVC on the cluster)
    training = pd.read_parquet(tmp_path / "training" / "training_set.parquet")
    assert training["txn_count_30d"].notna().mean() > 0.5

    # pod B: the predictor, an empty folder, environment from the same ConfigMap
    pod_b = tmp_path / "pod-b"
    pod_b.mkdir()
    feats = features_for(cfg, Workspace(pod_b), FEATURE_SERVICE, pod_env(address, redis, pod_b, KINDML_TARGET="kind"))
    assert feats is not None and feats.registry == address
    assert set(feats.feature_names) >= set(ACCOUNT_FEATURES) | set(MERCHANT_FEATURES)  # the whole service, from the server
    assert set(feats.feature_names) <= set(training.columns)  # the same features training saw
    assert not any(pod_b.rglob("registry.db"))
    tx = pd.read_parquet(raw / "transactions.parquet").sort_values("event_timestamp")
    recent = tx.tail(20)
    end = pd.Timestamp(info["materialized"][1]).timestamp()
    got = feats.lookup({"account_id": recent["account_id"].to_numpy(np.int64), "merchant_id": recent["merchant_id"].to_numpy(np.int64)}, at=end)
    assert not got.degraded
    assert got.known["account_id"].all() and got.known["merchant_id"].all()  # materialized by pod A, read by pod B
    assert np.isfinite(got.columns["txn_count_30d"]).all()
    unknown = feats.lookup({"account_id": np.array([10_000_000], np.int64), "merchant_id": np.array([10_000_000], np.int64)}, at=end)
    assert not unknown.known["account_id"].any()  # an account the store never saw stays "unknown", not an error


def test_predictor_without_definitions_on_the_server_fails_with_a_hint(registry_server, redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kindml.config import KindmlConfig
    from kindml.errors import ServingError
    from kindml.pipelines.fraud.definitions import FEATURE_SERVICE
    from kindml.serving.online import features_for
    from kindml.workspace import Workspace

    cfg = KindmlConfig.model_validate({"features": {"project": "never_applied"}})
    with pytest.raises(ServingError) as e:
        features_for(cfg, Workspace(tmp_path), FEATURE_SERVICE, pod_env(str(registry_server["address"]), redis, tmp_path, KINDML_TARGET="kind"))
    assert str(registry_server["address"]) in e.value.message and FEATURE_SERVICE in e.value.message and "never_applied" in e.value.message
    assert "features stage" in e.value.hint


def test_unreachable_registry_server_is_named(redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kindml.config import KindmlConfig
    from kindml.errors import PrerequisiteMissing
    from kindml.localproc import free_port
    from kindml.serving.online import features_for
    from kindml.workspace import Workspace

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(PrerequisiteMissing) as e:
        features_for(KindmlConfig(), Workspace(tmp_path), "fraud_model_v1", pod_env(address, redis, tmp_path, KINDML_TARGET="kind"))
    assert address in e.value.message and "UNAVAILABLE" in e.value.message
    assert "featurestore kindml" in e.value.hint
