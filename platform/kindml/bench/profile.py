"""Where the time goes: ONNX Runtime's built-in profiler, summed per operator type.

Used to explain a ratio (e.g. why INT8 is only 2x faster: which ops stay in
FP32). Profiling adds overhead, so these figures are never used as timings.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def op_breakdown(onnx_path: Path, feeds: dict[str, np.ndarray], threads: int = 1, runs: int = 3, opt_level: str = "all", top: int = 12) -> dict[str, Any]:
    """Per op type: kernel ms per call over ``runs`` profiled calls (after one warm-up), share, node count."""
    import onnxruntime as ort

    levels = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
    with tempfile.TemporaryDirectory(prefix="kindml-profile-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, levels[opt_level])
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
        for _ in range(runs):
            sess.run(None, feeds)
        trace = Path(sess.end_profiling())
        events = json.loads(trace.read_text(encoding="utf-8"))
    runs_ts = sorted(float(e["ts"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    after_warmup = runs_ts[1] if len(runs_ts) > 1 else 0.0  # the first model_run is the warm-up
    per_op: dict[str, float] = defaultdict(float)
    nodes: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and float(e.get("ts", 0)) >= after_warmup:
            op = e.get("args", {}).get("op_name", "?")
            per_op[op] += float(e.get("dur", 0))
            nodes[op].add(e["name"])
    total = sum(per_op.values()) or 1.0
    ops = sorted(per_op.items(), key=lambda kv: -kv[1])
    return {
        "runs": runs,
        "threads": threads,
        "kernel_ms_per_run": round(total / 1000.0 / runs, 3),
        "ops": [{"op": op, "ms_per_run": round(us / 1000.0 / runs, 3), "share": round(us / total, 4), "nodes": len(nodes[op])} for op, us in ops[:top]],
    }
