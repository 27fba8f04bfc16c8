"""Served latency at a fixed request rate, for any registered model: one row per request, open loop.

Starts the predictor of MODEL (`kindml serve start --model MODEL`) in the workspace, warms it up, sends the
workload's own live requests (its generator, no drift) at --rps for --seconds, then stops it. The issue-12 goal
for the text capstone ("served p99 ≤ 30 ms for one text at 50 rps with INT8") is this harness's default:

    KINDML_HOME=.kindml python benchmarks/serving/rate.py --model ticket-intent --pipeline text --rps 50 --seconds 60

(after `kindml run text`). Writes benchmarks/results/serving-rate-<model>-<cpu>-<date>.json and .md with the
machine's CPU flags, the load average before and after, and what the predictor served (quantization.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIPELINES = {"fraud": "kindml.pipelines.fraud.workload", "text": "kindml.pipelines.text.workload",
             "recsys": "kindml.pipelines.recsys.workload", "forecast": "kindml.pipelines.forecast.workload"}


def kindml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="A registered model (its champion is served).")
    ap.add_argument("--pipeline", required=True, choices=sorted(PIPELINES), help="Whose live requests to send.")
    ap.add_argument("--rps", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=4, help="Client threads (enough that the rate, not the client, is the limit).")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()

    from kindml.bench.machine import load_average, machine_info
    from kindml.serving.loadgen import payloads, run_load
    from kindml.workload.loader import instantiate, workload_config

    ref = PIPELINES[a.pipeline]
    wl = instantiate(ref, workload_config(ref))
    n = int(a.rps * a.seconds)
    bodies = payloads(wl.traffic(n + 300, 0.0, 21))
    started = kindml("serve", "start", "--model", a.model, "-o", "json")
    if started.returncode != 0:
        print(started.stderr, file=sys.stderr)
        return started.returncode
    st = json.loads(started.stdout)
    try:
        before = load_average()
        warm = run_load(st["url"], st["model"], bodies[:300], threads=2)
        stats = run_load(st["url"], st["model"], bodies[300:], rps=a.rps, duration=a.seconds, threads=a.threads)
        after = load_average()
    finally:
        kindml("serve", "stop")
    qfile = Path(st["model_dir"]) / "quantization.json"
    served = json.loads(qfile.read_text())["chosen"] if qfile.is_file() else "model.onnx as exported"
    machine = machine_info(threads=int(os.environ.get("OMP_NUM_THREADS", "0") or 0), device="cpu")
    result = {"taken": datetime.now(UTC).isoformat(timespec="seconds"), "model": st["model"], "version": st["version"], "served": served,
              "pipeline": a.pipeline, "rps": a.rps, "seconds": a.seconds, "threads": a.threads, "load_average": {"before": before, "after": after},
              "warm": warm.summary(), "load": stats.summary(), "machine": machine,
              "command": f"python benchmarks/serving/rate.py --model {a.model} --pipeline {a.pipeline} --rps {a.rps:g} --seconds {a.seconds:g}"}
    stem = f"serving-rate-{st['model']}-{machine['cpu_slug']}-{datetime.now(UTC).date().isoformat()}"
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    s = stats.summary()
    flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in machine["cpu_flags"])
    md = [f"# Served latency at {a.rps:g} rps: {st['model']} v{st['version']} ({result['taken']})", "",
          f"CPU: {machine['cpu_model']} ({machine['logical_cpus']} logical CPUs), flags: {flags}; load average before {before}, after {after}.",
          f"Served: `{served}`. Command: `{result['command']}`. One {wl.name} request per HTTP call, open loop, {a.threads} client threads "
          "on the same machine as the predictor.", "",
          "| phase | requests | errors | achieved rps | p50 ms | p90 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, x in (("warm-up (closed loop)", warm.summary()), (f"{a.rps:g} rps x {a.seconds:g} s", s)):
        md.append(f"| {name} | {x['requests']} | {x['errors']} | {x['achieved_rps']} | {x['p50_ms']} | {x['p90_ms']} | {x['p99_ms']} | {x['max_ms']} |")
    (a.out / f"{stem}.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print(json.dumps({"p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "errors": s["errors"], "achieved_rps": s["achieved_rps"],
                      "written": str(a.out / f"{stem}.json")}))
    return 0 if s["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
