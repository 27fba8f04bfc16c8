"""The predictor as a real KServe ModelServer process on a model registered by a real (small) capstone run.

Checks v1 and v2 REST, Feast-backed and fully-specified rows, the bad-input
matrix (every case 4xx with a message, and the server still answers),
/metrics, stock Open Inference Protocol clients (tritonclient's HTTP client
with its defaults, KServe's own InferenceRESTClient) and a two-worker server
whose metrics equal a one-worker server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.local

SMALL = ["--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2", "--no-serve"]


def kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


def post(url: str, body: bytes | str | dict[str, Any], ctype: str | None = "application/json",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST with exactly these headers (``ctype=None``: no Content-Type at all, as tritonclient sends; urllib would add a form type)."""
    data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request("POST", u.path, body=data, headers=({"Content-Type": ctype} if ctype else {}) | (headers or {}))
        r = conn.getresponse()
        raw = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, {"raw": raw.decode(errors="replace")}


@pytest.fixture(scope="module")
def server(fraud_runs: dict):  # type: ignore[no-untyped-def]
    """The champion of the shared fraud run "good" (tests/local/conftest.py), served in the background."""
    home = fraud_runs["home"]
    assert fraud_runs["good"].returncode == 0, fraud_runs["good"].stderr[-3000:]
    for f in (home / "serving").glob("predictions.db*"):  # a fresh prediction log: the run's monitor stage labelled its
        f.unlink()                                         # concept-shifted traffic, which the clean-traffic test must not see
    res = kindml(["serve", "start", "-o", "json"], home, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    st = json.loads(res.stdout)
    import pandas as pd

    summary = json.loads((home / "runs" / "good" / "summary.json").read_text())
    tx = pd.read_parquet(next((home / "runs" / "good" / "kfp").rglob("clean/transactions.parquet")))
    yield {"home": home, "url": st["url"], "model": st["model"], "version": st["version"], "model_dir": st["model_dir"], "tx": tx,
           "summary": summary}
    kindml(["serve", "stop"], home)


def instance(row: Any) -> dict[str, Any]:
    return {"account_id": int(row["account_id"]), "merchant_id": int(row["merchant_id"]), "amount": float(row["amount"]),
            "merchant_category": str(row["merchant_category"]), "channel": str(row["channel"]), "country": str(row["country"]),
            "event_timestamp": row["event_timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_v1_and_v2_agree_and_report_version(server) -> None:  # type: ignore[no-untyped-def]
    inst = instance(server["tx"].iloc[-1])
    code, v1 = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst]})
    assert code == 200, v1
    p = v1["predictions"][0]
    assert 0.0 <= p["score"] <= 1.0 and isinstance(p["decision"], bool) and p["account_known"] is True
    assert v1["model_version"] == server["version"]
    inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else ("INT64" if isinstance(v, int) else "FP64"), "data": [v]}
              for k, v in inst.items()]
    code, v2 = post(f"{server['url']}/v2/models/{server['model']}/infer", {"inputs": inputs})
    assert code == 200, v2
    score = next(o for o in v2["outputs"] if o["name"] == "score")["data"][0]
    assert abs(score - p["score"]) < 1e-5
    assert v2["model_version"] == server["version"]


def test_unknown_account_is_scored_with_defaults(server) -> None:  # type: ignore[no-untyped-def]
    inst = instance(server["tx"].iloc[-1]) | {"account_id": 987_654_321}
    code, body = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst]})
    assert code == 200 and body["predictions"][0]["account_known"] is False


def test_fully_specified_rows_skip_feast(server) -> None:  # type: ignore[no-untyped-def]
    from kindml.pipelines.fraud.aggregates import ACCOUNT_FEATURES, MERCHANT_FEATURES

    inst = instance(server["tx"].iloc[-1]) | {f: 1.0 for f in (*ACCOUNT_FEATURES, *MERCHANT_FEATURES)} | {"home_country": "US"}
    code, body = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst, inst]})
    assert code == 200 and len(body["predictions"]) == 2 and body["predictions"][0]["account_known"] is True


