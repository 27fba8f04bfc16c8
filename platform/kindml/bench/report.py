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
from kindml.bench.quality import ACCEPTABLE, PRIMARY_METRIC, acceptable

GOAL_BATCH = 32


def _find(doc: dict[str, Any], model: str, variant: str, batch: int, provider: str | None = None) -> dict[str, Any] | None:
    for r in doc.get("results", []):
        if r["model"] == model and r["variant"] == variant and r["batch"] == batch and (provider is None or r["provider"] == provider):
            return r
    return None


def _goal(goal: str, model: str, batch: int | None, measured: Any, target: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    return {"goal": goal, "model": model, "batch": batch, "measured": measured, "target": target, "met": met, "detail": detail}


def _applicable(r: dict[str, Any]) -> bool:
    return not (r["variant"] == "ort_fp16" and r["provider"] == CPU_EP)


def evaluate_goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, measured on this result (``met`` is None when not measured)."""
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
    ort_recs = [
        r for r in doc.get("results", [])
        if r["model"] == "minilm_l6" and r["batch"] == b and r["variant"] != "torch_eager" and _applicable(r) and r["provider"] == device_ep
        and acceptable("minilm_l6", r["quality"]) and r["speedup_vs_torch"]
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
        f"- threads: {m['threads']} intra-op (inter-op 1) of {m['logical_cpus']} logical CPUs; device: {doc['device']}",
        f"- onnxruntime {m['onnxruntime_version']} (providers: {', '.join(m['providers'])}); torch {m.get('torch_version')}",
        f"- settings: batches {doc['settings']['batches_by_model']}, {doc['settings']['repeats']} repeats (interleaved), warm-up {doc['settings']['warmup']}, blocks >= {doc['settings']['min_block_ms']} ms",
        f"- load average at start / end: {m.get('load_average_start')} / {m.get('load_average_end')}; noisy measurements (CV > {doc['settings']['cv_threshold']}): {doc.get('noisy_records', 0)} of {len(doc['results'])}",
        f"- wall time: {_fmt(doc.get('wall_seconds'), 1)} s",
        "",
        "Throughput is `batch x 1000 / p50_ms`; speed-ups are against `ort_fp32_all` (same model, provider family, batch).",
        "",
    ]
    if doc.get("goals"):
        lines += ["## Goals", "", "| goal | batch | measured | target | met | detail |", "|---|---|---|---|---|---|"]
        for g in doc["goals"]:
            met = "–" if g["met"] is None else ("yes" if g["met"] else "**no**")
            lines.append(f"| {g['goal']} | {_fmt(g['batch'])} | {_fmt(g['measured'], 3)} | {g['target']} | {met} | {g['detail']} |")
        lines.append("")
    for model, meta in doc.get("models", {}).items():
        recs = [r for r in doc["results"] if r["model"] == model]
        metric = PRIMARY_METRIC[model]
        lines += [f"## {model}", "", f"Source: {meta.get('source')}. Quality: {meta.get('quality_metric')} ({meta.get('eval_rows')} samples).", ""]
        if not recs:
            lines += ["No measurements.", ""]
            continue
        batches = sorted({r["batch"] for r in recs})
        labels = list(dict.fromkeys(_label(r) for r in recs))
        lines += ["Speed-up vs ORT FP32 (all) by batch:", ""]
        key, floor = ACCEPTABLE[model]
        lines.append("| variant | " + " | ".join(f"b={b}" for b in batches) + f" | {metric} | delta | quality ok ({key} >= {floor}) | size |")
        lines.append("|---" * (len(batches) + 5) + "|")
        for lab in labels:
            rs = {r["batch"]: r for r in recs if _label(r) == lab}
            any_r = next(iter(rs.values()))
            cells = [(_fmt(rs[b]["speedup_vs_fp32"]) + "x" + ("*" if rs[b].get("noisy") else "")) if b in rs and rs[b]["speedup_vs_fp32"] is not None else "–" for b in batches]
            note = " (n/a on CPU)" if not _applicable(any_r) else ""
            lines.append(f"| {lab}{note} | " + " | ".join(cells) + f" | {_fmt(any_r['quality'].get(metric), 4)} | {_delta(any_r.get('quality_delta'))} | {_ok(acceptable(model, any_r['quality']))} | {_size(any_r['size_bytes'])} |")
        lines += ["", "`*` noisy (CV above threshold).", ""]
        lines += _profile_lines(meta.get("profile") or {})
        scales = (meta.get("recipes") or {}).get("int8_qdq", {}).get("largest_activation_scales") or []
        if scales and scales[0]["scale"] >= 1e3:
            top = scales[0]
            lines += [f"Static QDQ: largest activation scale {top['scale']:.3g} on `{top['tensor']}` (a tensor whose range needs a scale this large keeps no resolution in 8 bits).", ""]
        lines += ["<details><summary>all figures</summary>", ""]
        lines.append("| variant | batch | throughput/s | p50 ms | p99 ms | CV | vs FP32 | vs torch | quality |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for r in sorted(recs, key=lambda r: (labels.index(_label(r)), r["batch"])):
            qual = ", ".join(f"{k}={_delta(v) if k.endswith('_delta') else _fmt(v, 4)}" for k, v in r["quality"].items())
            lines.append(
                f"| {_label(r)} | {r['batch']} | {_fmt(r['throughput_per_s'], 1)} | {_fmt(r['p50_ms'], 3)} | {_fmt(r['p99_ms'], 3)} | {_fmt(r['cv'], 3)} | {_fmt(r['speedup_vs_fp32'])} | {_fmt(r['speedup_vs_torch'])} | {qual} |"
            )
        lines += ["", "</details>", ""]
    if doc.get("skipped"):
        lines += ["## Skipped", "", "| model | variant | provider | kind | reason |", "|---|---|---|---|---|"]
        for s in doc["skipped"]:
            lines.append(f"| {s['model']} | {s['variant']} | {s['provider']} | {s['kind']} | {s['reason']} |")
        lines.append("")
    return "\n".join(lines)


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    cols = [v for v in ("ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq") if isinstance(prof.get(v), dict) and "ops" in prof[v]]
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
        for lab in dict.fromkeys(_label(r) for r in recs):
            rs = sorted((r for r in recs if _label(r) == lab), key=lambda r: r["batch"])
            style = "--" if VARIANTS[rs[0]["variant"]].precision == "fp32" else "-"
            ax.plot([r["batch"] for r in rs], [r["p50_ms"] for r in rs], style, marker="o", markersize=3, label=lab)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("p50 latency per call (ms)")
        ax.set_title(model)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Latency vs batch: {doc['machine']['cpu_model']}, {doc['machine']['threads']} threads, ORT {doc['machine']['onnxruntime_version']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in doc.get("models", {}) if any(r["model"] == m for r in doc["results"])]
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(5.2 * max(1, len(models)), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        recs = [r for r in doc["results"] if r["model"] == model]
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
        ax.set_xlabel(f"{PRIMARY_METRIC[model]} delta vs FP32")
        ax.set_ylabel(f"speed-up vs ort_fp32_all (batch {batch})")
        ax.set_title(model)
        ax.grid(True, alpha=0.3)
    fig.suptitle("Speed-up vs accuracy delta (x: FP16 on CPU, not applicable)", fontsize=9)
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
