"""Running a suite: build each model's variants, check their correctness, time them, write the results.

The models are :class:`~kindml.bench.cases.BenchCase` s: the platform's own
(``digits_cnn``, ``minilm_l6``) and any the caller adds (``BenchRequest.cases``,
e.g. a workload's model, which ``kindml bench`` reads from the workload registry).

One process measures every variant of a model, interleaved (see
:mod:`kindml.bench.measure`), with a fixed intra-op thread count for both ONNX
Runtime and PyTorch (inter-op: 1, sequential execution). Nothing is
downloaded: the models are built from data that ships with the installed
packages or is generated.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kindml.bench.cases import SOURCES, BenchCase, catalog
from kindml.bench.catalog import (
    BASELINE_PROVIDER,
    BASELINE_VARIANT,
    DEFAULT_THREADS,
    SUITE_SETTINGS,
    SUITES,
    TORCH_CPU,
    TORCH_CUDA,
    VARIANTS,
    SuiteSettings,
    variant_applies,
)
from kindml.bench.measure import measure_interleaved, speedup
from kindml.bench.providers import Planned, plan, resolve_device
from kindml.bench.quality import QualityRule
from kindml.errors import BenchmarkError, UsageError

log = logging.getLogger(__name__)

MIN_REPEATS = 5


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def update(self, description: str) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def update(self, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class BenchRequest:
    suite: str = "quick"
    models: tuple[str, ...] | None = None  # None: every case (the caller's, then the platform's)
    device: str = "auto"
    threads: int | tuple[int, ...] | None = None  # default: catalog.DEFAULT_THREADS (1); several: measured one after the other
    out_dir: Path | None = Path("benchmarks/results")  # None: do not write files
    work_dir: Path | None = None  # default: a temporary folder, removed afterwards
    cases: tuple[BenchCase, ...] = ()  # the caller's model cases (a workload's), next to the platform's
    source: str = "auto"  # cases with a registry source: its champion (registry), trained here (train), or the champion if any (auto)
    sources: dict[str, Any] = field(default_factory=dict)  # case name -> its registry source (resolved by the caller; absent: no registry)
    # overrides of the suite settings (tests, experiments); recorded in the result
    batches: tuple[int, ...] | None = None
    repeats: int | None = None
    min_block_ms: float | None = None
    variants: tuple[str, ...] | None = None
    minilm_sentences: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def thread_counts(req: BenchRequest) -> tuple[int, ...]:
    """The intra-op thread counts to measure, in order (``--threads 1,2``)."""
    if req.threads is None:
        return (DEFAULT_THREADS,)
    if isinstance(req.threads, int):
        return (req.threads,)
    return tuple(req.threads)


def parse_threads(value: str | int | None) -> tuple[int, ...] | None:
    """``"1,2"`` → (1, 2); None stays None; UsageError on anything else."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value,)
    try:
        counts = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        counts = ()
    if not counts:
        raise UsageError(f"--threads {value!r}: expected a thread count or a comma-separated list", "For example --threads 1 or --threads 1,2.")
    return counts


def request_cases(req: BenchRequest) -> dict[str, BenchCase]:
    """Every case the request can name (the caller's, then the platform's)."""
    return catalog(req.cases)


def selected_cases(req: BenchRequest) -> list[BenchCase]:
    """The cases to measure, in suite order (UsageError for an unknown name)."""
    known = request_cases(req)
    if req.models is None:
        return list(known.values())
    if not req.models:
        raise UsageError("no model selected", f"Choose from: {', '.join(known)}.")
    unknown = [m for m in req.models if m not in known]
    if unknown:
        raise UsageError(f"unknown model(s): {', '.join(unknown)}", f"Choose from: {', '.join(known)}.")
    return [c for name, c in known.items() if name in req.models]