BAD_CASES = {
    "not json": ("{nope", "application/json", "not valid JSON"),
    "form-encoded, not json": ("account_id=1", "application/x-www-form-urlencoded", "curl -d"),  # what curl -d sends
    "text content type": ('{"instances": []}', "text/plain", "Content-Type"),
    "not utf8": (b"\xff\xfe{", "application/json", "UTF-8"),
    "no instances": ({"rows": []}, "application/json", "instances"),
    "instances not list": ({"instances": {"a": 1}}, "application/json", "list"),
    "empty batch": ({"instances": []}, "application/json", "empty"),
    "row not object": ({"instances": [1]}, "application/json", "object"),
    "missing field": ({"instances": [{"account_id": 1}]}, "application/json", "missing"),
    "wrong type": ({"instances": [{"account_id": "abc", "merchant_id": 1, "amount": 1, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}, "application/json", "account_id"),
    "nan amount": ('{"instances": [{"account_id": 1, "merchant_id": 1, "amount": NaN, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}', "application/json", "finite"),
    "inf amount": ('{"instances": [{"account_id": 1, "merchant_id": 1, "amount": Infinity, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}', "application/json", "finite"),
    "negative amount": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": -5, "merchant_category": "fuel", "channel": "pos", "country": "US"}]}, "application/json", "amount"),
    "bad category": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "crypto", "channel": "pos", "country": "US"}]}, "application/json", "merchant_category"),
    "bad timestamp": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "event_timestamp": "yesterday"}]}, "application/json", "event_timestamp"),
    "unknown field": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "x": 1}]}, "application/json", "unknown field"),
    "partial features": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US", "txn_count_30d": 3}]}, "application/json", "features"),
    "oversize batch": ({"instances": [{"account_id": 1, "merchant_id": 1, "amount": 5, "merchant_category": "fuel", "channel": "pos", "country": "US"}] * 1025}, "application/json", "limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gets_4xx_and_server_survives(server, case: str) -> None:  # type: ignore[no-untyped-def]
    body, ctype, needle = BAD_CASES[case]
    code, answer = post(f"{server['url']}/v1/models/{server['model']}:predict", body, ctype)
    assert 400 <= code < 500, (case, code, answer)
    assert needle.lower() in json.dumps(answer).lower(), (case, answer)
    ok, _ = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [instance(server["tx"].iloc[-1])]})
    assert ok == 200


@pytest.mark.parametrize("inputs,needle", [
    ([], "empty"),
    ([{"name": "account_id", "shape": [2], "datatype": "INT64", "data": [1]}], "shape"),
    ([{"name": "bogus", "shape": [1], "datatype": "INT64", "data": [1]}], "not a known field"),
    ([{"name": "account_id", "shape": [1, 1], "datatype": "INT64", "data": [1]}], "1-D"),
])
def test_bad_v2_input(server, inputs, needle: str) -> None:  # type: ignore[no-untyped-def]
    code, answer = post(f"{server['url']}/v2/models/{server['model']}/infer", {"inputs": inputs})
    assert 400 <= code < 500, answer
    assert needle.lower() in json.dumps(answer).lower()


NP_TYPES = {"INT64": "int64", "FP64": "float64", "BYTES": "object", "BOOL": "bool"}


def metadata(server) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"{server['url']}/v2/models/{server['model']}", timeout=10) as r:
        return json.loads(r.read())


def triton_inputs(meta: dict[str, Any], inst: dict[str, Any], binary: bool = True) -> list:
    """tritonclient inputs for one instance, typed from the model metadata (as a client that only knows the server would)."""
    import numpy as np
    import tritonclient.http as th

    dtypes = {i["name"]: i["datatype"] for i in meta["inputs"]}
    out = []
    for name, value in inst.items():
        i = th.InferInput(name, [1], dtypes[name])
        i.set_data_from_numpy(np.array([value], dtype=NP_TYPES[dtypes[name]]), binary_data=binary)
        out.append(i)
    return out


def kserve_inputs(meta: dict[str, Any], inst: dict[str, Any], binary: bool) -> list:
    import numpy as np
    from kserve import InferInput

    dtypes = {i["name"]: i["datatype"] for i in meta["inputs"]}
    out = []
    for name, value in inst.items():
        if binary:
            i = InferInput(name, [1], dtypes[name])
            i.set_data_from_numpy(np.array([value], dtype=NP_TYPES[dtypes[name]]), binary_data=True)
        else:
            i = InferInput(name, [1], dtypes[name], data=[value])
        out.append(i)
    return out


