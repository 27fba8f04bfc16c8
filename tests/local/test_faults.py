"""Fault injection on the embedded default: each test injects the fault and checks the documented outcome."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.local


def _data(n: int = 4000, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(x[:, 0] * 2 - 2)))).astype(np.float32)
    return x, y


def fit(x: np.ndarray, y: np.ndarray, cfg: object, tmp_path: Path) -> object:
    """The platform's Tune + Train DDP fit of its tabular MLP recipe on a small binary problem."""
    from kindml.model.mlp import MLPRecipe
    from kindml.model.train import tune_then_fit

    meta = {"n_inputs": x.shape[1], "mean": list(map(float, x.mean(0))), "std": list(map(float, x.std(0)))}
    return tune_then_fit(MLPRecipe("binary"), {"features": x[:3000], "y": y[:3000]}, {"features": x[3000:], "y": y[3000:]}, meta,
                         cfg, tmp_path / "ray", tmp_path / "out")


def test_ray_worker_killed_mid_training_is_restored_from_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision: a worker crash is survived up to train.max_failures by restoring the last epoch checkpoint."""
    from kindml.config import TrainConfig
    from kindml.model.train import ray_session

    x, y = _data()
    monkeypatch.setenv("KINDML_FAULT_KILL_WORKER_AT_EPOCH", "1")
    cfg = TrainConfig(workers=2, epochs=3, tune_trials=1, tune_epochs=1, max_failures=1, batch_size=256)
    with ray_session(2):
        res = fit(x, y, cfg, tmp_path)
    assert res.restored_from_checkpoint is True
    assert (tmp_path / "out" / "model.pt").is_file()
    assert [h["epoch"] for h in res.history][-1] == 3  # all epochs, none repeated after the restore


def test_ray_worker_crash_beyond_max_failures_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kindml.config import TrainConfig
    from kindml.errors import KindmlError
    from kindml.model.train import ray_session

    x, y = _data()
    monkeypatch.setenv("KINDML_FAULT_KILL_WORKER_AT_EPOCH", "1")
    cfg = TrainConfig(workers=2, epochs=3, tune_trials=1, tune_epochs=1, max_failures=0, batch_size=256)
    # a fresh storage folder has no "already injected" marker; max_failures=0 means the one crash is fatal
    with ray_session(2), pytest.raises(KindmlError) as e:
        fit(x, y, cfg, tmp_path)
    assert "worker failure" in e.value.message and "max_failures" in e.value.hint


def test_redis_down_during_serving_degrades_then_recovers(tmp_path: Path) -> None:
    """Decision: when the online store fails, lookups answer 'unknown' (or the cached value) with degraded=True; no crash."""
    from kindml.features import store as fstore
    from kindml.pipelines.fraud.aggregates import account_daily, merchant_daily
    from kindml.pipelines.fraud.data import build_world, generate_history
    from kindml.pipelines.fraud.definitions import FEATURE_SERVICE, feature_objects
    from kindml.services.redis import ensure_redis, stop_redis
    from kindml.serving.online import OnlineFeatures
    from kindml.workspace import Workspace

    ws = Workspace(tmp_path / "ws").ensure()
    conn = ensure_redis(ws)
    port = int(conn.split(":")[1])
    try:
        world = build_world(1, 100, 30, 20, date(2026, 1, 20))
        tx = generate_history(world, 3000)
        data = tmp_path / "repo" / "data"
        start = pd.Timestamp(world.start)
        fstore.write_offline_tables({"account_daily": account_daily(tx, world.accounts, start, 20), "merchant_daily": merchant_daily(tx, start, 20)},
                                    data)
        store = fstore.open_store(tmp_path / "repo", "faults", "redis", conn)
        fstore.apply_definitions(store, feature_objects(data))
        fstore.materialize(store, world.start, world.end)
        feats = OnlineFeatures(tmp_path / "repo", "faults", FEATURE_SERVICE, "redis", conn, cache_seconds=0.0).open()
        recent = tx.sort_values("event_timestamp").tail(3)
        ids = recent["account_id"].to_numpy(dtype=np.int64)
        mids = recent["merchant_id"].to_numpy(dtype=np.int64)
        at = world.end.timestamp()
        ok = feats.lookup({"account_id": ids, "merchant_id": mids}, at)
        assert not ok.degraded and ok.known["account_id"].all()
        stop_redis(ws)
        down = feats.lookup({"account_id": ids, "merchant_id": mids}, at)
        # keys seen before are answered from the (stale) cache, flagged degraded
        assert down.degraded and down.known["account_id"].all() and "Error" in (down.error or "")
        assert np.allclose(down.columns["txn_count_30d"], ok.columns["txn_count_30d"])
        others = np.array(sorted(set(tx["account_id"]) - set(ids))[:3], dtype=np.int64)
        cold = feats.lookup({"account_id": others, "merchant_id": mids}, at)  # never seen: unknown ("no history" defaults), degraded, no exception
        assert cold.degraded and not cold.known["account_id"].any() and np.isnan(cold.columns["txn_count_30d"]).all()
        conn2 = ensure_redis(ws, port=port)  # same address: the predictor needs no restart
        assert conn2 == conn
        back = feats.lookup({"account_id": ids, "merchant_id": mids}, at)
        assert not back.degraded  # recovered (the RDB snapshot brings the materialized rows back)
    finally:
        stop_redis(ws)


def test_port_already_taken_names_the_port(tmp_path: Path) -> None:
    from kindml.errors import KindmlError
    from kindml.monitoring.prometheus import LocalPrometheus
    from kindml.serving.server import serve_foreground

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(KindmlError) as e:
            serve_foreground(None, "127.0.0.1", port)
        assert str(port) in e.value.message and "--port" in e.value.hint
        with pytest.raises(KindmlError) as e2:
            LocalPrometheus(tmp_path / "prom", ["127.0.0.1:1"], port=port).start()
        assert str(port) in e2.value.message


def test_interrupted_capstone_resumes_and_reuses_completed_stages(tmp_path: Path) -> None:
    """Kill the run during `train`; `--resume` reuses ingest/validate/features and registers exactly one version."""
    home = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    args = [sys.executable, "-m", "kindml", "capstone", "--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2",
            "--no-serve", "--run-id", "cut"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    log = home / "runs" / "cut" / "logs" / "pipeline.log"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if log.is_file() and "Executing task \x1b[96m'train'" in log.read_text(errors="replace") or (
            log.is_file() and "'train'" in log.read_text(errors="replace")):
            break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(1)
    time.sleep(5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C of the whole process group
    proc.wait(timeout=120)
    assert proc.returncode != 0
    s = json.loads((home / "runs" / "cut" / "summary.json").read_text())
    assert s["status"] in ("interrupted", "failed", "running")
    assert not (home / "mlflow" / "mlflow.db").exists() or "version" not in json.dumps(
        subprocess.run([sys.executable, "-m", "kindml", "models", "list", "-o", "json"], env=env, capture_output=True, text=True).stdout)
    res = subprocess.run([sys.executable, "-m", "kindml", "capstone", "--resume", "cut", "-o", "json"], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    assert s["status"] == "succeeded"
    assert {s["stages"][k]["status"] for k in ("ingest", "validate", "features")} == {"cached"}
    versions = json.loads(subprocess.run([sys.executable, "-m", "kindml", "models", "list", "-o", "json"], env=env, capture_output=True, text=True).stdout)
    assert [v["version"] for v in versions] == ["1"]  # no half-written or duplicate versions
