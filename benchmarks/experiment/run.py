"""A/B overhead benchmark (issue 14): what serving two model versions through one experiment predictor costs.

Three configurations of `kindml serve` on the same registered champion, taken in alternating rounds in one run:

- ``single``: the champion alone (the predictor logs every prediction for delayed labels, as always);
- ``ab``: an A/B experiment (split 0.5) between the champion and a challenger — here a copy of the champion's
  bundle under another version label, so both arms cost the same and only the routing overhead is measured;
- ``shadow``: the champion answers, the challenger scores every row too (split 1.0) and its prediction is logged.

Open-loop load at ``--rps`` (one transaction per request, Feast lookup included) for ``--seconds`` per round;
medians of the rounds. Goals: ab p99 ≤ 1.2 × single p99; shadow adds ≤ 1 ms to p50.

Usage (needs a registered champion in the workspace, e.g. after `kindml capstone`):

    KINDML_HOME=.kindml python benchmarks/experiment/run.py [--seconds 30] [--rps 200] [--rounds 3]

Writes benchmarks/results/experiment-<cpu>-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import re
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("single", "ab", "shadow")


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", text)
    flags = set((re.search(r"flags\s*:\s*(.+)", text) or ["", ""])[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8"]
    return {"cpu": model.group(1).strip() if model else stdlib_platform.processor(), "cores": os.cpu_count(),
            "flags": {f: f in flags for f in wanted}, "python": sys.version.split()[0], "loadavg_before": os.getloadavg()}


def measure(seconds: float, rps: float, rounds: int) -> dict:
    from kindml.cli.serve_cmd import default_model
    from kindml.config import load_config
    from kindml.experiments import live
    from kindml.runtime import RuntimeEnv
    from kindml.serving.bundle import fetch_bundle
    from kindml.serving.loadgen import payloads, run_load
    from kindml.serving.server import start_background, stop_background
    from kindml.workload.loader import instantiate, workload_config
    from kindml.workspace import Workspace

    cfg = load_config()
    ws = Workspace(cfg.home).ensure()
    bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, os.environ.get("KINDML_BENCH_MODEL") or default_model())
    wl = instantiate(bundle.workload, workload_config(bundle.workload))
    kit = wl.model_kit().load(bundle.folder)
    entity = kit.signature().entity_keys[0]
    chall = ws.tmp / "bench-challenger"
    if chall.exists():
        shutil.rmtree(chall)
    shutil.copytree(bundle.folder, chall)
    bodies = payloads(wl.traffic(int(rps * seconds) + 400, 0.0, stream=31))
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}

    def experiment(mode: str | None, k: int) -> None:
        rec = live.load(ws.serving)
        if rec is not None:
            if rec["status"] == "running":
                live.stop(ws.serving, "benchmark round over", "benchmark")
            else:
                live.archive(ws.serving, rec)
        if mode is None:
            return
        spec = {"name": f"bench-{mode}-{k}", "salt": f"bench-salt-{mode}-{k:04d}", "mode": mode, "split": 0.5 if mode == "ab" else 1.0,
                "metric": {"name": "accuracy", "baseline": 0.9}, "mde": 0.05}
        live.start(ws.serving, spec, model=bundle.name, task=wl.task, threshold=0.5,
                   champion={"version": bundle.version, "dir": str(bundle.folder)}, challenger={"version": "bench-b", "dir": str(chall)},
                   entity_field=entity, started_by="benchmark")

    try:
        for k in range(rounds):  # alternate so every configuration sees the same machine state
            for variant in VARIANTS:
                stop_background(ws)
                experiment(None if variant == "single" else variant, k)
                st = start_background(ws, bundle.folder, bundle.name, bundle.version)
                run_load(st.url, st.model, bodies[:400], threads=2)  # warm-up (Feast cache, ORT, SQLite)
                results[variant].append(run_load(st.url, st.model, bodies[400:], rps=rps, duration=seconds, threads=4).summary())
                print(variant, k, json.dumps(results[variant][-1]), flush=True)
    finally:
        stop_background(ws)
        experiment(None, 0)
    med = {v: {m: statistics.median(r[m] for r in rs) for m in ("p50_ms", "p90_ms", "p99_ms", "achieved_rps")} for v, rs in results.items()}
    return {"rate_rps": rps, "seconds_per_round": seconds, "rounds": results, "median": med,
            "errors": sum(r["errors"] for rs in results.values() for r in rs), "model": bundle.name, "model_version": bundle.version,
            "ab_p99_ratio": round(med["ab"]["p99_ms"] / med["single"]["p99_ms"], 3),
            "shadow_p50_added_ms": round(med["shadow"]["p50_ms"] - med["single"]["p50_ms"], 3)}


def to_markdown(r: dict) -> str:
    p = r["result"]
    m = p["median"]
    lines = [f"# A/B overhead ({r['taken']})", "", f"CPU: {r['machine']['cpu']} ({r['machine']['cores']} cores), flags: "
             + ", ".join(k for k, v in r["machine"]["flags"].items() if v) + f"; load average before {r['machine']['loadavg_before'][0]:.2f}, "
             f"after {r['loadavg_after'][0]:.2f}", "",
             f"Command: `{r['command']}` ({p['model']} v{p['model_version']}; medians of {len(p['rounds']['single'])} alternating rounds of "
             f"{p['seconds_per_round']:.0f} s at {p['rate_rps']:.0f} rps; load generator and predictor share the machine).", "",
             "| | single | ab (split 0.5) | shadow (split 1.0) | Goal |", "|---|---|---|---|---|",
             f"| p50 | {m['single']['p50_ms']:.2f} ms | {m['ab']['p50_ms']:.2f} ms | {m['shadow']['p50_ms']:.2f} ms | shadow ≤ single + 1 ms |",
             f"| p90 | {m['single']['p90_ms']:.2f} ms | {m['ab']['p90_ms']:.2f} ms | {m['shadow']['p90_ms']:.2f} ms | |",
             f"| p99 | {m['single']['p99_ms']:.2f} ms | {m['ab']['p99_ms']:.2f} ms | {m['shadow']['p99_ms']:.2f} ms | ab ≤ 1.2 × single |",
             f"| achieved rps | {m['single']['achieved_rps']:.0f} | {m['ab']['achieved_rps']:.0f} | {m['shadow']['achieved_rps']:.0f} | {p['rate_rps']:.0f} |",
             "", f"ab p99 / single p99 = **{p['ab_p99_ratio']:.3f}**; shadow p50 − single p50 = **{p['shadow_p50_added_ms']:.3f} ms**; "
             f"errors in all rounds: {p['errors']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rps", type=float, default=200.0)
    ap.add_argument("--rounds", type=int, default=3, help="Alternating rounds of the three configurations (medians reported).")
    args = ap.parse_args()
    result = {"machine": cpu_info(), "taken": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/experiment/run.py " + " ".join(sys.argv[1:])}
    result["result"] = measure(args.seconds, args.rps, args.rounds)
    result["loadavg_after"] = os.getloadavg()
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", result["machine"]["cpu"].lower()).strip("-")[:40]
    stem = out_dir / f"experiment-{slug}-{datetime.now(UTC).date()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