def test_model_metadata_lists_every_input_and_output_and_the_version_routes_answer(server) -> None:  # type: ignore[no-untyped-def]
    from kindml.pipelines.fraud.serving import FraudSignature

    sig = FraudSignature([], 0.5)
    meta = metadata(server)
    assert meta["name"] == server["model"] and meta["versions"] == [server["version"]]
    assert {(i["name"], i["datatype"]) for i in meta["inputs"]} == set(sig.fields.items()) and len(meta["inputs"]) == len(sig.fields)
    assert {(o["name"], o["datatype"]) for o in meta["outputs"]} == set(sig.outputs.items()) | {("prediction_id", "BYTES")}
    assert all(t["shape"] == [-1] for t in [*meta["inputs"], *meta["outputs"]])
    base = f"{server['url']}/v2/models/{server['model']}"
    with urllib.request.urlopen(f"{base}/versions/{server['version']}", timeout=10) as r:
        assert json.loads(r.read()) == meta
    with urllib.request.urlopen(f"{base}/versions/{server['version']}/ready", timeout=10) as r:
        assert json.loads(r.read()) == {"name": server["model"], "ready": True}
    with urllib.request.urlopen(f"{base}/ready", timeout=10) as r:
        assert r.status == 200
    for path in (f"{base}/versions/999", f"{base}/versions/999/ready"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(path, timeout=10)
        assert e.value.code == 404 and f"serves version {server['version']}" in e.value.read().decode()
    inputs = [{"name": k, "shape": [1], "datatype": meta_t, "data": [v]} for (k, v), meta_t in
              ((kv, {i["name"]: i["datatype"] for i in meta["inputs"]}[kv[0]]) for kv in instance(server["tx"].iloc[-1]).items())]
    code, body = post(f"{base}/versions/{server['version']}/infer", {"inputs": inputs})
    assert code == 200 and body["model_version"] == server["version"], body
    code, body = post(f"{base}/versions/999/infer", {"inputs": inputs})
    assert code == 404 and "serves version" in body["error"]


def test_stock_oip_clients_score_as_v1(server) -> None:  # type: ignore[no-untyped-def]
    """Acceptance: tritonclient's InferenceServerClient.infer with default options (binary tensors in and out, no
    Content-Type) and kserve.InferenceRESTClient (v1, v2 JSON, v2 binary) give the v1 score."""
    import tritonclient.http as th
    from kserve import InferenceRESTClient, InferRequest, RESTConfig

    inst = instance(server["tx"].iloc[-2])
    code, v1 = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [inst]})
    assert code == 200, v1
    p = v1["predictions"][0]
    meta = metadata(server)
    model, version = server["model"], server["version"]

    client = th.InferenceServerClient(server["url"].removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
        assert client.is_model_ready(model, version) and not client.is_model_ready(model, "999")
        tmeta = client.get_model_metadata(model)
        assert {i["name"] for i in tmeta["inputs"]} == {i["name"] for i in meta["inputs"]} and tmeta["outputs"]
        res = client.infer(model, triton_inputs(meta, inst))  # the defaults: binary inputs, binary_data_output
        assert res.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 8  # the score came back as raw FP64
        assert abs(float(res.as_numpy("score")[0]) - p["score"]) < 1e-6
        assert bool(res.as_numpy("decision")[0]) is p["decision"] and bool(res.as_numpy("account_known")[0]) is p["account_known"]
        res = client.infer(model, triton_inputs(meta, inst, binary=False), model_version=version,
                           outputs=[th.InferRequestedOutput("score", binary_data=False)])
        assert [o["name"] for o in res.get_response()["outputs"]] == ["score"] and abs(res.as_numpy("score")[0] - p["score"]) < 1e-6
        with pytest.raises(th.InferenceServerException) as e:
            client.infer(model, triton_inputs(meta, inst), outputs=[th.InferRequestedOutput("bogus")])
        assert "bogus" in str(e.value) and "score" in str(e.value)
    finally:
        client.close()

    async def kserve_client() -> tuple[dict, Any, Any]:
        v1c = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
        v2c = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            assert await v2c.is_server_live(server["url"]) and await v2c.is_server_ready(server["url"])
            assert await v2c.is_model_ready(server["url"], model)
            r1 = await v1c.infer(server["url"], {"instances": [inst]}, model_name=model)
            r2 = await v2c.infer(server["url"], InferRequest(model_name=model, infer_inputs=kserve_inputs(meta, inst, binary=False)), model_name=model)
            r3 = await v2c.infer(server["url"], InferRequest(model_name=model, infer_inputs=kserve_inputs(meta, inst, binary=True),
                                                             parameters={"binary_data_output": True}), model_name=model)
            return r1, r2, r3
        finally:
            await v1c.close()
            await v2c.close()

    r1, r2, r3 = asyncio.run(kserve_client())
    assert r1["predictions"][0]["score"] == p["score"]
    assert abs(r2.get_output_by_name("score").data[0] - p["score"]) < 1e-6 and r2.model_name == model  # (its parser drops model_version)
    assert abs(float(r3.get_output_by_name("score").as_numpy()[0]) - p["score"]) < 1e-6
    assert bool(r3.get_output_by_name("decision").as_numpy()[0]) is p["decision"]


def test_json_without_content_type_scores_like_json(server) -> None:  # type: ignore[no-untyped-def]
    inst = instance(server["tx"].iloc[-3])
    url = f"{server['url']}/v1/models/{server['model']}:predict"
    with_type, without = post(url, {"instances": [inst]}), post(url, {"instances": [inst]}, ctype=None)
    def answer(res: tuple[int, dict]) -> list[dict]:  # every answer has its own prediction_id
        return [{k: v for k, v in p.items() if k != "prediction_id"} for p in res[1]["predictions"]]

    assert with_type[0] == without[0] == 200 and answer(with_type) == answer(without)


@pytest.mark.parametrize("case", ["header past the end", "binary size off the shape", "bytes not utf8", "wrong datatype", "on v1"])
def test_bad_binary_requests_get_400_and_the_server_survives(server, case: str) -> None:  # type: ignore[no-untyped-def]
    amount = {"name": "amount", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}
    country = {"name": "country", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}
    head = {"header past the end": ({"inputs": [amount]}, bytes(8), 999),
            "binary size off the shape": ({"inputs": [amount | {"parameters": {"binary_data_size": 4}}]}, bytes(4), None),
            "bytes not utf8": ({"inputs": [country]}, b"\x02\x00\x00\x00\xff\xfe", None),
            "wrong datatype": ({"inputs": [amount | {"datatype": "BYTES", "parameters": {"binary_data_size": 7}}]}, b"\x03\x00\x00\x00abc", None),
            "on v1": ({"inputs": [amount]}, bytes(8), None)}[case]
    js = json.dumps(head[0]).encode()
    path = f"/v1/models/{server['model']}:predict" if case == "on v1" else f"/v2/models/{server['model']}/infer"
    code, answer = post(server["url"] + path, js + head[1], ctype=None, headers={"Inference-Header-Content-Length": str(head[2] or len(js))})
    assert code == 400 and answer.get("error"), (case, code, answer)
    needle = {"header past the end": "byte length", "binary size off the shape": "needs 8 bytes", "bytes not utf8": "UTF-8",
              "wrong datatype": "expects FP64", "on v1": "only for POST /v2"}[case]
    assert needle in answer["error"], (case, answer)
    ok, _ = post(f"{server['url']}/v1/models/{server['model']}:predict", {"instances": [instance(server["tx"].iloc[-1])]})
    assert ok == 200


def test_metrics_exposed(server) -> None:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(f"{server['url']}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'kindml_requests_total{{code="200",model="{server["model"]}",version="{server["version"]}"}}' in text or "kindml_requests_total{" in text
    assert "kindml_request_latency_seconds_bucket" in text
    assert 'kindml_feature_drift{' in text or "kindml_window_samples" in text


def test_feedback_joins_delayed_outcomes_and_quality_is_exported(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every answered row carries a prediction_id (v1 field, v2 output); POST /v1/feedback joins outcomes to them
    (200 partial, 409 duplicate, 404 unknown, 400 malformed with nothing applied), `kindml feedback ingest` does the
    same from a file, and /metrics exports the labelled sample count and the version's holdout reference."""
    from prometheus_client.parser import text_string_to_metric_families

    url, model = server["url"], server["model"]
    rows = [instance(server["tx"].iloc[-i]) for i in range(1, 7)]
    code, v1 = post(f"{url}/v1/models/{model}:predict", {"instances": rows[:4]})
    assert code == 200, v1
    ids = [p["prediction_id"] for p in v1["predictions"]]
    assert len(set(ids)) == 4 and all(isinstance(i, str) and len(i) == 32 for i in ids)
    inputs = [{"name": k, "shape": [2], "datatype": "BYTES" if isinstance(v, str) else ("INT64" if isinstance(v, int) else "FP64"),
               "data": [r[k] for r in rows[4:]]} for k, v in rows[4].items()]
    code, v2 = post(f"{url}/v2/models/{model}/infer", {"inputs": inputs})
    assert code == 200, v2
    v2_ids = next(o for o in v2["outputs"] if o["name"] == "prediction_id")["data"]
    assert len(v2_ids) == 2 and not set(v2_ids) & set(ids)

    code, body = post(f"{url}/v1/feedback", {"outcomes": [{"prediction_id": ids[0], "outcome": 1}, {"prediction_id": ids[1], "outcome": False},
                                                          {"prediction_id": "never-answered", "outcome": 0}]})
    assert code == 200 and body["joined"] == 2 and body["unknown"] == ["never-answered"], body
    code, body = post(f"{url}/v1/feedback", {"outcomes": [{"prediction_id": ids[0], "outcome": 0}]})
    assert code == 409 and body["duplicate"] == [ids[0]] and "already" in body["error"], body
    code, body = post(f"{url}/v1/feedback", {"outcomes": [{"prediction_id": "nope", "outcome": 1}]})
    assert code == 404 and "unknown" in body["error"], body
    for bad, needle in (({"outcomes": [{"prediction_id": ids[2], "outcome": 7}]}, "0/1"),
                        ({"outcomes": [{"prediction_id": ids[2], "outcome": 1}, {"prediction_id": ids[2], "outcome": 0}]}, "twice"),
                        ({"outcomes": []}, "non-empty"), ({"outcomes": [{"prediction_id": ids[2], "label": 1}]}, "unknown fields")):
        code, body = post(f"{url}/v1/feedback", bad)
        assert code == 400 and needle in body["error"] and body["hint"], (bad, body)
    # nothing of the refused batches was applied: ids[2] still takes its outcome, now from a file through the CLI
    f = tmp_path / "outcomes.csv"
    f.write_text(f"prediction_id,outcome\n{ids[2]},0\n{v2_ids[0]},1\n", encoding="utf-8")
    res = kindml(["feedback", "ingest", str(f), "--url", url, "-o", "json"], server["home"])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["joined"] == 2
    res = kindml(["feedback", "ingest", str(tmp_path / "missing.csv"), "--url", url], server["home"])
    assert res.returncode != 0 and "hint:" in res.stderr and "Traceback" not in res.stderr

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(r.read().decode())
                   for s in fam.samples}
    key = ("kindml_quality_samples", (("model", model), ("variant", "champion"), ("version", server["version"])))
    assert samples.get(key) is not None and samples[key] >= 4, {k: v for k, v in samples.items() if "quality" in k[0]}
    ref = samples[("kindml_quality_reference", (("metric", "roc_auc"), ("model", model), ("version", server["version"])))]
    assert abs(ref - server["summary"]["metrics"]["roc_auc"]) < 1e-3


def test_experiment_routes_by_entity_logs_variants_and_counts_outcomes(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A running experiment record makes `kindml serve run` route between champion and challenger (here the same graph
    under another version label: A = A). ab: each account's rows go to one sticky variant, both variants answer, ids and
    variants are logged, outcomes reach the sequential test (`kindml experiment status`). shadow: the champion answers
    every row and the challenger's predictions are recorded as <id>.s with the answer's outcome."""
    import shutil

    from kindml.experiments import live
    from kindml.monitoring.feedback import log_path
    from kindml.monitoring.quality import PredictionLog

    home, model, version = server["home"], server["model"], server["version"]
    chall = tmp_path / "challenger"
    shutil.copytree(server["model_dir"], chall)
    serving = home / "serving"
    tx = server["tx"]
    accounts = tx.drop_duplicates("account_id").tail(120)
    rows = [instance(r) for _, r in accounts.iterrows()]
    for mode in ("ab", "shadow"):
        spec = {"name": f"a-equals-a-{mode}", "salt": f"salt-of-{mode}-0001", "mode": mode, "split": 0.5,
                "metric": {"name": "accuracy", "baseline": 0.9}, "mde": 0.05, "min_samples": 30}
        live.start(serving, spec, model=model, task="binary", threshold=0.5, champion={"version": version, "dir": server["model_dir"]},
                   challenger={"version": "99", "dir": str(chall)}, entity_field="account_id", started_by="test")
        proc, url = _start(server, 1, None, model)
        try:
            code, a = post(f"{url}/v1/models/{model}:predict", {"instances": rows})
            assert code == 200, a
            code, b = post(f"{url}/v1/models/{model}:predict", {"instances": rows[:40]})
            assert code == 200, b
            preds = a["predictions"]
            assert [p["variant"] for p in b["predictions"]] == [p["variant"] for p in preds[:40]]  # sticky per account
            variants = {p["variant"] for p in preds}
            assert variants == ({"champion", "challenger"} if mode == "ab" else {"champion"}), variants
            assert all(p["model_version"] == (version if p["variant"] == "champion" else "99") for p in preds)
            outcomes = [{"prediction_id": p["prediction_id"], "outcome": int(p["score"] >= 0.5)} for p in preds]
            code, fb = post(f"{url}/v1/feedback", {"outcomes": outcomes})
            assert code == 200 and fb["joined"] == len(rows), fb
            plog = PredictionLog(log_path(serving))
            labelled = plog.labelled_since(spec["name"])
            by_variant = {v: sum(1 for r in labelled if r["variant"] == v) for v in ("champion", "challenger")}
            if mode == "ab":
                assert by_variant["champion"] + by_variant["challenger"] == len(rows) and min(by_variant.values()) > 20
            else:  # about half the accounts are shadowed: their challenger row shares the answer's outcome
                shadow = [r for r in labelled if r["variant"] == "challenger"]
                assert 20 < len(shadow) < 100 and all(r["parent"] and r["id"] == r["parent"] + ".s" for r in shadow)
            res = kindml(["experiment", "status", "--no-apply", "-o", "json"], home)
            assert res.returncode == 0, res.stderr
            st = json.loads(res.stdout)
            assert st["name"] == spec["name"] and st["status"] == "running" and sum(st["outcomes_per_arm"].values()) > 0, st
            samples = _scrape(url)
            rows_by_variant = {dict(k[1])["variant"]: v for k, v in samples.items() if k[0] == "kindml_experiment_rows_total"}
            assert rows_by_variant["champion"] > 0 and rows_by_variant["challenger"] > 0, rows_by_variant
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            live.stop(serving, "test done", "test")
    res = kindml(["experiment", "stop", "--reason", "none left"], home)
    assert res.returncode != 0 and "no experiment to stop" in res.stderr and "hint:" in res.stderr


def test_explain_route_attributes_the_served_score(server) -> None:  # type: ignore[no-untyped-def]
    """KServe's :explain route on the predictor (kindml.explain, captum): the explained prediction is the served score;
    a bad row is a 400 naming what is missing."""
    url, model = server["url"], server["model"]
    inst = instance(server["tx"].iloc[-3])
    code, v1 = post(f"{url}/v1/models/{model}:predict", {"instances": [inst]})
    assert code == 200, v1
    code, body = post(f"{url}/v1/models/{model}:explain", {"instances": [inst]})
    assert code == 200, body
    [e] = body["explanations"]
    assert e["target"] == "score" and abs(e["prediction"] - v1["predictions"][0]["score"]) < 1e-4
    assert {"amount", "merchant_category", "channel"} <= set(e["attributions"])
    code, body = post(f"{url}/v1/models/{model}:explain", {"instances": [{"account_id": 1}]})
    assert code == 400 and "missing field" in body["error"], body


def _watch_alerts(server, drift: float, seconds: float) -> tuple[list, list, list]:  # type: ignore[no-untyped-def]
    """A real Prometheus scraping the running predictor while loadgen sends traffic; returns (alerts, psi series, samples)."""
    from kindml.monitoring.prometheus import LocalPrometheus
    from kindml.monitoring.rules import write_local_rules
    from kindml.pipelines.fraud.data import DriftSpec, build_world, generate_live
    from kindml.pipelines.fraud.serving import FraudSignature
    from kindml.serving.loadgen import payloads, run_load

    s = server["summary"]["params"]
    world = build_world(s["seed"], 1500, 400, s["days"], None)
    tx = generate_live(world, 3000, DriftSpec.from_severity(drift) if drift else None, stream=40 + int(drift * 10))
    folder = server["home"] / f"prom-{drift}"
    rules = write_local_rules(folder / "rules.yml")
    host_port = server["url"].removeprefix("http://")
    with LocalPrometheus(folder, [host_port], rules) as prom:
        stats = run_load(server["url"], server["model"], payloads(FraudSignature([], 0.5).instances(tx)), threads=4, collect=True)
        assert stats.errors == 0
        import time

        from kindml.stages.monitor import prediction_ids, send_feedback

        # the traffic's true labels arrive: realised quality of the (unshifted) concept
        ids = prediction_ids(stats)
        fb = send_feedback(server["url"], [(pid, str(int(tx["is_fraud"].iloc[i]))) for i, pid in sorted(ids.items())])
        assert fb["joined"] == len(ids) == len(tx) and fb["errors"] == 0, fb
        deadline = time.monotonic() + seconds
        firing: list = []
        while time.monotonic() < deadline:
            firing = [a for a in prom.alerts() if a["state"] == "firing" and a["labels"]["alertname"] in
                      ("KindmlFeatureDrift", "KindmlPredictionDrift", "KindmlQualityDegraded")]
            if drift and firing:
                break
            time.sleep(1)
        psi = prom.query(f'kindml_feature_drift{{method="psi",model="{server["model"]}"}}')
        samples = prom.query("kindml_window_samples")
        quality = {r["metric"]["metric"]: float(r["value"][1]) for r in prom.query(f'kindml_quality{{model="{server["model"]}"}}')}
        if not drift:  # the clean run: realised AUC on the delayed labels is close to the holdout score, no quality alert
            ref = server["summary"]["metrics"]["roc_auc"]
            assert "roc_auc" in quality and abs(quality["roc_auc"] - ref) < 0.1, (quality, ref)
    return firing, psi, samples


def test_monitoring_silent_under_clean_traffic(server) -> None:  # type: ignore[no-untyped-def]
    firing, psi, samples = _watch_alerts(server, 0.0, 25)
    assert firing == []
    assert psi, "kindml_feature_drift series missing in Prometheus"
    labels = psi[0]["metric"]
    assert {"model", "version", "feature", "method"} <= set(labels) and labels["version"] == server["version"]
    assert {r["metric"]["feature"] for r in psi} >= {"log_amount", "merchant_category"}
    assert float(samples[0]["value"][1]) >= 500


def test_monitoring_alerts_under_drifted_traffic(server) -> None:  # type: ignore[no-untyped-def]
    firing, psi, _ = _watch_alerts(server, 1.0, 60)
    assert firing, "no drift alert fired under drifted traffic"
    assert max(float(r["value"][1]) for r in psi) > 0.2


def test_load_60s_at_target_rate_zero_errors_and_bounded_memory(server) -> None:  # type: ignore[no-untyped-def]
    """Loopback load at 200 rps for 60 s (plus a 10 s warm-up): zero errors; predictor RSS growth bounded
    (drift windows and the feature cache are fixed-size). Latency percentiles are printed, not asserted:
    performance is measured in benchmarks/serving, not in tests."""
    import psutil

    from kindml.pipelines.fraud.data import build_world, generate_live
    from kindml.pipelines.fraud.serving import FraudSignature
    from kindml.serving.loadgen import payloads, run_load
    from kindml.serving.server import read_state

    st = read_state(__import__("kindml.workspace", fromlist=["Workspace"]).Workspace(server["home"]))
    proc = psutil.Process(st.pid)
    s = server["summary"]["params"]
    world = build_world(s["seed"], 1500, 400, s["days"], None)
    bodies = payloads(FraudSignature([], 0.5).instances(generate_live(world, 14_000, None, stream=77)))
    warm = run_load(server["url"], server["model"], bodies[:2000], rps=200, duration=10)
    rss0 = proc.memory_info().rss
    stats = run_load(server["url"], server["model"], bodies[2000:], rps=200, duration=60)
    rss1 = proc.memory_info().rss
    summary = stats.summary()
    print(f"\nload 200 rps x 60 s: {json.dumps(summary)}; rss {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB")
    assert warm.errors == 0 and stats.errors == 0 and stats.requests == 12_000
    assert rss1 - rss0 < 40 * 2**20, f"predictor memory grew by {(rss1 - rss0) / 2**20:.1f} MiB in 60 s"


# ---------------------------------------------------------------- workers > 1
def _serve(server, port: int, workers: int, multiproc: Path | None, inherited: dict[str, str] | None = None) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"KINDML_HOME": str(server["home"]), "KINDML_NO_PROGRESS": "1"} | ({"PROMETHEUS_MULTIPROC_DIR": str(multiproc)} if multiproc else {})
    env |= inherited or {}
    log = (server["home"] / f"predictor-{workers}w.log").open("ab")
    return subprocess.Popen([sys.executable, "-P", "-m", "kindml", "-v", "serve", "run", "--model-dir", server["model_dir"], "--port", str(port),
                             "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=server["home"], start_new_session=True)


def _port_of(proc: subprocess.Popen) -> int:
    return int(proc.args[proc.args.index("--port") + 1])  # type: ignore[union-attr, index]


def _listens(proc: subprocess.Popen, port: int) -> bool:
    """The predictor we started (or one of its workers) holds the listening socket of ``port``.

    A 200 on the port alone is not proof: if another server already listened there, ours exits with "port in use"
    while the other answers — and the test would measure the wrong server."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    ours = {p.pid for p in family}
    mine = False
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            mine |= any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in p.connections(kind="tcp"))
    with contextlib.suppress(psutil.AccessDenied):  # and nobody else (SO_REUSEPORT would share the port's connections)
        others = {c.pid for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}
        assert not others - ours - {None}, f"port {port} is also held by process(es) {sorted(others - ours - {None})}"
    return mine


def _log_tail(server, workers: int) -> str:  # type: ignore[no-untyped-def]
    f = server["home"] / f"predictor-{workers}w.log"
    return f.read_text(errors="replace")[-2000:] if f.exists() else ""


def _ready(url: str, model: str, proc: subprocess.Popen, timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    port = _port_of(proc)
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"predictor exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/v2/models/{model}/ready", timeout=2) as r:
                if r.status == 200 and _listens(proc, port):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} not ready within {timeout} s")


def _start(server, workers: int, multiproc: Path | None, model: str,  # type: ignore[no-untyped-def]
           inherited: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A predictor of ``server``'s bundle on a free port, ready and owning its socket; another port if that one was taken."""
    from kindml.localproc import free_port

    for _ in range(3):
        proc = _serve(server, free_port("127.0.0.1"), workers, multiproc, inherited)
        url = f"http://127.0.0.1:{_port_of(proc)}"
        try:
            _ready(url, model, proc)
            return proc, url
        except AssertionError as e:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            if "already in use" not in _log_tail(server, workers) and "also held by" not in str(e):
                raise AssertionError(f"the {workers}-worker predictor did not come up ({e}):\n{_log_tail(server, workers)}") from None
    raise AssertionError("no free port for the predictor after 3 tries")


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name.startswith("kindml_") and not s.name.endswith(("_created", "_bucket", "latency_seconds_sum"))}


def _other_servers_metrics(folder: Path, model: str, version: str, n: int) -> dict[str, str]:
    """A folder holding another (finished) process's multiprocess counters — ``n`` answered requests of ``model`` — and
    the variables a child inherits from a parent that imported Feast (``feast/metrics.py`` points both at one folder)."""
    code = ("import sys\nfrom kindml.monitoring import metrics as mm\n"
            "for _ in range(int(sys.argv[3])): mm.record_request(sys.argv[1], sys.argv[2], '200', 0.001)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    folder.mkdir()
    subprocess.run([sys.executable, "-c", code, model, version, str(n)], env=env, check=True, timeout=120)
    assert list(folder.glob("counter_*.db"))
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder), "PROMETHEUS_MULTIPROCESS_DIR": str(folder)}


def test_two_workers_report_what_one_worker_reports(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`kindml serve run --workers 2` vs `--workers 1` on the same bundle and the same traffic (Feast lookups, 600 rows, 40
    bad requests): request counts, unknown entities, window samples and every drift statistic are equal, whichever
    worker answers the scrape — and both workers served requests. The one-worker server is started the way a child of a
    process that imported Feast is: with Feast's multiprocess folder inherited, holding another server's 5,000 requests
    (this once made the one-worker scrape report other servers' traffic as its own)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    multiproc = tmp_path / "multiproc"
    inherited = _other_servers_metrics(tmp_path / "feast_metrics_parent", server["model"], server["version"], 5000)
    procs: dict[int, subprocess.Popen] = {}
    urls: dict[int, str] = {}
    try:
        for w in (1, 2):
            procs[w], urls[w] = _start(server, w, multiproc if w > 1 else None, server["model"], inherited if w == 1 else None)
        rows = [instance(r) for _, r in server["tx"].iloc[-600:].iterrows()]
        bad = [{"account_id": 1}] * 40

        def send(url: str) -> list[int]:
            def one(inst: dict) -> int:  # a new connection per request: the kernel hands them to either worker
                return post(f"{url}/v1/models/{server['model']}:predict", {"instances": [inst]})[0]

            with ThreadPoolExecutor(4) as ex:
                return list(ex.map(one, rows + bad))

        for w in (1, 2):
            codes = send(urls[w])
            assert codes.count(200) == 600 and codes.count(400) == 40
        one = _scrape(urls[1])
        scrapes = [_scrape(urls[2]) for _ in range(8)]
        assert all(s == scrapes[0] for s in scrapes)  # any worker answering the scrape reports the same
        two = scrapes[0]
        key = ("kindml_requests_total", (("code", "200"), ("model", server["model"]), ("version", server["version"])))
        assert one[key] == two[key] == 600
        assert one[("kindml_window_samples", (("model", server["model"]), ("version", server["version"])))] == 600
        drift = {k for k in one if k[0] in ("kindml_feature_drift", "kindml_prediction_drift")}
        assert len(drift) > 20 and set(two) == set(one)
        for k, v in one.items():
            assert two[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
        # both workers took traffic: their own counter files (prometheus_client's multiprocess mode) each count requests
        served = []
        for f in sorted(multiproc.glob("counter_*.db")):
            fams = MultiProcessCollector.merge([str(f)], accumulate=False)
            served.append(sum(s.value for fam in fams if fam.name == "kindml_requests" for s in fam.samples if s.labels.get("code") == "200"))
        assert sum(served) == 600 and sum(1 for n in served if n > 0) == 2, served
    finally:
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