def validate_request(req: BenchRequest) -> None:
    if req.suite not in SUITES:
        raise UsageError(f"unknown suite {req.suite!r}", f"Use one of: {', '.join(SUITES)}.")
    cases = selected_cases(req)
    if req.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"unknown device {req.device!r}", "Use auto, cpu or cuda.")
    if req.source not in SOURCES:
        raise UsageError(f"unknown model source {req.source!r}", "Use auto (the registry champion if there is one, else train), registry or train.")
    if req.source == "registry" and not any(c.from_registry for c in cases):
        raise UsageError(f"--source registry: none of the selected models ({', '.join(c.name for c in cases)}) comes from a model registry",
                         f"Leave --source out, or select a model that does: {', '.join(n for n, c in request_cases(req).items() if c.from_registry) or 'none is registered'}.")
    counts = thread_counts(req)
    if not counts or any(t < 1 for t in counts) or len(set(counts)) != len(counts):
        raise UsageError(f"--threads {req.threads}: thread counts must be distinct and at least 1", "Leave it out for the default (1 thread), or e.g. --threads 1,2.")
    if req.repeats is not None and req.repeats < MIN_REPEATS:
        raise UsageError(f"repeats {req.repeats}: at least {MIN_REPEATS} are needed for a median and a CV worth reporting", f"Use {MIN_REPEATS} or more.")
    if req.batches is not None and (not req.batches or any(b < 1 for b in req.batches)):
        raise UsageError(f"batches {req.batches}: need positive batch sizes", "For example 1,8,32.")
    if req.variants is not None:
        bad = [v for v in req.variants if v not in VARIANTS]
        if bad:
            raise UsageError(f"unknown variant(s): {', '.join(bad)}", f"Choose from: {', '.join(VARIANTS)}.")


def check_device(req: BenchRequest) -> tuple[str, str]:
    """(device, note) for the request on this onnxruntime build; BenchmarkError for cuda without CUDA."""
    import onnxruntime as ort

    return resolve_device(req.device, list(ort.get_available_providers()))


def effective_settings(req: BenchRequest) -> SuiteSettings:
    s = SUITE_SETTINGS[req.suite]
    if req.batches is not None:
        s = replace(s, batches=tuple(req.batches), minilm_batches=None)
    if req.repeats is not None:
        s = replace(s, repeats=req.repeats)
    if req.min_block_ms is not None:
        s = replace(s, min_block_ms=req.min_block_ms)
    if req.minilm_sentences is not None:
        s = replace(s, minilm_sentences=req.minilm_sentences)
    if req.variants is not None:
        s = replace(s, variants=tuple(v for v in VARIANTS if v in req.variants and VARIANTS[v].runtime != "trt"))
    return s


def registry_source(req: BenchRequest, case: BenchCase) -> tuple[Any, bool]:
    """For a case's builder: (the registry source to load a champion from, or None; whether it is required)."""
    if not case.from_registry or req.source == "train":
        return None, False
    return req.sources.get(case.name), req.source == "registry"


def _build_case(case: BenchCase, req: BenchRequest, work: Path) -> Any:
    built = case.build(req, work)
    if built.name != case.name:
        raise BenchmarkError(f"benchmark case {case.name} built a model named {built.name!r}", "A case's builder must return a ModelCase with the case's name.")
    return built


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


@dataclass
class _Ready:
    planned: Planned
    size_bytes: int
    quality: dict[str, float]
    make_timer: Callable[[dict[str, Any]], Any]
    keep: Any = None  # the session / module, alive while measured


def _prepare_variants(
    case: Any,
    planned: list[Planned],
    threads: int,
    work: Path,
    skipped: list[dict[str, Any]],
    notes: dict[str, Any],
    progress: Progress,
    files: Any = None,
    qualities: dict[str, dict[str, float]] | None = None,
) -> dict[str, _Ready]:
    """Sessions (or the eager module) of every planned variant at ``threads``; quality measured once
    per variant (``qualities`` caches it across thread counts); failures go to ``skipped``."""
    import torch

    from kindml.bench import variants as vb
    from kindml.bench.catalog import TRT_EP

    files = files if files is not None else vb.VariantFiles(case, work / case.name / "variants")
    qualities = qualities if qualities is not None else {}
    ready: dict[str, _Ready] = {}
    for p in planned:
        v = VARIANTS[p.variant]
        key = f"{p.variant}@{p.provider}"
        progress.update(f"{case.name}: building {p.variant} ({p.provider})")
        try:
            if v.runtime == "torch":
                device = "cuda" if p.provider == TORCH_CUDA else "cpu"
                net = case.net.to(device)

                def predict(feeds: dict[str, Any], net: Any = net, device: str = device) -> Any:
                    with torch.inference_mode():
                        return net(*case.torch_args(feeds, device)).cpu().numpy()

                if key not in qualities:
                    qualities[key] = case.quality(case.run_eval(predict))
                size = vb.torch_size_bytes(case, work / case.name)
                ready[key] = _Ready(p, size, qualities[key], lambda feeds, device=device: vb.torch_timer(case, feeds, device), net)
            else:
                path = files.get(v.weights)
                sess = vb.make_session(path, v, p.provider, threads, cache_dir=work / case.name / "trt_cache" if p.provider == TRT_EP else None)
                if key not in qualities:
                    qualities[key] = case.quality(case.run_eval(vb.ort_predict(sess)))
                ready[key] = _Ready(p, path.stat().st_size, qualities[key], lambda feeds, sess=sess, prov=p.provider: vb.ort_timer(sess, feeds, prov), sess)
        except BenchmarkError as exc:
            log.warning("%s %s on %s skipped: %s", case.name, p.variant, p.provider, exc.message)
            skipped.append({"model": case.name, "variant": p.variant, "provider": p.provider, "kind": "failed", "reason": exc.message})
        progress.advance()
    notes.update(files.notes)
    notes["_files"] = dict(files.paths)
    return ready


