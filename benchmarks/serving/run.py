"""Serving benchmarks (issue 3): predictor latency at a fixed rate (incl. the Feast lookup), max rps and the
overhead of drift accounting (with vs without, alternating in one run). Drift statistics throughput, false
alarms and detection delay are in benchmarks/drift/.

Usage (needs a registered champion in the workspace, e.g. after `kindml capstone`):

    KINDML_HOME=.kindml python benchmarks/serving/run.py [--seconds 20] [--rps 200]

Writes benchmarks/results/serving-<cpu>-<date>.json and .md. All figures of one
table come from the same run; ratios compare measurements taken side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as stdlib_platform
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", text)
    flags = set((re.search(r"flags\s*:\s*(.+)", text) or ["", ""])[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8"]
    return {"cpu": model.group(1).strip() if model else stdlib_platform.processor(), "cores": os.cpu_count(),
            "flags": {f: f in flags for f in wanted}, "python": sys.version.split()[0]}


def inprocess_drift_cost(folder: Path, n: int = 5000) -> dict:
    """What drift accounting adds per single-transaction request inside the predictor (no HTTP noise)."""
    import numpy as np

    from kindml.monitoring.drift import DriftMonitor
    from kindml.monitoring.profile import load_profile
    from kindml.pipelines.fraud.preprocess import Assembler, PreprocessingSpec
    from kindml.pipelines.fraud.serving import monitored_columns

    spec = PreprocessingSpec.load(folder / "preprocessing.json")
    mon = DriftMonitor(load_profile(folder / "reference_profile.json"), "m", "v")
    cols = {"account_id": np.array([1]), "merchant_id": np.array([2]), "amount": np.array([12.5]),
            "merchant_category": np.array(["grocery"], dtype=object), "channel": np.array(["pos"], dtype=object),
            "country": np.array(["US"], dtype=object), "hour": np.array([3.0])}
    x = Assembler(spec).transform(cols)
    t0 = time.perf_counter()
    for _ in range(n):
        num, cat = monitored_columns(spec.inputs, x, cols)
        num["amount"] = cols["amount"]
        mon.observe(num, cat, np.array([0.1]))
    return {"us_per_request": round((time.perf_counter() - t0) / n * 1e6, 2), "requests": n}


def predictor_latency(seconds: float, rps: float, n_rounds: int = 2) -> dict:
    from kindml.config import load_config
    from kindml.runtime import RuntimeEnv
    from kindml.serving.bundle import fetch_bundle
    from kindml.serving.loadgen import payloads, run_load
    from kindml.serving.server import start_background, stop_background
    from kindml.workload.loader import instantiate, workload_config
    from kindml.workspace import Workspace

    cfg = load_config()
    ws = Workspace(cfg.home).ensure()
    bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, "fraud-detector")
    wl = instantiate(bundle.workload, workload_config(bundle.workload))
    bodies = payloads(wl.traffic(int(rps * seconds), 0.0, stream=31))
    rounds: dict[str, list[dict]] = {"drift_on": [], "drift_off": []}
    try:
        for _ in range(n_rounds):  # alternate so both variants see the same machine state
            for variant, extra in (("drift_on", []), ("drift_off", ["--no-drift"])):
                stop_background(ws)
                st = start_background(ws, bundle.folder, bundle.name, bundle.version, extra_args=extra)
                run_load(st.url, st.model, bodies[:400], threads=2)  # warm-up (Feast cache, ORT)
                rounds[variant].append(run_load(st.url, st.model, bodies, rps=rps, duration=seconds, threads=4).summary())
        stop_background(ws)
        st = start_background(ws, bundle.folder, bundle.name, bundle.version)
        run_load(st.url, st.model, bodies[:400], threads=2)
        closed = run_load(st.url, st.model, bodies, threads=4, max_requests=len(bodies)).summary()
    finally:
        stop_background(ws)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "achieved_rps")} for v, rs in rounds.items()}
    errors = sum(r["errors"] for rs in rounds.values() for r in rs)
    return {"rate_rps": rps, "seconds_per_round": seconds, "rounds": rounds, "median": med, "errors": errors,
            "drift_overhead_p50": round(med["drift_on"]["p50_ms"] / med["drift_off"]["p50_ms"] - 1, 4),
            "max_rps_closed_loop_4_threads": closed["achieved_rps"], "closed_loop": closed,
            "model_version": bundle.version, "inprocess_drift_cost": inprocess_drift_cost(bundle.folder)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rps", type=float, default=200.0)
    ap.add_argument("--rounds", type=int, default=3, help="Alternating on/off rounds (medians are reported).")
    args = ap.parse_args()
    result = {"machine": cpu_info(), "taken": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/serving/run.py " + " ".join(sys.argv[1:])}
    result["predictor"] = predictor_latency(args.seconds, args.rps, args.rounds)
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", result["machine"]["cpu"].lower()).strip("-")[:40]
    stem = out_dir / f"serving-{slug}-{datetime.now(UTC).date()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))


def to_markdown(r: dict) -> str:
    p = r["predictor"]
    on, off = p["median"]["drift_on"], p["median"]["drift_off"]
    lines = [f"# Serving benchmarks ({r['taken']})", "", f"CPU: {r['machine']['cpu']} ({r['machine']['cores']} cores), flags: "
             + ", ".join(k for k, v in r["machine"]["flags"].items() if v), "", f"Command: `{r['command']}` (model v{p['model_version']}); "
             "load generator and predictor share the same 2 cores.", "",
             "| Measure | drift accounting on | off | Goal |", "|---|---|---|---|",
             f"| p50 at {p['rate_rps']:.0f} rps, one transaction per request, incl. Feast lookup | {on['p50_ms']:.2f} ms | {off['p50_ms']:.2f} ms | ≤ 3 ms |",
             f"| p99 at {p['rate_rps']:.0f} rps | {on['p99_ms']:.2f} ms | {off['p99_ms']:.2f} ms | ≤ 8 ms |",
             f"| achieved rps | {on['achieved_rps']:.0f} | {off['achieved_rps']:.0f} | {p['rate_rps']:.0f} |",
             f"| errors (all rounds) | {p['errors']} | | 0 |",
             f"| drift accounting overhead, p50 over HTTP (on / off − 1, median of {len(p['rounds']['drift_on'])} alternating rounds) | {p['drift_overhead_p50'] * 100:.1f} % | | ≤ 5 % |",
             f"| drift accounting cost inside the predictor (monitored columns + observe), per request | {p['inprocess_drift_cost']['us_per_request']} µs = {p['inprocess_drift_cost']['us_per_request'] / 1000 / off['p50_ms'] * 100:.1f} % of the p50 | | ≤ 5 % |",
             f"| max rps, closed loop, 4 client threads | {p['max_rps_closed_loop_4_threads']:.0f} | | — |"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
