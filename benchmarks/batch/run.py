"""Batch scoring benchmark: Ray Data vs a plain pandas loop vs the online predictor, for the same users, in one run.

The recommendation model's exported ONNX graph (a two-tower model folded into "score every catalogue
item, drop the user's rated items, keep the top 50") scores N users three ways:

1. ``pandas``: :func:`kindml.serving.batch.score_with_pandas` — one scorer (one ONNX Runtime thread)
   in this process, a loop over slices of the rows;
2. ``ray_data``: :func:`kindml.serving.batch.score_with_ray` — what the ``batch`` stage runs: Ray Data
   ``map_batches`` with an actor pool (2 actors, one thread each); reported as wall time (actor start-up
   included, Ray's own start excluded and reported apart) and as steady state (the scorers' own time);
3. ``online``: the KServe predictor (``kindml serve run``, a real ModelServer process) asked for the
   same users over HTTP, live-scored (no precomputed rows yet: the Feast lookup of the profile, then the
   same ONNX graph): one user per request (p50 / p99, users/s) and 256 users per request (users/s).
   After the batch is written back to Feast, the same single-user requests again answered from the
   precomputed rows.

It also times INT8 dynamic quantisation of the same graph against FP32 (the quantize question).

Everything is built in a temporary workspace from the capstone's own code: a generated world of
``--users`` users and ``--items`` items with ``--ratings-per-user`` ratings each, the Feast user
profiles (offline table, apply, materialize into SQLite), the recsys kit fitted on it and the model
**untrained** (random weights: throughput does not depend on the weights; the shapes are the
capstone's). Nothing is downloaded.

    python benchmarks/batch/run.py [--users 50000] [--items 1500] [--online-users 2000]

Writes benchmarks/results/batch-<cpu>-<date>.json and .md (CPU flags and the load average recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = "kindml.pipelines.recsys.workload"


def build(home: Path, users: int, items: int, per_user: int, dim: int) -> dict[str, Any]:
    """A workspace with Feast user profiles and an exported (untrained) recsys bundle; the batch rows."""
    import torch

    from kindml.features import store as fstore
    from kindml.model.export import export_onnx
    from kindml.pipelines.recsys.data import build_world, generate_history
    from kindml.pipelines.recsys.features import (
        USER_FEATURES,
        USER_VIEW,
        item_stats,
        recommendation_objects,
        user_profile,
    )
    from kindml.runtime import RuntimeEnv
    from kindml.workload.loader import workload_config
    from kindml.workspace import Workspace

    os.environ["KINDML_HOME"] = str(home)
    cfg = workload_config(WORKLOAD, None, {"workloads.recsys.users": users, "workloads.recsys.items": items})
    ws = Workspace(home).ensure()
    env = RuntimeEnv.local(cfg, ws)
    t0 = time.perf_counter()
    world = build_world(7, users, items, 60, None)
    ratings = generate_history(world, users * per_user)
    profile = user_profile(ratings, world.items)
    istats = item_stats(ratings)
    data_dir = env.feature_repo_path / "data" / "recsys" / "bench"
    from kindml.pipelines.recsys.features import feature_objects

    fstore.write_offline_tables({USER_VIEW: profile, "item_stats": istats}, data_dir)
    store = fstore.open_store(env.feature_repo_path, cfg.features.project)
    fstore.apply_definitions(store, [*feature_objects(data_dir), *recommendation_objects(data_dir)])
    fstore.materialize(store, world.start.to_pydatetime(), world.end.to_pydatetime(), [USER_VIEW])
    latest = profile.sort_values("event_timestamp").drop_duplicates("user_id", keep="last").drop(columns="event_timestamp")
    rated = ratings.groupby("user_id")["item_id"].agg(list)
    rows = pd.DataFrame({"user_id": rated.index.to_numpy(np.int64), "event_timestamp": world.end, "batch_row_id": np.arange(len(rated)),
                         "exclude": rated.to_numpy()}).merge(latest[["user_id", *USER_FEATURES]], on="user_id", how="left")
    # the kit's preprocessing from the ratings with their users' latest profile (a throughput benchmark needs no point-in-time join)
    wl = __import__(WORKLOAD, fromlist=["WORKLOAD"]).WORKLOAD(cfg)
    kit = wl.model_kit()
    train = ratings.merge(world.items[["item_id", "genres"]], on="item_id").merge(latest, on="user_id", how="left")
    kit.fit(train)
    torch.manual_seed(0)
    model = kit.recipe.build({"dim": dim}, kit.meta())
    bundle = home / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    kit.save(bundle)
    export_onnx(kit.onnx_module(model), bundle / "model.onnx", cfg.export.opset)
    sig = kit.signature()
    (bundle / "workload.json").write_text(json.dumps({"workload": WORKLOAD, "name": "recsys", "task": "ranking", "model_name": "recommender",
                                                      "feature_service": sig.feature_service, "request_fields": sig.fields,
                                                      "response_outputs": sig.outputs}), encoding="utf-8")
    (bundle / "examples.json").write_text(json.dumps([{"user_id": int(rows["user_id"].iloc[0])}]), encoding="utf-8")
    return {"cfg": cfg, "ws": ws, "env": env, "rows": rows, "bundle": bundle, "store": store, "data_dir": data_dir, "world": world,
            "prepare_seconds": round(time.perf_counter() - t0, 1), "ratings": len(ratings), "catalogue": kit.n_items}


def online(ctx: dict[str, Any], users: np.ndarray, tag: str) -> dict[str, Any]:
    """Single-user requests (1 client thread: latency) and 256-user requests (throughput) for ``users``."""
    from kindml.serving.loadgen import run_load
    from kindml.serving.server import start_background, stop_background

    ws = ctx["ws"]
    st = start_background(ws, ctx["bundle"], "recommender", "1", extra_args=["--no-drift"])
    try:
        single = [json.dumps({"instances": [{"user_id": int(u)}]}).encode() for u in users]
        run_load(st.url, st.model, single[:200], threads=1)  # warm-up: ORT, the Feast connection
        one = run_load(st.url, st.model, single, threads=1).summary()
        batched = [json.dumps({"instances": [{"user_id": int(u)} for u in users[i:i + 256]]}).encode() for i in range(0, len(users), 256)]
        t0 = time.perf_counter()
        many = run_load(st.url, st.model, batched, threads=1).summary()
        many_s = time.perf_counter() - t0
        probe = json.loads(run_load_one(st.url, st.model, int(users[0])))
    finally:
        stop_background(ws)
    return {"tag": tag, "users": len(users), "single_user_requests": one, "users_per_s_single": round(len(users) / one["seconds"], 1)
            if one.get("seconds") else None, "batched_256": many, "users_per_s_batched": round(len(users) / many_s, 1),
            "source_of_first_user": probe["predictions"][0]["source"]}


def run_load_one(url: str, model: str, user: int) -> bytes:
    import urllib.request

    req = urllib.request.Request(f"{url}/v1/models/{model}:predict", data=json.dumps({"instances": [{"user_id": user}]}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def quantize_probe(bundle: Path, rows: pd.DataFrame, n: int = 4096) -> dict[str, Any]:
    """FP32 vs INT8 dynamic of the same graph on the same feeds: time per user and how much of the top 10 survives."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from kindml.model.export import onnx_session, run_onnx
    from kindml.model.kit import frame_columns
    from kindml.pipelines.recsys.model import RecsysKit

    kit = RecsysKit().load(bundle)
    feeds = kit.feeds(frame_columns(rows.head(n)))
    int8 = bundle.parent / "model.int8.onnx"
    plain = bundle.parent / "model.novalueinfo.onnx"
    proto = onnx.load(str(bundle / "model.onnx"))
    del proto.graph.value_info[:]  # the dynamo exporter's value_info trips ORT's shape inference in the quantizer
    onnx.save(proto, str(plain))
    quantize_dynamic(str(plain), str(int8), weight_type=QuantType.QInt8)
    out: dict[str, Any] = {"users": len(feeds["user_index"])}
    tops = {}
    for name, path in (("fp32", bundle / "model.onnx"), ("int8_dynamic", int8)):
        sess = onnx_session(path, threads=1)
        run_onnx(sess, {k: v[:256] for k, v in feeds.items()})
        t0 = time.perf_counter()
        res = [run_onnx(sess, {k: v[i:i + 1024] for k, v in feeds.items()}) for i in range(0, len(feeds["user_index"]), 1024)]
        secs = time.perf_counter() - t0
        tops[name] = np.concatenate([r[1] for r in res])[:, :10]
        out[name] = {"seconds": round(secs, 4), "users_per_s": round(len(feeds["user_index"]) / secs, 1)}
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops["fp32"], tops["int8_dynamic"], strict=True)])
    out["top10_overlap"] = round(float(overlap), 4)
    out["speedup"] = round(out["int8_dynamic"]["users_per_s"] / out["fp32"]["users_per_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=1_500)
    ap.add_argument("--ratings-per-user", type=int, default=20)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--online-users", type=int, default=2_000, help="Users asked over HTTP (each way).")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from kindml.bench.machine import cpu_slug, load_average, read_cpuinfo
    from kindml.serving.batch import ScorerSpec, score_with_pandas, score_with_ray

    cpu = read_cpuinfo()
    result: dict[str, Any] = {"taken": datetime.now(UTC).isoformat(timespec="seconds"), "command": "python benchmarks/batch/run.py " + " ".join(sys.argv[1:]),
                              "machine": {"cpu": cpu.model, "logical_cpus": os.cpu_count(), "flags": {f: f in cpu.all_flags for f in
                                          ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")},
                                          "load_average_before": load_average()},
                              "params": vars(args) | {"out": str(args.out)}}
    with tempfile.TemporaryDirectory(prefix="kindml-batch-bench-") as tmp:
        ctx = build(Path(tmp), args.users, args.items, args.ratings_per_user, args.dim)
        rows = ctx["rows"]
        result["data"] = {"users": len(rows), "catalogue": ctx["catalogue"], "ratings": ctx["ratings"], "prepare_seconds": ctx["prepare_seconds"],
                          "exclude_median": float(rows["exclude"].map(len).median()), "top_k": 50}
        spec = ScorerSpec(WORKLOAD, ctx["cfg"].model_dump_json(), str(ctx["bundle"]))
        engines: dict[str, Any] = {}
        out_pd, st_pd = score_with_pandas(rows, spec, args.batch_size)
        engines["pandas"] = st_pd.to_dict()
        out_ray, st_ray = score_with_ray(rows, spec, args.batch_size, args.workers)
        engines["ray_data"] = st_ray.to_dict()
        a = out_pd.sort_values("user_id")["rec_items"].map(tuple).tolist()
        b = out_ray.sort_values("user_id")["rec_items"].map(tuple).tolist()
        engines["same_answers"] = a == b
        result["engines"] = engines
        rng = np.random.default_rng(0)
        asked = rng.choice(rows["user_id"].to_numpy(), size=min(args.online_users, len(rows)), replace=False)
        result["online_live"] = online(ctx, asked, "live (Feast profile lookup + ONNX)")
        # write the batch back (what the batch stage does) and ask the same users again
        from kindml.features import store as fstore
        from kindml.pipelines.recsys.features import RECS_TABLE, RECS_VIEW

        fstore.write_offline_tables({RECS_TABLE: out_ray}, ctx["data_dir"])
        ts = pd.to_datetime(out_ray["event_timestamp"], utc=True)
        fstore.materialize(ctx["store"], ts.min().to_pydatetime(), (ts.max() + pd.Timedelta(seconds=1)).to_pydatetime(), [RECS_VIEW])
        result["online_precomputed"] = online(ctx, asked, "precomputed (Feast lookup only)")
        result["quantize"] = quantize_probe(ctx["bundle"], rows)
    result["machine"]["load_average_after"] = load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"batch-{cpu_slug(cpu.model)}-{datetime.now(UTC).date()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    stem.with_suffix(".md").write_text(to_markdown(result), encoding="utf-8")
    print(to_markdown(result))


def to_markdown(r: dict[str, Any]) -> str:
    e, d = r["engines"], r["data"]
    pd_, ray = e["pandas"], e["ray_data"]
    live, pre, q = r["online_live"], r["online_precomputed"], r["quantize"]
    m = r["machine"]
    base = pd_["rows_per_s"]
    one_live = live["single_user_requests"]
    one_pre = pre["single_user_requests"]
    lines = [
        f"# Batch scoring benchmark ({r['taken']})", "",
        f"CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs), flags: {', '.join(k for k, v in m['flags'].items() if v) or 'none of the listed'}; "
        f"load average before {m['load_average_before']}, after {m.get('load_average_after')} (a shared machine: other jobs ran).", "",
        f"Command: `{r['command']}`. {d['users']:,} users × {d['catalogue']:,} catalogue items, top {d['top_k']} per user, median "
        f"{d['exclude_median']:.0f} rated items excluded per user; the recsys capstone's ONNX graph (untrained weights, same shapes). "
        "All rows of this table come from one run on the same users; client and servers share the machine.", "",
        "| path | users | users/s | vs pandas loop | latency | notes |", "|---|---:|---:|---:|---|---|",
        f"| pandas loop, 1 process, ORT 1 thread | {pd_['rows']:,} | {pd_['rows_per_s']:,.0f} | 1.00x | — | batch {pd_['batch_size']} |",
        f"| Ray Data `map_batches`, {ray['workers']} actors × 1 thread, wall | {ray['rows']:,} | {ray['rows_per_s']:,.0f} | {ray['rows_per_s'] / base:.2f}x | — | "
        f"actor start-up included; Ray start {ray['setup_seconds']:.1f} s not included |",
        f"| Ray Data, steady state (scorers' own time / {ray['workers']}) | {ray['rows']:,} | {ray['extra']['steady_rows_per_s']:,.0f} | "
        f"{ray['extra']['steady_rows_per_s'] / base:.2f}x | — | what a long batch approaches |",
        f"| online predictor, live scoring, 1 user per request | {live['users']:,} | {live['users_per_s_single']:,.0f} | {live['users_per_s_single'] / base:.3f}x | "
        f"p50 {one_live['p50_ms']:.2f} ms, p99 {one_live['p99_ms']:.2f} ms | HTTP + Feast profile lookup + ONNX, 1 client thread |",
        f"| online predictor, live scoring, 256 users per request | {live['users']:,} | {live['users_per_s_batched']:,.0f} | {live['users_per_s_batched'] / base:.3f}x | — | |",
        f"| online predictor, precomputed rows, 1 user per request | {pre['users']:,} | {pre['users_per_s_single']:,.0f} | {pre['users_per_s_single'] / base:.3f}x | "
        f"p50 {one_pre['p50_ms']:.2f} ms, p99 {one_pre['p99_ms']:.2f} ms | Feast lookup only, after the batch wrote back |",
        f"| online predictor, precomputed rows, 256 users per request | {pre['users']:,} | {pre['users_per_s_batched']:,.0f} | {pre['users_per_s_batched'] / base:.3f}x | — | |",
        "", f"Ray Data and the pandas loop gave the same top-50 lists for every user: {e['same_answers']}.", "",
        f"INT8 dynamic quantisation of the same graph ({q['users']:,} users, 1 thread): FP32 {q['fp32']['users_per_s']:,.0f} users/s, "
        f"INT8 {q['int8_dynamic']['users_per_s']:,.0f} users/s ({q['speedup']:.2f}x), top-10 overlap with FP32 {q['top10_overlap']:.3f}.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