def profile_batch(model: str, batches: tuple[int, ...]) -> int:
    """Batch of the op-level profile: 8 for MiniLM (time), else the largest batch up to 32."""
    if model == "minilm_l6":
        return 8
    return max([b for b in batches if b <= 32] or [min(batches)])


PROFILED: tuple[tuple[str, str], ...] = (
    ("fp32", "ort_fp32_all"),
    ("int8_dynamic", "ort_int8_dynamic"),
    ("int8_qdq", "ort_int8_static_qdq"),
    ("fused_fp32", "ort_fused_fp32"),
    ("fused_int8_dynamic", "ort_fused_int8_dynamic"),
    ("fused_int8_qdq", "ort_fused_int8_static_qdq"),
    ("fused_int8_smooth", "ort_fused_int8_smooth"),
)


def _profiles(case: Any, paths: dict[str, Path], threads: int, batches: tuple[int, ...]) -> dict[str, Any]:
    """ORT op-type breakdown of the FP32 and INT8 files (explains the ratios; not used as timings)."""
    from kindml.bench.profile import op_breakdown

    batch = profile_batch(case.name, batches)
    out: dict[str, Any] = {"batch": batch, "threads": threads, "note": "ORT profiler, kernel time per call by op type (profiling overhead included; not a timing)"}
    for weights, variant in PROFILED:
        if weights in paths:
            try:
                out[variant] = op_breakdown(paths[weights], case.batch(batch), threads=threads, runs=3, top=10)
            except Exception as exc:  # a profile is an explanation, never a reason to fail the run
                out[variant] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _records(case: Any, rule: QualityRule, ready: dict[str, _Ready], settings: SuiteSettings, threads: int, progress: Progress) -> list[dict[str, Any]]:
    import torch

    out: list[dict[str, Any]] = []
    for batch in settings.batches_for(case.name):
        progress.update(f"{case.name}: timing batch {batch} ({len(ready)} variants interleaved)")
        feeds = case.batch(batch)
        timers = {key: r.make_timer(feeds) for key, r in ready.items()}
        with torch.inference_mode():
            stats = measure_interleaved(
                timers,
                batch,
                settings.warmup,
                settings.repeats,
                settings.min_block_ms,
                settings.max_calls_per_block,
                settings.cv_threshold,
                on_block=progress.advance,
            )
        for key, st in stats.items():
            r = ready[key]
            v = VARIANTS[r.planned.variant]
            rec: dict[str, Any] = {
                "model": case.name,
                "variant": v.name,
                "provider": r.planned.provider,
                "batch": batch,
                **st.to_dict(),
                "size_bytes": int(r.size_bytes),
                "quality": dict(r.quality),
                "quality_delta": rule.primary_delta(r.quality),
                "speedup_vs_fp32": None,
                "speedup_vs_torch": None,
                "precision": v.precision,
                "graph_optimization": v.opt_level if v.runtime == "ort" else None,
                "threads": threads,
                "torch_threads": int(torch.get_num_threads()) if v.runtime == "torch" else None,
                "io_binding": r.planned.provider not in ("CPUExecutionProvider", TORCH_CPU, TORCH_CUDA),
            }
            if r.planned.reason:
                rec["note"] = r.planned.reason
            out.append(rec)
    return out


