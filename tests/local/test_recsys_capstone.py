"""The recommendation capstone end to end on small generated data: GE quarantine of bad ratings, Feast snapshots, a two-tower
model with Ray Tune + Train, recall@K vs popularity, ONNX, the registry, Ray Data batch scoring written back to Feast, and the
KServe predictor answering from the precomputed rows (v1, v2) with live scoring for users without them, and 400s for bad input.

One pipeline run (about 5-6.5 minutes on a busy 2-core machine) serves every test of this module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.local

SMALL = ["--param", "rows=8000", "--param", "epochs=2", "--param", "tune_trials=1", "--param", "min_score=0.01",
         "--set", "train.batch_size=256",  # ~25 steps per epoch and worker on 8k rows: with 2048 (the default) the model stays below popularity
         "--set", "workloads.recsys.users=300", "--set", "workloads.recsys.items=400", "--set", "train.tune_epochs=1"]
NEW_USER = 987_654_321


def kindml(args: list[str], home: Path, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


def post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("recsys")
    res = kindml(["run", "recsys", *SMALL, "--param", "corruption_rate=0.02", "--quarantine", "--run-id", "r", "-o", "json"], home)
    try:
        assert res.returncode == 0, res.stderr[-3000:]
        yield {"home": home, "summary": json.loads(res.stdout)}
    finally:
        kindml(["serve", "stop"], home)


def _artifact(run: dict[str, Any], pattern: str) -> Path:  # type: ignore[type-arg]
    return next((run["home"] / "runs" / "r" / "kfp").rglob(pattern))


def test_summary_quarantine_ranking_metrics_batch_and_serving(run) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    s = run["summary"]
    assert s["status"] == "succeeded" and s["pipeline"] == "recsys" and s["workload"] == "kindml.pipelines.recsys.workload"
    assert list(s["stages"]) == ["ingest", "validate", "features", "train", "evaluate", "export", "register", "batch", "deploy", "monitor"]
    assert all(v["status"] == "succeeded" for v in s["stages"].values()), s["stages"]
    damage = json.loads(_artifact(run, "raw/ingest.json").read_text())["corruption"]
    # every damaged row, plus the original of every duplicated (user, item) pair
    assert s["validation"]["quarantined_rows"] == damage["rows"] + damage["counts"]["duplicate"]
    reasons = s["validation"]["quarantine_reasons"]
    assert reasons["expect_compound_columns_to_be_unique:user_id+item_id"] == 2 * damage["counts"]["duplicate"]
    assert reasons["expect_column_values_to_be_in_set:item_id"] == damage["counts"]["unknown_item"]
    m = s["metrics"]
    assert s["gate"]["metric"] == "recall_at_10" and m["k"] == 10 and m["users"] > 50
    pop = s["baselines"]["popularity"]["recall_at_10"]
    assert m["recall_at_10"] > pop and m["recall_at_10_vs_popularity"] == pytest.approx(m["recall_at_10"] / pop, rel=1e-6)
    b = s["batch"]
    assert b["engine"] == "ray_data" and b["workers"] == 2 and b["what"] == "users" and b["feast_view"] == "user_recommendations"
    # every user with a clean rating; the unknown users of the corrupted rows were quarantined, so fewer than ingested
    clean_users = pd.read_parquet(_artifact(run, "validate/clean/ratings.parquet"), columns=["user_id"])["user_id"].nunique()
    assert b["rows"] == clean_users < json.loads(_artifact(run, "raw/ingest.json").read_text())["users"]
    assert b["rows_per_s"] > 0 and b["steady_rows_per_s"] > 0
    assert s["serving"]["requests"] > 0 and s["serving"]["errors"] == 0
    assert s["drift"]["drift_alert_fired"], s["drift"]["alerts_fired"]  # new users the model never saw
    metrics = json.loads(_artifact(run, "evaluation/metrics.json").read_text())
    assert metrics["curve"]["k"][:5] == [1, 2, 3, 5, 10] and len(metrics["popularity_curve"]["recall"]) == len(metrics["curve"]["recall"])


def test_registered_with_lineage(run) -> None:  # type: ignore[no-untyped-def]
    res = kindml(["models", "show", "recommender@champion", "-o", "json"], run["home"])
    assert res.returncode == 0, res.stderr
    tags = json.loads(res.stdout)["tags"]
    assert tags["kindml.workload"] == "recsys" and tags["kindml.task"] == "ranking" and tags["kindml.gate_metric"] == "recall_at_10"
    assert tags["kindml.feast_feature_service"] == "recsys_v1" and float(tags["kindml.recall_at_10"]) > 0


def _feast_recs(run, users: list[int]) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    from kindml.features.store import open_store

    store = open_store(run["home"] / "features", "kindml")
    got = store.get_online_features(features=["user_recommendations:rec_items"], entity_rows=[{"user_id": u} for u in users]).to_dict()
    return dict(zip(got["user_id"], got["rec_items"], strict=True))


def test_batch_wrote_parquet_and_feast(run) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    pred = pd.read_parquet(_artifact(run, "scores/predictions.parquet"))
    assert pred["user_id"].is_unique and (pred["rec_items"].map(len) == 50).all()
    users = pred["user_id"].head(3).tolist()
    online = _feast_recs(run, users)
    for u in users:
        assert list(online[u]) == list(pred.loc[pred["user_id"] == u, "rec_items"].iloc[0])
    # nothing a user already rated is recommended to them
    ratings = pd.read_parquet(_artifact(run, "validate/clean/ratings.parquet"))
    rated = ratings.groupby("user_id")["item_id"].agg(set)
    assert all(not (set(items) & rated[u]) for u, items in zip(pred["user_id"], pred["rec_items"], strict=True))


def _predictor(run) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    d = run["summary"]["deployment"]
    return d["url"], d["model"]


def test_precomputed_and_live_users_over_v1_and_v2(run) -> None:  # type: ignore[no-untyped-def]
    url, model = _predictor(run)
    known = 1
    expected = list(_feast_recs(run, [known])[known])
    code, body = post(f"{url}/v1/models/{model}:predict", {"instances": [{"user_id": known}, {"user_id": NEW_USER, "k": 3}]})
    assert code == 200, body
    pre, live = body["predictions"]
    assert pre["source"] == "precomputed" and pre["user_known"] is True and pre["items"] == expected[:10] and len(pre["scores"]) == 10
    assert pre["top_item"] == expected[0]
    assert live["source"] == "live" and live["user_known"] is False and len(live["items"]) == 3
    assert live["scores"] == sorted(live["scores"], reverse=True)
    v2_inputs = [{"name": "user_id", "shape": [2], "datatype": "INT64", "data": [known, NEW_USER]}]
    code, v2 = post(f"{url}/v2/models/{model}/infer", {"inputs": v2_inputs})
    assert code == 200, v2
    out = {o["name"]: o["data"] for o in v2["outputs"]}
    assert out["top_item"] == [pre["top_item"], live["top_item"]] and out["source"] == ["precomputed", "live"]
    assert out["item_ids"][0] == ",".join(str(i) for i in expected[:10]) and out["user_known"] == [True, False]


@pytest.mark.parametrize("body,needle", [
    ({"instances": [{}]}, "missing field(s): user_id"),
    ({"instances": [{"user_id": "abc"}]}, "user_id must be an integer"),
    ({"instances": [{"user_id": 0}]}, "between 1"),
    ({"instances": [{"user_id": 1, "k": 0}]}, "k must be between 1 and 50"),
    ({"instances": [{"user_id": 1, "k": 51}]}, "k must be between 1 and 50"),
    ({"instances": [{"user_id": 1, "item_id": 3}]}, "unknown field"),
    ({"instances": [{"user_id": 1}] * 513}, "limit"),
    ({"users": [1]}, "instances"),
])
def test_bad_input_is_a_400_and_the_server_survives(run, body: dict, needle: str) -> None:  # type: ignore[no-untyped-def]
    url, model = _predictor(run)
    code, answer = post(f"{url}/v1/models/{model}:predict", body)
    assert code == 400 and needle in json.dumps(answer), answer
    assert post(f"{url}/v1/models/{model}:predict", {"instances": [{"user_id": 2}]})[0] == 200
