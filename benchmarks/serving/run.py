"""Serving and drift benchmarks (issue 3): predictor latency at a fixed rate, max rps, drift-accounting
overhead, drift binning throughput vs a recompute baseline, false alarms and detection delay.

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

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def cpu_info() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", text)
    flags = set((re.search(r"flags\s*:\s*(.+)", text) or ["", ""])[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8"]
    return {"cpu": model.group(1).strip() if model else stdlib_platform.processor(), "cores": os.cpu_count(),
            "flags": {f: f in flags for f in wanted}, "python": sys.version.split()[0]}


def predictor_latency(seconds: float, rps: float) -> dict:
    from kindml.config import load_config
    from kindml.data.generate import build_world, generate_live
    from kindml.runtime import RuntimeEnv
    from kindml.serving.bundle import fetch_bundle
    from kindml.serving.loadgen import payloads, run_load
    from kindml.serving.server import start_background, stop_background
    from kindml.workspace import Workspace

    cfg = load_config()
    ws = Workspace(cfg.home).ensure()
    bundle = fetch_bundle(cfg, ws, RuntimeEnv.local(cfg, ws).mlflow_tracking_uri, None)
    d = cfg.data
    world = build_world(d.seed, d.accounts, d.merchants, d.days, d.end_date)
    bodies = payloads(generate_live(world, int(rps * seconds), None, stream=31))
    rounds: dict[str, list[dict]] = {"drift_on": [], "drift_off": []}
    try:
        for _ in range(2):  # alternate so both variants see the same machine state
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
            "model_version": bundle.version}


def drift_throughput() -> dict:
    from scipy import stats

    from kindml.monitoring.drift import DriftMonitor
    from kindml.monitoring.profile import build_profile

    rng = np.random.default_rng(0)
    n_feat = 8
    ref = {f"f{i}": rng.normal(size=50_000) for i in range(n_feat)}
    prof = build_profile(ref, {}, rng.uniform(size=50_000))
    mon = DriftMonitor(prof, "m", "1", window=5000)
    out = {}
    for batch in (1, 64, 1024):
        data = {k: rng.normal(size=batch) for k in ref}
        scores = rng.uniform(size=batch)
        reps = max(200, 200_000 // batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            mon.observe(data, {}, scores)
        dt = time.perf_counter() - t0
        out[f"observe_batch_{batch}"] = {"values_per_s": round(reps * batch * (n_feat + 1) / dt), "us_per_call": round(dt / reps * 1e6, 2)}
    # pure binning throughput (the inner loop, single thread) on one long column
    from kindml.monitoring.drift import bin_counts

    col = rng.normal(size=4_000_000)
    edges = np.asarray(prof["numeric"]["f0"]["edges"])
    t0 = time.perf_counter()
    for _ in range(5):
        bin_counts(col, edges)
    out["binning_values_per_s_per_core"] = round(5 * col.size / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    for _ in range(5):
        np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
    out["binning_searchsorted_values_per_s"] = round(5 * col.size / (time.perf_counter() - t0))
    # the scrape-time statistics from the window
    t0 = time.perf_counter()
    for _ in range(200):
        mon.snapshot()
    out["snapshot_ms"] = round((time.perf_counter() - t0) / 200 * 1000, 3)
    # baseline: recompute from the raw 5000-value window per feature (np.histogram PSI + scipy KS)
    window = {k: rng.normal(size=5000) for k in ref}
    t0 = time.perf_counter()
    reps = 50
    for _ in range(reps):
        for k in ref:
            h_ref, e = np.histogram(ref[k], bins=10)
            h_cur, _ = np.histogram(window[k], bins=e)
            p = h_ref / h_ref.sum() + 1e-4
            q = h_cur / h_cur.sum() + 1e-4
            float(np.sum((q - p) * np.log(q / p)))
            stats.ks_2samp(ref[k], window[k])
    dt = time.perf_counter() - t0
    out["baseline_recompute_ms_per_eval"] = round(dt / reps * 1000, 2)
    out["baseline_values_per_s"] = round(reps * n_feat * 5000 / dt)
    return out


def false_alarms_and_delay(threshold: float = 0.2, windows: int = 400) -> dict:
    from kindml.monitoring.drift import DriftMonitor, ks
    from kindml.monitoring.profile import build_profile

    rng = np.random.default_rng(1)
    prof = build_profile({"x": rng.normal(size=100_000)}, {}, rng.uniform(size=100_000))
    alarms = 0
    ks_vals = []
    for _ in range(windows):
        mon = DriftMonitor(prof, "m", "1", window=5000)
        mon.observe({"x": rng.normal(size=5000)}, {}, rng.uniform(size=5000))
        snap = mon.snapshot()["features"]["x"]
        alarms += snap["psi"] > threshold
        ks_vals.append(snap["ks"])
    ks_crit = float(np.quantile(ks_vals, 0.95))  # a KS threshold with a 5% false-alarm rate, measured
    delays = {}
    for shift in (0.25, 0.5, 1.0):
        mon = DriftMonitor(prof, "m", "1", window=5000)
        mon.observe({"x": rng.normal(size=5000)}, {}, rng.uniform(size=5000))
        seen, psi_at, ks_at = 0, None, None
        while seen < 20_000 and (psi_at is None or ks_at is None):
            mon.observe({"x": rng.normal(shift, 1.0, 100)}, {}, rng.uniform(size=100))
            seen += 100
            f = mon.snapshot()["features"]["x"]
            if psi_at is None and f["psi"] > threshold:
                psi_at = seen
            if ks_at is None and f["ks"] > ks_crit:
                ks_at = seen
        delays[f"{shift}sigma"] = {"psi_gt_threshold_after_samples": psi_at, "ks_gt_crit_after_samples": ks_at}
    return {"psi_threshold": threshold, "windows": windows, "window_size": 5000, "psi_false_alarm_rate": alarms / windows,
            "ks_threshold_at_5pct": round(ks_crit, 4), "detection_delay": delays}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rps", type=float, default=200.0)
    ap.add_argument("--skip-server", action="store_true", help="Only the in-process drift benchmarks.")
    args = ap.parse_args()
    result = {"machine": cpu_info(), "taken": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/serving/run.py " + " ".join(sys.argv[1:])}
    result["drift_accounting"] = drift_throughput()
    result["false_alarms"] = false_alarms_and_delay()
    if not args.skip_server:
        result["predictor"] = predictor_latency(args.seconds, args.rps)
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", result["machine"]["cpu"].lower()).strip("-")[:40]
    stem = out_dir / f"serving-{slug}-{datetime.now(UTC).date()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))


def to_markdown(r: dict) -> str:
    da, fa = r["drift_accounting"], r["false_alarms"]
    lines = [f"# Serving and drift benchmarks ({r['taken']})", "", f"CPU: {r['machine']['cpu']} ({r['machine']['cores']} cores), flags: "
             + ", ".join(k for k, v in r["machine"]["flags"].items() if v), "", f"Command: `{r['command']}`", "",
             "| Measure | Value | Goal |", "|---|---|---|"]
    p = r.get("predictor")
    if p:
        on, off = p["median"]["drift_on"], p["median"]["drift_off"]
        lines += [f"| p50 at {p['rate_rps']:.0f} rps (incl. Feast lookup) | {on['p50_ms']:.2f} ms | ≤ 3 ms |",
                  f"| p99 at {p['rate_rps']:.0f} rps | {on['p99_ms']:.2f} ms | ≤ 8 ms |",
                  f"| errors | {p['errors']} | 0 |",
                  f"| max rps (closed loop, 4 client threads on the same 2 cores) | {p['max_rps_closed_loop_4_threads']:.0f} | — |",
                  f"| drift accounting overhead (p50 with / without − 1) | {p['drift_overhead_p50'] * 100:.1f} % | ≤ 5 % |"]
    lines += [f"| binning throughput (searchsorted + bincount) | {da['binning_values_per_s_per_core']:.3g} values/s/core | ≥ 4e7 |",
              f"| (same, searchsorted + bincount) | {da['binning_searchsorted_values_per_s']:.3g} values/s/core | — |",
              f"| observe(), 1 row × 9 series | {da['observe_batch_1']['us_per_call']} µs/call | — |",
              f"| observe(), 1024 rows | {da['observe_batch_1024']['values_per_s']:.3g} values/s | — |",
              f"| drift statistics at scrape (9 series) | {da['snapshot_ms']} ms | — |",
              f"| baseline: recompute PSI + scipy KS on the raw window | {da['baseline_recompute_ms_per_eval']} ms per evaluation | — |",
              f"| PSI > {fa['psi_threshold']} false-alarm rate, {fa['windows']} no-drift windows of {fa['window_size']} | {fa['psi_false_alarm_rate'] * 100:.1f} % | ≤ 5 % |"]
    for k, v in fa["detection_delay"].items():
        lines.append(f"| detection delay, mean shift {k} | PSI: {v['psi_gt_threshold_after_samples'] or 'not within 20000'} samples; KS>{fa['ks_threshold_at_5pct']}: {v['ks_gt_crit_after_samples'] or 'not within 20000'} samples | — |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