def fill_speedups(records: list[dict[str, Any]]) -> None:
    """``speedup_vs_fp32``: throughput / that of ``ort_fp32_all`` (same model and batch, provider family);
    ``speedup_vs_torch``: throughput / that of ``torch_eager`` on the same device (both at the same thread count)."""
    by_key = {(r["model"], r["variant"], r["provider"], r["batch"], r.get("threads")): r for r in records}
    for r in records:
        base = by_key.get((r["model"], BASELINE_VARIANT, BASELINE_PROVIDER.get(r["provider"], r["provider"]), r["batch"], r.get("threads")))
        r["speedup_vs_fp32"] = speedup(r["throughput_per_s"], base["throughput_per_s"]) if base else None
        torch_provider = TORCH_CUDA if r["provider"] in ("CUDAExecutionProvider", "TensorrtExecutionProvider", TORCH_CUDA) else TORCH_CPU
        t = by_key.get((r["model"], "torch_eager", torch_provider, r["batch"], r.get("threads")))
        r["speedup_vs_torch"] = speedup(r["throughput_per_s"], t["throughput_per_s"]) if t else None


def result_stem(suite: str, cpu_slug: str, device: str, day: str) -> str:
    return f"{suite}-{cpu_slug}-{day}" + ("-cuda" if device == "cuda" else "")


