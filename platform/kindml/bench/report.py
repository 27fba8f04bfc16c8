"""Writing a result: JSON, a markdown table and PNG plots (matplotlib, Agg backend).

Also evaluates the issue's goals against a result (:func:`evaluate_goals`), so
the table of ratios and whether each goal was met come from the same numbers
as the JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kindml.bench.catalog import CPU_EP, VARIANTS
from kindml.bench.quality import PLATFORM_RULES, rules_of

GOAL_BATCH = 32


def thread_counts(doc: dict[str, Any]) -> list[int]:
    s = doc.get("settings", {})
    return list(s.get("thread_counts") or [s.get("threads", doc.get("machine", {}).get("threads", 1))])


def _at_threads(doc: dict[str, Any], threads: int) -> dict[str, Any]:
    """A view of ``doc`` with only the records measured at ``threads`` (records without the field: the first count)."""
    first = thread_counts(doc)[0]
    return doc | {"results": [r for r in doc.get("results", []) if r.get("threads", first) == threads]}


def _find(doc: dict[str, Any], model: str, variant: str, batch: int, provider: str | None = None) -> dict[str, Any] | None:
    for r in doc.get("results", []):
        if r["model"] == model and r["variant"] == variant and r["batch"] == batch and (provider is None or r["provider"] == provider):
            return r
    return None


def _goal(goal: str, model: str, batch: int | None, measured: Any, target: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    return {"goal": goal, "model": model, "batch": batch, "measured": measured, "target": target, "met": met, "detail": detail}


MIN_NN_AGREEMENT = 0.95


def _minilm_ok(r: dict[str, Any]) -> bool:
    """Within the issue's bar for the INT8 goal: cosine >= 0.99 and nearest-neighbour agreement >= 0.95."""
    q = r.get("quality", {})
    return bool(PLATFORM_RULES["minilm_l6"].acceptable(q)) and (q.get("nn_agreement") or 0.0) >= MIN_NN_AGREEMENT


def _applicable(r: dict[str, Any]) -> bool:
    return not (r["variant"] == "ort_fp16" and r["provider"] == CPU_EP)