def run(req: BenchRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Run a suite; returns the result document (also written to ``req.out_dir`` unless None)."""
    import onnxruntime as ort

    from kindml import __version__
    from kindml.bench.machine import load_average, machine_info, read_cpuinfo
    from kindml.bench.report import evaluate_goals, write_reports
    from kindml.bench.schema import SCHEMA_VERSION, validate_result

    validate_request(req)
    cases = selected_cases(req)
    models = [c.name for c in cases]
    progress = progress or _NoProgress()
    t_start = time.perf_counter()
    started = datetime.now(UTC)
    available = list(ort.get_available_providers())
    device, device_note = resolve_device(req.device, available)
    if device_note:
        log.warning(device_note)
    import torch

    settings = effective_settings(req)
    cpu = read_cpuinfo()
    counts = thread_counts(req)
    threads = counts[0]
    _set_threads(threads)
    planned_all = plan(settings, device, available, torch_cuda=bool(torch.cuda.is_available()))
    if req.variants is not None:
        planned_all = [p for p in planned_all if p.variant in req.variants]

    def for_model(case: BenchCase) -> list[Planned]:
        skip = settings.minilm_skip if case.name == "minilm_l6" else ()
        return [p for p in planned_all if variant_applies(p.variant, case.name, case.transformer) and not (p.provider == "CPUExecutionProvider" and p.variant in skip)]

    total = 0
    for c in cases:
        n = len([p for p in for_model(c) if p.runs])
        total += 1 + n * len(counts) + len(settings.batches_for(c.name)) * settings.repeats * n * len(counts)
    progress.start(total)
    machine = machine_info(threads, device, cpu)
    machine["load_average_start"] = load_average()
    if device_note:
        machine["device_note"] = device_note
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "suite": req.suite,
        "device": device,
        "created": started.isoformat(timespec="seconds"),
        "kindml_version": __version__,
        "machine": machine,
        "settings": {
            "batches": list(settings.batches),
            "batches_by_model": {m: list(settings.batches_for(m)) for m in models},
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "min_block_ms": settings.min_block_ms,
            "max_calls_per_block": settings.max_calls_per_block,
            "cv_threshold": settings.cv_threshold,
            "threads": threads,
            "thread_counts": list(counts),
            "inter_op_threads": 1,
            "ort_session": {"intra_op_num_threads": "= threads", "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL", "graph_optimization_level": "per variant (all unless named basic/extended)"},
            "torch": {"set_num_threads": "= threads", "interop_threads": 1, "mode": "torch.inference_mode()"},
            "interleaved": True,
            "baseline": f"{BASELINE_VARIANT} on the same provider family and batch",
            "throughput": "batch x 1000 / p50_ms",
            "overrides": {k: v for k, v in {"batches": req.batches, "repeats": req.repeats, "min_block_ms": req.min_block_ms, "variants": req.variants, "minilm_sentences": req.minilm_sentences}.items() if v is not None},
            "source": req.source,
        },
        "models": {},
        "results": [],
        "skipped": [],
    }
    tmp = None
    work = req.work_dir
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="kindml-bench-")
        work = Path(tmp.name)
    try:
        for spec in cases:
            model = spec.name
            progress.update(f"{model}: preparing (train/export)")
            t_model = time.perf_counter()
            case = _build_case(spec, req, work)
            case.compute_reference()
            progress.advance()
            planned = for_model(spec)
            runnable = [p for p in planned if p.runs]
            skipped = [{"model": model, "variant": p.variant, "provider": p.provider, "kind": p.skip_kind, "reason": p.reason} for p in planned if not p.runs]
            notes: dict[str, Any] = {}
            from kindml.bench.variants import VariantFiles

            files = VariantFiles(case, work / case.name / "variants")
            qualities: dict[str, dict[str, float]] = {}
            records: list[dict[str, Any]] = []
            prof: dict[str, Any] = {}
            for i, t in enumerate(counts):
                _set_threads(t)
                ready = _prepare_variants(case, runnable, t, work, skipped if i == 0 else [], notes, progress, files, qualities)
                missing_blocks = (len(runnable) - len(ready)) * len(settings.batches_for(model)) * settings.repeats
                if missing_blocks:
                    progress.advance(missing_blocks)
                records += _records(case, spec.rule, ready, settings, t, progress) if ready else []
                del ready
                gc.collect()
            _set_threads(threads)
            fill_speedups(records)
            paths = notes.pop("_files", {})
            if records and settings.profile:
                progress.update(f"{model}: profiling op types")
                prof = _profiles(case, paths, threads, settings.batches_for(model))
            doc["results"].extend(records)
            doc["skipped"].extend(skipped)
            doc["models"][model] = case.meta | {"quality_rule": spec.rule.to_dict(), "recipes": notes, "profile": prof, "fp32_onnx_bytes": case.onnx_path.stat().st_size, "seconds": round(time.perf_counter() - t_model, 2)}
            del case, files
            gc.collect()
    finally:
        if tmp is not None:
            tmp.cleanup()
    machine["load_average_end"] = load_average()
    noisy = [r for r in doc["results"] if r.get("noisy")]
    doc["noisy"] = bool(noisy)
    doc["noisy_records"] = len(noisy)
    doc["goals"] = evaluate_goals(doc)
    doc["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    validate_result(doc)
    if req.out_dir is not None:
        doc["files"] = {k: str(v) for k, v in write_reports(doc, req.out_dir, result_stem(req.suite, cpu.slug, device, started.strftime("%Y-%m-%d"))).items()}
    return doc


def headline(doc: dict[str, Any]) -> list[str]:
    """Per model, at the largest batch: the fastest variant whose quality is acceptable
    (the model's :class:`~kindml.bench.quality.QualityRule`), and the fastest overall when that one is not."""
    from kindml.bench.quality import rules_of

    def fmt(r: dict[str, Any]) -> str:
        d = r.get("quality_delta")
        delta = "n/a" if d is None or (isinstance(d, float) and math.isnan(d)) else f"{d:+.4f}"
        return f"{r['variant']} {r['speedup_vs_fp32']:.2f}x vs ort_fp32_all (quality delta {delta})"

    from kindml.bench.report import thread_counts

    lines = []
    counts = thread_counts(doc)
    rules = rules_of(doc)
    for model, t in [(m, t) for m in doc.get("models", {}) for t in counts]:
        recs = [r for r in doc["results"] if r["model"] == model and r.get("threads", counts[0]) == t]
        if not recs:
            lines.append(f"{model}: no measurements")
            continue
        batch = max(r["batch"] for r in recs)
        at = [r for r in recs if r["batch"] == batch and r["speedup_vs_fp32"] is not None and not r.get("note", "").startswith("not applicable")]
        if not at:
            continue
        good = [r for r in at if model in rules and rules[model].acceptable(r["quality"])]
        best_any = max(at, key=lambda r: r["speedup_vs_fp32"])
        line = f"{model}: {t} thread(s), batch {batch}: fastest within quality tolerance: {fmt(max(good, key=lambda r: r['speedup_vs_fp32'])) if good else 'none'}"
        if not good or best_any is not max(good, key=lambda r: r["speedup_vs_fp32"]):
            line += f"; fastest overall: {fmt(best_any)} (quality NOT acceptable)"
        lines.append(line)
    return lines