def evaluate_goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, measured on this result, per thread count (``met`` is None when not measured)."""
    goals: list[dict[str, Any]] = []
    for i, threads in enumerate(thread_counts(doc)):
        for g in _goals_at(_at_threads(doc, threads), quality_goals=i == 0):
            goals.append(g | {"threads": threads})
    return goals


def _goals_at(doc: dict[str, Any], quality_goals: bool = True) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    device_ep = CPU_EP if doc.get("device", "cpu") == "cpu" else "CUDAExecutionProvider"
    b = GOAL_BATCH
    dyn = _find(doc, "minilm_l6", "ort_int8_dynamic", b, CPU_EP)
    if dyn is not None:
        sp = dyn["speedup_vs_fp32"]
        goals.append(_goal("MiniLM INT8 dynamic vs ORT FP32 throughput", "minilm_l6", b, sp, ">= 2.5x", None if sp is None else sp >= 2.5))
        cos = dyn["quality"].get("cosine_to_fp32")
        goals.append(_goal("MiniLM INT8 dynamic cosine similarity to FP32", "minilm_l6", b, cos, ">= 0.99", None if cos is None else cos >= 0.99, f"nn_agreement {dyn['quality'].get('nn_agreement')}"))
    else:
        goals.append(_goal("MiniLM INT8 dynamic vs ORT FP32 throughput", "minilm_l6", b, None, ">= 2.5x", None, "not measured in this run"))
    int8 = [
        r for r in doc.get("results", [])
        if r["model"] == "minilm_l6" and r["batch"] == b and r["provider"] == CPU_EP and r.get("precision") == "int8" and r["speedup_vs_fp32"]
    ]  # fmt: skip
    good = [r for r in int8 if _minilm_ok(r)]
    if good:
        best = max(good, key=lambda r: r["speedup_vs_fp32"])
        sp = best["speedup_vs_fp32"]
        q = best["quality"]
        goals.append(_goal("MiniLM best INT8 (cosine >= 0.99, NN agreement >= 0.95) vs ORT FP32 (unfused)", "minilm_l6", b, sp, ">= 2.5x", sp >= 2.5, f"best: {best['variant']} (cosine {q.get('cosine_to_fp32')}, NN agreement {q.get('nn_agreement')})"))
    elif int8:
        fastest = max(int8, key=lambda r: r["speedup_vs_fp32"])
        goals.append(_goal("MiniLM best INT8 (cosine >= 0.99, NN agreement >= 0.95) vs ORT FP32 (unfused)", "minilm_l6", b, None, ">= 2.5x", False, f"no INT8 variant meets the quality bar (fastest: {fastest['variant']} {fastest['speedup_vs_fp32']}x, cosine {fastest['quality'].get('cosine_to_fp32')}, NN agreement {fastest['quality'].get('nn_agreement')})"))
    statics = [r for r in doc.get("results", []) if r["model"] == "minilm_l6" and r["variant"] in ("ort_int8_static_qdq", "ort_ts_int8_static_qdq", "ort_fused_int8_static_qdq") and r["provider"] == CPU_EP]
    if statics and quality_goals:
        best = max(statics, key=lambda r: (r["quality"].get("cosine_to_fp32") or 0.0, r["speedup_vs_fp32"] or 0.0))
        cos = best["quality"].get("cosine_to_fp32")
        others = sorted({f"{r['variant']} {r['quality'].get('cosine_to_fp32')}" for r in statics if r["variant"] != best["variant"]})
        goals.append(_goal("MiniLM static INT8 QDQ cosine similarity to FP32 (best static recipe)", "minilm_l6", None, cos, ">= 0.99", None if cos is None else cos >= 0.99, f"best: {best['variant']}; others: {', '.join(others) or 'none'}"))
    ort_recs = [
        r for r in doc.get("results", [])
        if r["model"] == "minilm_l6" and r["batch"] == b and r["variant"] != "torch_eager" and _applicable(r) and r["provider"] == device_ep
        and PLATFORM_RULES["minilm_l6"].acceptable(r["quality"]) and r["speedup_vs_torch"]
    ]  # fmt: skip
    if ort_recs:
        best = max(ort_recs, key=lambda r: r["speedup_vs_torch"])
        sp = best["speedup_vs_torch"]
        goals.append(_goal("MiniLM best ORT variant (cosine >= 0.99) vs PyTorch eager", "minilm_l6", b, sp, ">= 3x", sp >= 3.0, f"best: {best['variant']} (cosine {best['quality'].get('cosine_to_fp32')})"))
    else:
        goals.append(_goal("MiniLM best ORT variant (cosine >= 0.99) vs PyTorch eager", "minilm_l6", b, None, ">= 3x", None, "not measured in this run"))
    qdq_batches = sorted({r["batch"] for r in doc.get("results", []) if r["model"] == "digits_cnn" and r["variant"] == "ort_int8_static_qdq"})
    if qdq_batches:
        for batch in [x for x in qdq_batches if x >= b] or [max(qdq_batches)]:
            qdq = _find(doc, "digits_cnn", "ort_int8_static_qdq", batch, CPU_EP)
            if qdq is None:
                continue
            sp = qdq["speedup_vs_fp32"]
            goals.append(_goal("Digits CNN INT8 static QDQ vs ORT FP32 throughput", "digits_cnn", batch, sp, ">= 2x", None if sp is None else sp >= 2.0))
        qdq = _find(doc, "digits_cnn", "ort_int8_static_qdq", qdq_batches[-1], CPU_EP)
        fp32 = _find(doc, "digits_cnn", "ort_fp32_all", qdq_batches[-1], CPU_EP)
        if qdq is not None:
            delta = qdq["quality"].get("accuracy_delta")
            drop = None if delta is None else round(-delta * 100, 3) + 0.0  # + 0.0: no "-0.0"
            goals.append(_goal("Digits CNN INT8 static QDQ accuracy drop (points)", "digits_cnn", None, drop, "<= 0.5 pt", None if drop is None else drop <= 0.5, f"accuracy {qdq['quality'].get('accuracy')} (FP32 {fp32['quality'].get('accuracy') if fp32 else '?'})"))
            if fp32 is not None:
                ratio = round(fp32["size_bytes"] / qdq["size_bytes"], 3)
                goals.append(_goal("Digits CNN INT8 model size vs FP32", "digits_cnn", None, ratio, ">= 3.5x smaller", ratio >= 3.5, f"{fp32['size_bytes']} -> {qdq['size_bytes']} bytes"))
    else:
        goals.append(_goal("Digits CNN INT8 static QDQ vs ORT FP32 throughput", "digits_cnn", b, None, ">= 2x", None, "not measured in this run"))
    return goals


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{nd}f}"
    return str(x)


def _ok(x: bool | None) -> str:
    return "–" if x is None else ("yes" if x else "**no**")


def _delta(x: Any) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:+.2e}" if abs(x) < 1e-3 else f"{x:+.4f}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _label(r: dict[str, Any]) -> str:
    short = {"CPUExecutionProvider": "", "CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "trt", "torch-cpu": "", "torch-cuda": "cuda"}
    p = short.get(r["provider"], r["provider"])
    return r["variant"] + (f" ({p})" if p else "")


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    isa = ", ".join(k for k, v in m["isa"].items() if v) or "none"
    lines = [
        f"# kindml bench: {doc['suite']} suite on {m['cpu_model']} ({doc['created'][:10]})",
        "",
        f"- CPU: {m['cpu_model']}; ISA: {isa}; flags: {' '.join(m['cpu_flags'])}",
        f"- threads: {', '.join(str(t) for t in thread_counts(doc))} intra-op (inter-op 1; ORT and PyTorch alike) of {m['logical_cpus']} logical CPUs; device: {doc['device']}",
        f"- onnxruntime {m['onnxruntime_version']} (providers: {', '.join(m['providers'])}); torch {m.get('torch_version')}",
        f"- settings: batches {doc['settings']['batches_by_model']}, {doc['settings']['repeats']} repeats (interleaved), warm-up {doc['settings']['warmup']}, blocks >= {doc['settings']['min_block_ms']} ms",
        f"- load average at start / end: {m.get('load_average_start')} / {m.get('load_average_end')}; noisy measurements (CV > {doc['settings']['cv_threshold']}): {doc.get('noisy_records', 0)} of {len(doc['results'])}",
        f"- wall time: {_fmt(doc.get('wall_seconds'), 1)} s",
        "",
        "Throughput is `batch x 1000 / p50_ms`; speed-ups are against `ort_fp32_all` (same model, provider family, batch).",
        "",
    ]
    if doc.get("goals"):
        lines += ["## Goals", "", "| goal | threads | batch | measured | target | met | detail |", "|---|---|---|---|---|---|---|"]
        for g in doc["goals"]:
            met = "–" if g["met"] is None else ("yes" if g["met"] else "**no**")
            lines.append(f"| {g['goal']} | {_fmt(g.get('threads'))} | {_fmt(g['batch'])} | {_fmt(g['measured'], 3)} | {g['target']} | {met} | {g['detail']} |")
        lines.append("")
    rules = rules_of(doc)
    for model, meta in doc.get("models", {}).items():
        recs = [r for r in doc["results"] if r["model"] == model]
        rule = rules.get(model)
        metric = rule.primary if rule else "quality"
        lines += [f"## {model}", "", f"Source: {meta.get('source')}. Quality: {meta.get('quality_metric')} ({meta.get('eval_rows')} samples).", ""]
        if not recs:
            lines += ["No measurements.", ""]
            continue
        first = thread_counts(doc)[0]
        cols = sorted({(r.get("threads", first), r["batch"]) for r in recs})
        multi = len({t for t, _ in cols}) > 1
        labels = list(dict.fromkeys(_label(r) for r in recs))
        lines += ["Speed-up vs ORT FP32 (all) by " + ("threads and batch" if multi else "batch") + ":", ""]
        ok_head = f"quality ok ({rule.key} >= {rule.floor})" if rule else "quality ok"
        head = [f"{t}t b={b}" if multi else f"b={b}" for t, b in cols]
        extra = " NN agreement |" if model == "minilm_l6" else ""
        lines.append("| variant | " + " | ".join(head) + f" | {metric} | delta |{extra} {ok_head} | size |")
        lines.append("|---" * (len(cols) + 5 + (1 if extra else 0)) + "|")
        for lab in labels:
            rs = {(r.get("threads", first), r["batch"]): r for r in recs if _label(r) == lab}
            any_r = next(iter(rs.values()))
            cells = [(_fmt(rs[c]["speedup_vs_fp32"]) + "x" + ("*" if rs[c].get("noisy") else "")) if c in rs and rs[c]["speedup_vs_fp32"] is not None else "–" for c in cols]
            note = " (n/a on CPU)" if not _applicable(any_r) else ""
            nn = f" {_fmt(any_r['quality'].get('nn_agreement'), 3)} |" if extra else ""
            lines.append(f"| {lab}{note} | " + " | ".join(cells) + f" | {_fmt(any_r['quality'].get(metric), 4)} | {_delta(any_r.get('quality_delta'))} |{nn} {_ok(rule.acceptable(any_r['quality']) if rule else None)} | {_size(any_r['size_bytes'])} |")
        lines += ["", "`*` noisy (CV above threshold).", ""]
        recipes = meta.get("recipes") or {}
        fused = recipes.get("fused_fp32", {})
        if fused.get("fused") is not None:
            lines += [f"ORT transformer optimizer on the TorchScript export: fused {', '.join(f'{v} {k}' for k, v in fused['fused'].items()) or 'nothing'} (fully fused: {'yes' if fused.get('fully_fused') else 'no'}).", ""]
        lines += _profile_lines(meta.get("profile") or {})
        for weights in ("int8_qdq", "ts_int8_qdq", "fused_int8_qdq"):
            scales = recipes.get(weights, {}).get("largest_activation_scales") or []
            if scales:
                top = scales[0]
                verdict = "a tensor whose range needs a scale this large keeps no resolution in 8 bits" if top["scale"] >= 1e3 else "no mask-sized range"
                lines += [f"Static QDQ `{weights}`: largest activation scale {top['scale']:.3g} on `{top['tensor']}` ({verdict}).", ""]
        lines += ["<details><summary>all figures</summary>", ""]
        lines.append("| variant | threads | batch | throughput/s | p50 ms | p99 ms | CV | vs FP32 | vs torch | quality |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(recs, key=lambda r: (labels.index(_label(r)), r.get("threads", first), r["batch"])):
            qual = ", ".join(f"{k}={_delta(v) if k.endswith('_delta') else _fmt(v, 4)}" for k, v in r["quality"].items())
            lines.append(
                f"| {_label(r)} | {r.get('threads', first)} | {r['batch']} | {_fmt(r['throughput_per_s'], 1)} | {_fmt(r['p50_ms'], 3)} | {_fmt(r['p99_ms'], 3)} | {_fmt(r['cv'], 3)} | {_fmt(r['speedup_vs_fp32'])} | {_fmt(r['speedup_vs_torch'])} | {qual} |"
            )
        lines += ["", "</details>", ""]
    if doc.get("skipped"):
        lines += ["## Skipped", "", "| model | variant | provider | kind | reason |", "|---|---|---|---|---|"]
        for s in doc["skipped"]:
            lines.append(f"| {s['model']} | {s['variant']} | {s['provider']} | {s['kind']} | {s['reason']} |")
        lines.append("")
    return "\n".join(lines)


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    cols = [v for v in ("ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq", "ort_fused_fp32", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq", "ort_fused_int8_smooth") if isinstance(prof.get(v), dict) and "ops" in prof[v]]
    if not cols:
        return []
    order: list[str] = []
    for c in cols:
        for o in prof[c]["ops"][:6]:
            if o["op"] not in order:
                order.append(o["op"])
    per = {c: {o["op"]: o["ms_per_run"] for o in prof[c]["ops"]} for c in cols}
    lines = [f"Where the time goes (ORT profiler, batch {prof.get('batch')}, kernel ms per call by op type):", "", "| op | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for op in order:
        lines.append(f"| {op} | " + " | ".join(_fmt(per[c].get(op), 3) for c in cols) + " |")
    lines.append("| total kernel time | " + " | ".join(_fmt(prof[c]["kernel_ms_per_run"], 3) for c in cols) + " |")
    return [*lines, ""]


def plot_latency(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in doc.get("models", {}) if any(r["model"] == m for r in doc["results"])]
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(5.2 * max(1, len(models)), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        recs = [r for r in doc["results"] if r["model"] == model]
        counts = thread_counts(doc)
        for lab in dict.fromkeys(_label(r) for r in recs):
            for t in counts:
                rs = sorted((r for r in recs if _label(r) == lab and r.get("threads", counts[0]) == t), key=lambda r: r["batch"])
                if not rs:
                    continue
                style = "--" if VARIANTS[rs[0]["variant"]].precision == "fp32" else "-"
                ax.plot([r["batch"] for r in rs], [r["p50_ms"] for r in rs], style, marker="o" if t == counts[0] else "s", markersize=3, label=lab + (f" @{t}t" if len(counts) > 1 else ""))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("p50 latency per call (ms)")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"Latency vs batch: {doc['machine']['cpu_model']}, threads {', '.join(map(str, thread_counts(doc)))}, ORT {doc['machine']['onnxruntime_version']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in doc.get("models", {}) if any(r["model"] == m for r in doc["results"])]
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(5.2 * max(1, len(models)), 4.2), squeeze=False)
    first = thread_counts(doc)[0]
    rules = rules_of(doc)
    for ax, model in zip(axes[0], models, strict=False):
        recs = [r for r in doc["results"] if r["model"] == model and r.get("threads", first) == first]
        batches = sorted({r["batch"] for r in recs})
        batch = GOAL_BATCH if GOAL_BATCH in batches else batches[-1]
        for r in recs:
            if r["batch"] != batch or r["speedup_vs_fp32"] is None or r.get("quality_delta") is None:
                continue
            marker = "x" if not _applicable(r) else "o"
            ax.scatter(r["quality_delta"], r["speedup_vs_fp32"], marker=marker)
            ax.annotate(_label(r), (r["quality_delta"], r["speedup_vs_fp32"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        ax.set_xlabel(f"{rules[model].primary if model in rules else 'quality'} delta vs FP32")
        ax.set_ylabel(f"speed-up vs ort_fp32_all (batch {batch})")
        ax.set_title(model)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Speed-up vs accuracy delta at {first} thread(s) (x: FP16 on CPU, not applicable)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rerender(json_path: Path) -> dict[str, Path]:
    """Rewrite a result's goals, markdown and plots from its JSON (same measurements; after a report change)."""
    doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
    doc["goals"] = evaluate_goals(doc)
    return write_reports(doc, Path(json_path).parent, Path(json_path).stem)


def write_reports(doc: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "latency_plot": out_dir / f"{stem}-latency.png",
        "tradeoff_plot": out_dir / f"{stem}-speedup-vs-quality.png",
    }
    doc["files"] = {k: p.name for k, p in paths.items()}
    paths["json"].write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(doc) + "\n", encoding="utf-8")
    plot_latency(doc, paths["latency_plot"])
    plot_tradeoff(doc, paths["tradeoff_plot"])
    return paths
