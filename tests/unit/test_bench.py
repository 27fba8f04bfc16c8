"""The benchmark harness itself: statistics, CPU flags, provider planning, result schema, input errors.

No timing assertions: timers here are fakes or their numbers are not compared.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kindml.bench import measure, providers, quality
from kindml.bench.catalog import CPU_EP, CUDA_EP, SUITE_SETTINGS, TRT_EP, VARIANTS
from kindml.bench.machine import cpu_slug, parse_cpuinfo
from kindml.errors import BenchmarkError, KindmlError, UsageError

pytestmark = pytest.mark.unit

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse4_2 avx f16c fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512_bitalg
cpu cores\t: 2

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse4_2 avx f16c fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512_bitalg
"""

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C @ 2.40GHz
flags\t\t: fpu avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8 avx_vnni
"""

AVX2_ONLY = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
flags\t\t: fpu sse4_2 avx avx2 fma f16c
"""


# ---------------------------------------------------------------- CPU flags


def test_cpuinfo_zen4() -> None:
    cpu = parse_cpuinfo(ZEN4)
    assert cpu.model == "AMD EPYC 9R14 96-Core Processor"
    assert cpu.vendor == "AuthenticAMD"
    assert cpu.logical_cpus == 2 and cpu.physical_cores == 2
    assert cpu.isa == {"avx2": True, "avx512": True, "vnni": True, "amx": False}
    assert "avx512_vnni" in cpu.flags and "fpu" not in cpu.flags  # only the ISA flags that matter
    assert cpu.slug == "amd-epyc-9r14-96-core"
    assert cpu.u8s8_saturates is False  # VNNI: ORT's U8 x S8 kernels do not saturate, no reduce_range


def test_cpuinfo_amx_and_avx_vnni() -> None:
    cpu = parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert cpu.isa == {"avx2": True, "avx512": True, "vnni": True, "amx": True}
    assert {"amx_tile", "amx_int8", "amx_bf16", "avx_vnni", "avx512_fp16"} <= set(cpu.flags)
    assert cpu.slug == "intel-xeon-platinum-8488c"
    assert cpu.u8s8_saturates is False


def test_cpuinfo_avx2_only_and_empty() -> None:
    cpu = parse_cpuinfo(AVX2_ONLY)
    assert cpu.isa == {"avx2": True, "avx512": False, "vnni": False, "amx": False}
    assert cpu.slug == "intel-core-i7-8700"
    assert cpu.u8s8_saturates is True  # AVX2 without VNNI: VPMADDUBSW saturates, quantize with reduce_range
    skylake_x = parse_cpuinfo(AVX2_ONLY.replace("f16c", "f16c avx512f avx512bw avx512vl"))
    assert skylake_x.isa["avx512"] and skylake_x.u8s8_saturates is True  # AVX-512 without VNNI saturates too
    empty = parse_cpuinfo("", logical_cpus=3)
    assert empty.flags == () and empty.logical_cpus == 3 and empty.model
    assert empty.u8s8_saturates is False  # no x86 integer kernels to worry about (e.g. ARM)


def test_cpu_slug_is_filename_safe() -> None:
    assert cpu_slug("  Weird/CPU  (TM) name!! ") == "weird-name"
    assert cpu_slug("") == "unknown-cpu"
    assert len(cpu_slug("x" * 200)) <= 48


# ---------------------------------------------------------------- statistics


def test_cv_and_percentiles() -> None:
    assert measure.coefficient_of_variation([10.0, 10.0, 10.0]) == 0.0
    assert measure.coefficient_of_variation([5.0]) == 0.0
    cv = measure.coefficient_of_variation([9.0, 10.0, 11.0])
    assert cv == pytest.approx(np.std([9, 10, 11], ddof=1) / 10.0)
    assert measure.percentile(list(range(1, 101)), 50) == pytest.approx(50.5)
    assert measure.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert measure.percentile([3.0, 1.0, 2.0], 99) == pytest.approx(2.98)  # few samples: close to the max
    with pytest.raises(ValueError):
        measure.percentile([], 50)


def test_summarize_throughput_from_median_and_noisy_flag() -> None:
    blocks = [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0], [2.0, 10.0]]
    st = measure.summarize(batch=8, blocks=blocks, cv_threshold=0.10)
    assert st.calls == 10 and st.repeats == 5 and st.calls_per_repeat == 2
    assert st.p50_ms == 2.0 and st.min_ms == 2.0
    assert st.throughput_per_s == pytest.approx(8 * 1000 / 2.0)  # median-based
    assert st.throughput_mean_per_s == pytest.approx(8 * 1000 / 2.8)
    assert st.p99_ms > 9.0
    assert st.noisy and st.cv > 0.10
    quiet = measure.summarize(batch=1, blocks=[[1.0]] * 5, cv_threshold=0.10)
    assert not quiet.noisy and quiet.cv == 0.0


def test_speedup_and_block_sizing() -> None:
    assert measure.speedup(300.0, 100.0) == 3.0
    assert measure.speedup(None, 100.0) is None
    assert measure.speedup(100.0, 0.0) is None
    assert measure.speedup(math.inf, 1.0) is None
    assert measure.calls_per_block([0.01, 0.02], min_block_ms=20.0, max_calls=5000) == 2000
    assert measure.calls_per_block([50.0], min_block_ms=20.0, max_calls=5000) == 1
    assert measure.calls_per_block([0.0001], min_block_ms=20.0, max_calls=300) == 300


def test_measure_interleaved_rotates_and_counts() -> None:
    order: list[str] = []

    def make(name: str) -> measure.Timer:
        return measure.Timer(lambda: order.append(name))

    timers = {"a": make("a"), "b": make("b"), "c": make("c")}
    stats = measure.measure_interleaved(timers, batch=4, warmup=2, repeats=5, min_block_ms=0.0, max_calls=1, cv_threshold=0.1)
    assert set(stats) == {"a", "b", "c"}
    assert all(s.repeats == 5 and s.calls == 5 for s in stats.values())
    timed = order[6:]  # after 2 warm-up calls each
    rounds = [timed[i : i + 3] for i in range(0, 15, 3)]
    assert [r[0] for r in rounds] == ["a", "b", "c", "a", "b"]  # the starting variant rotates
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)


# ---------------------------------------------------------------- speed-ups


def _rec(model: str, variant: str, provider: str, batch: int, tput: float) -> dict[str, Any]:
    return {"model": model, "variant": variant, "provider": provider, "batch": batch, "throughput_per_s": tput}


def test_fill_speedups_same_model_provider_family_and_batch() -> None:
    from kindml.bench.suite import fill_speedups

    recs = [
        _rec("m", "ort_fp32_all", CPU_EP, 1, 100.0),
        _rec("m", "ort_int8_dynamic", CPU_EP, 1, 250.0),
        _rec("m", "torch_eager", "torch-cpu", 1, 50.0),
        _rec("m", "ort_int8_dynamic", CPU_EP, 8, 900.0),  # no FP32 at batch 8
        _rec("m", "ort_fp32_all", CUDA_EP, 1, 1000.0),
        _rec("m", "trt_fp16", TRT_EP, 1, 3000.0),
        _rec("other", "ort_fp32_all", CPU_EP, 1, 1.0),
    ]
    fill_speedups(recs)
    by = {(r["model"], r["variant"], r["provider"], r["batch"]): r for r in recs}
    assert by[("m", "ort_int8_dynamic", CPU_EP, 1)]["speedup_vs_fp32"] == 2.5
    assert by[("m", "ort_int8_dynamic", CPU_EP, 1)]["speedup_vs_torch"] == 5.0
    assert by[("m", "torch_eager", "torch-cpu", 1)]["speedup_vs_fp32"] == 0.5
    assert by[("m", "ort_fp32_all", CPU_EP, 1)]["speedup_vs_fp32"] == 1.0
    assert by[("m", "ort_int8_dynamic", CPU_EP, 8)]["speedup_vs_fp32"] is None
    assert by[("m", "trt_fp16", TRT_EP, 1)]["speedup_vs_fp32"] == 3.0  # TensorRT vs the CUDA EP FP32
    assert by[("m", "trt_fp16", TRT_EP, 1)]["speedup_vs_torch"] is None  # no torch-cuda record
    assert by[("other", "ort_fp32_all", CPU_EP, 1)]["speedup_vs_fp32"] == 1.0


# ---------------------------------------------------------------- providers


CPU_ONLY = ["AzureExecutionProvider", CPU_EP]
GPU_FULL = [TRT_EP, CUDA_EP, CPU_EP]


def test_device_resolution() -> None:
    assert providers.resolve_device("cpu", GPU_FULL) == ("cpu", "")
    assert providers.resolve_device("auto", GPU_FULL) == ("cuda", "")
    device, note = providers.resolve_device("auto", CPU_ONLY)
    assert device == "cpu" and CUDA_EP in note and "skipped" in note
    with pytest.raises(BenchmarkError) as exc:
        providers.resolve_device("cuda", CPU_ONLY)
    assert CUDA_EP in exc.value.message and "--device cpu" in exc.value.hint
    with pytest.raises(BenchmarkError):
        providers.resolve_device("tpu", CPU_ONLY)


def test_plan_cpu_reports_gpu_variants_as_skipped_with_reasons() -> None:
    planned = providers.plan(SUITE_SETTINGS["quick"], "cpu", CPU_ONLY)
    runs = {(p.variant, p.provider) for p in planned if p.runs}
    assert runs == {(v, "torch-cpu" if v == "torch_eager" else CPU_EP) for v in SUITE_SETTINGS["quick"].variants}
    skipped = {(p.variant, p.provider): p for p in planned if not p.runs}
    for key in (("trt_fp16", TRT_EP), ("trt_int8", TRT_EP), ("ort_fp32_all", CUDA_EP), ("ort_fp16", CUDA_EP)):
        assert skipped[key].skip_kind == "not_available"
        assert "not available" in skipped[key].reason
    assert skipped[("ort_fp16", CPU_EP)].skip_kind == "not_applicable"
    assert all(p.reason for p in skipped.values())


def test_plan_full_cpu_measures_fp16_as_not_applicable_note() -> None:
    planned = providers.plan(SUITE_SETTINGS["full"], "cpu", CPU_ONLY)
    fp16 = [p for p in planned if p.variant == "ort_fp16" and p.provider == CPU_EP]
    assert len(fp16) == 1 and fp16[0].runs and fp16[0].reason.startswith("not applicable on CPU")
    assert any(p.variant == "ort_int8_static_qop" and p.runs for p in planned)


def test_plan_cuda_with_and_without_tensorrt() -> None:
    full = {(p.variant, p.provider): p for p in providers.plan(SUITE_SETTINGS["full"], "cuda", GPU_FULL, torch_cuda=True)}
    assert full[("trt_fp16", TRT_EP)].runs and full[("trt_int8", TRT_EP)].runs
    assert full[("ort_fp16", CUDA_EP)].runs and full[("ort_fp32_all", CUDA_EP)].runs
    assert full[("torch_eager", "torch-cuda")].runs
    assert full[("ort_int8_dynamic", CUDA_EP)].skip_kind == "not_applicable"
    no_trt = {(p.variant, p.provider): p for p in providers.plan(SUITE_SETTINGS["full"], "cuda", [CUDA_EP, CPU_EP], torch_cuda=False)}
    assert no_trt[("trt_int8", TRT_EP)].skip_kind == "not_available"
    assert no_trt[("torch_eager", "torch-cuda")].skip_kind == "not_available"
    with pytest.raises(BenchmarkError):
        providers.plan(SUITE_SETTINGS["full"], "cuda", CPU_ONLY)


def test_session_providers_and_silent_fallback_detection() -> None:
    assert providers.session_providers(CPU_EP) == [CPU_EP]
    trt = providers.session_providers(TRT_EP, {"trt_fp16_enable": True})
    assert [p[0] if isinstance(p, tuple) else p for p in trt] == [TRT_EP, CUDA_EP, CPU_EP]
    assert providers.check_session_provider(CUDA_EP, [CUDA_EP, CPU_EP]) is None
    problem = providers.check_session_provider(CUDA_EP, [CPU_EP])
    assert problem and "runs on CPUExecutionProvider" in problem
    with pytest.raises(BenchmarkError):
        providers.session_providers("NopeExecutionProvider")


# ---------------------------------------------------------------- quality


def test_quality_measures() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    same = quality.binary_quality(y, p, p)
    assert same["roc_auc"] == 1.0 and same["roc_auc_delta"] == 0.0 and same["max_abs_diff"] == 0.0
    worse = quality.binary_quality(y, np.array([0.1, 0.9, 0.8, 0.7, 0.3, 0.2]), p)
    assert worse["roc_auc_delta"] < 0
    logits = np.eye(3)[[0, 1, 2, 1]]
    d = quality.digits_quality(np.array([0, 1, 2, 2]), logits, logits)
    assert d == {"accuracy": 0.75, "accuracy_delta": 0.0, "top1_agreement": 1.0}
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(20, 8))
    m = quality.minilm_quality(emb, emb)
    assert m["cosine_to_fp32"] == pytest.approx(1.0) and m["nn_agreement"] == 1.0
    noisy = quality.minilm_quality(emb + rng.normal(scale=0.5, size=emb.shape), emb)
    assert noisy["cosine_to_fp32"] < 1.0 and noisy["cosine_to_fp32_delta"] < 0
    rule = quality.PLATFORM_RULES["minilm_l6"]
    assert rule.primary_delta(noisy) == noisy["cosine_to_fp32_delta"] and rule.acceptable(noisy) is (noisy["cosine_to_fp32"] >= 0.99)
    assert rule.acceptable({}) is None and rule.acceptable({"cosine_to_fp32": float("nan")}) is None
    nn = quality.nearest_neighbours(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    assert list(nn) == [1, 0, 1]


def test_generated_sentences_are_deterministic_and_distinct() -> None:
    from kindml.bench.minilm import sentences

    a = sentences(120, seed=0)
    assert a == sentences(120, seed=0)
    assert len(set(a)) == 120
    assert a != sentences(120, seed=1)


# ---------------------------------------------------------------- schema


def _doc() -> dict[str, Any]:
    rec = {
        "model": "digits_cnn",
        "variant": "ort_int8_static_qdq",
        "provider": CPU_EP,
        "batch": 8,
        "throughput_per_s": 1000.0,
        "p50_ms": 8.0,
        "p99_ms": 9.5,
        "cv": 0.02,
        "size_bytes": 200_000,
        "quality": {"accuracy": 0.97, "accuracy_delta": -0.002},
        "speedup_vs_fp32": 2.1,
    }
    return {
        "schema_version": 1,
        "suite": "quick",
        "device": "cpu",
        "settings": {"batches": [1, 8], "repeats": 5, "warmup": 2, "threads": 1},
        "machine": {
            "cpu_model": "AMD EPYC",
            "cpu_flags": ["avx2", "avx512f", "avx512_vnni"],
            "isa": {"avx2": True, "avx512": True, "vnni": True, "amx": False},
            "threads": 1,
            "onnxruntime_version": "1.31.1",
            "providers": [CPU_EP],
        },
        "results": [rec],
        "skipped": [{"model": "digits_cnn", "variant": "trt_int8", "provider": TRT_EP, "kind": "not_available", "reason": "no TensorRT EP"}],
    }


def test_schema_accepts_a_valid_result() -> None:
    from kindml.bench.schema import validate_result

    validate_result(_doc())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["results"][0].pop("p99_ms"),
        lambda d: d["results"][0].update(variant="ort_int4"),
        lambda d: d["results"][0].update(model="ResNet-50"),  # not a case name
        lambda d: d["results"][0].update(throughput_per_s=0),
        lambda d: d["results"][0].update(quality={}),
        lambda d: d["machine"].pop("providers"),
        lambda d: d.pop("machine"),
        lambda d: d["settings"].update(repeats=3),
        lambda d: d["skipped"][0].update(reason=""),
    ],
)
def test_schema_rejects_broken_results(mutate: Any) -> None:
    from kindml.bench.schema import validate_result

    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(BenchmarkError):
        validate_result(doc)


def test_goals_and_markdown_from_a_result(tmp_path: Path) -> None:
    from kindml.bench.report import evaluate_goals, markdown, write_reports

    doc = _doc()
    fp32 = dict(doc["results"][0], variant="ort_fp32_all", size_bytes=760_000, speedup_vs_fp32=1.0, quality={"accuracy": 0.972, "accuracy_delta": 0.0})
    qdq = doc["results"][0] | {"batch": 32}
    fp32_32 = fp32 | {"batch": 32}
    doc["results"] += [fp32, qdq, fp32_32]
    for r in doc["results"]:
        r.setdefault("speedup_vs_torch", None)
        r["quality_delta"] = r["quality"]["accuracy_delta"]
    doc.update(created="2026-01-01T00:00:00+00:00", models={"digits_cnn": {"source": "test", "quality_metric": "accuracy", "eval_rows": 10}}, noisy=False, noisy_records=0)
    doc["settings"].update(batches_by_model={"digits_cnn": [8, 32]}, min_block_ms=1.0, cv_threshold=0.1)
    doc["machine"].update(logical_cpus=2)
    goals = {(g["goal"], g["batch"]): g for g in evaluate_goals(doc)}
    assert goals[("Digits CNN INT8 static QDQ vs ORT FP32 throughput", 32)]["met"] is True
    assert goals[("Digits CNN INT8 static QDQ accuracy drop (points)", None)]["measured"] == pytest.approx(0.2)
    assert goals[("Digits CNN INT8 model size vs FP32", None)]["met"] is True  # 760k / 200k = 3.8
    assert goals[("MiniLM INT8 dynamic vs ORT FP32 throughput", 32)]["met"] is None  # not measured
    doc["goals"] = list(goals.values())
    text = markdown(doc)
    assert "## digits_cnn" in text and "ort_int8_static_qdq" in text and "## Skipped" in text
    paths = write_reports(doc, tmp_path, "quick-test")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert paths["latency_plot"].read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- input validation


def _tabular_case(name: str = "tabular_mlp", registry: bool = True) -> Any:
    from kindml.bench.cases import BenchCase

    return BenchCase(name, "roc_auc", ("roc_auc_delta", -0.005), lambda req, work: None, registry_source=(lambda cfg, uri: uri) if registry else None)


def test_request_validation() -> None:
    from kindml.bench.cases import parse_models
    from kindml.bench.suite import BenchRequest, selected_cases, validate_request

    validate_request(BenchRequest())
    extra = (_tabular_case(),)
    bad = [
        BenchRequest(suite="huge"),
        BenchRequest(models=("tabular_mlp", "digits_cnn")),  # a workload case the request was not given
        BenchRequest(models=("digits_cnn", "resnet"), cases=extra),
        BenchRequest(models=()),
        BenchRequest(device="tpu"),
        BenchRequest(repeats=3),
        BenchRequest(threads=0),
        BenchRequest(batches=(0,)),
        BenchRequest(variants=("ort_int4",)),
        BenchRequest(source="s3", cases=extra),
        BenchRequest(models=("digits_cnn",), source="registry", cases=extra),  # no selected model comes from a registry
        BenchRequest(cases=(_tabular_case("digits_cnn"),)),  # clashes with a platform case
        BenchRequest(cases=(_tabular_case(), _tabular_case())),
    ]
    for req in bad:
        with pytest.raises(KindmlError) as exc:
            validate_request(req)
        assert exc.value.hint
    validate_request(BenchRequest(models=("tabular_mlp", "minilm_l6"), source="registry", cases=extra))
    assert [c.name for c in selected_cases(BenchRequest(cases=extra))] == ["tabular_mlp", "digits_cnn", "minilm_l6"]
    assert [c.name for c in selected_cases(BenchRequest())] == ["digits_cnn", "minilm_l6"]
    assert [c.name for c in selected_cases(BenchRequest(models=("minilm_l6", "tabular_mlp"), cases=extra))] == ["tabular_mlp", "minilm_l6"]
    known = ("tabular_mlp", "digits_cnn", "minilm_l6")
    assert parse_models(None) == ("digits_cnn", "minilm_l6")
    assert parse_models(None, known) == known
    assert parse_models(["minilm_l6,tabular_mlp"], known) == ("tabular_mlp", "minilm_l6")
    assert parse_models("all", known) == known
    with pytest.raises(UsageError):
        parse_models("tabular_mlp,cnn", known)
    for name in ("Bad Name", "1st", ""):
        with pytest.raises(UsageError):
            _tabular_case(name)


def test_a_case_registry_source_applies_only_to_its_case() -> None:
    from kindml.bench.cases import PLATFORM_CASES
    from kindml.bench.suite import BenchRequest, registry_source

    case = _tabular_case()
    req = BenchRequest(cases=(case,), sources={"tabular_mlp": "sqlite:///x.db"})
    assert registry_source(req, case) == ("sqlite:///x.db", False)
    assert registry_source(BenchRequest(cases=(case,), source="registry", sources=req.sources), case) == ("sqlite:///x.db", True)
    assert registry_source(BenchRequest(cases=(case,), source="train", sources=req.sources), case) == (None, False)
    assert registry_source(BenchRequest(cases=(case,)), case) == (None, False)  # auto without a registry: train
    assert registry_source(req, PLATFORM_CASES["digits_cnn"]) == (None, False)


def test_quality_rules_of_old_and_new_results() -> None:
    """A result records each model's rule; older results (no rule recorded) get the platform's or an inferred one."""
    from kindml.bench.quality import QualityRule, rules_of

    rec = lambda model, q: {"model": model, "quality": q}  # noqa: E731
    doc = {
        "models": {"digits_cnn": {}, "tabular_mlp": {}, "ranker": {"quality_rule": {"primary_metric": "ndcg", "acceptable": {"metric": "ndcg", "min": 0.9}}}},
        "results": [rec("tabular_mlp", {"roc_auc": 0.9, "roc_auc_delta": -0.001, "max_abs_diff": 0.01}), rec("ranker", {"ndcg": 0.95}),
                    rec("digits_cnn", {"accuracy": 0.9, "accuracy_delta": 0.0, "top1_agreement": 1.0})],
    }
    rules = rules_of(doc)
    assert rules["digits_cnn"] == QualityRule("accuracy", "accuracy_delta", -0.005)
    assert rules["tabular_mlp"] == QualityRule("roc_auc", "roc_auc_delta", -0.005)
    assert rules["ranker"] == QualityRule("ndcg", "ndcg", 0.9) and rules["ranker"].acceptable({"ndcg": 0.89}) is False
    assert QualityRule.from_dict(rules["ranker"].to_dict()) == rules["ranker"]


def test_committed_results_stay_valid_and_render() -> None:
    """The committed result files (model names of workload cases included) match the schema; their markdown re-renders."""
    from kindml.bench.quality import rules_of
    from kindml.bench.report import markdown
    from kindml.bench.schema import validate_result

    files = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "results").glob("*-????-??-??*.json"))
    docs = [json.loads(f.read_text()) for f in files if f.name.startswith(("quick-", "full-"))]  # `kindml bench` suites; other harnesses have their own shapes
    assert docs, "no committed benchmark results"
    for doc in docs:
        validate_result(doc)
        rules = rules_of(doc)
        assert set(rules) >= {r["model"] for r in doc["results"]}
        assert "fraud_mlp" not in rules or rules["fraud_mlp"].key == "roc_auc_delta"
        assert "quality ok (" in markdown(doc)


def test_every_variant_name_of_the_issue_is_known() -> None:
    assert set(VARIANTS) == {
        "torch_eager", "ort_fp32_basic", "ort_fp32_extended", "ort_fp32_all", "ort_int8_dynamic",
        "ort_int8_static_qdq", "ort_int8_static_qop", "ort_fp16", "trt_fp16", "trt_int8",
        "ort_ts_fp32", "ort_ts_int8_dynamic", "ort_ts_int8_static_qdq",
        "ort_fused_fp32", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq", "ort_fused_int8_smooth",
    }  # fmt: skip
    assert all(s.repeats >= 5 for s in SUITE_SETTINGS.values())
    assert SUITE_SETTINGS["full"].batches == (1, 8, 32, 128)


def test_quantize_config_section() -> None:
    from kindml.config import KindmlConfig, load_config
    from kindml.errors import ConfigError

    cfg = KindmlConfig()
    assert cfg.quantize.enabled is False and cfg.quantize.accuracy_budget == 0.005
    cfg = load_config(environ={}, overrides={"quantize.enabled": True, "quantize.accuracy_budget": 0.01}, cwd=Path("/"))
    assert cfg.quantize.enabled and cfg.quantize.accuracy_budget == 0.01
    with pytest.raises(ConfigError):
        load_config(environ={}, overrides={"quantize.accuracy_budget": -0.1}, cwd=Path("/"))


def _kindml(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_input_errors(cli_env: dict[str, str]) -> None:
    import onnxruntime as ort

    for args, needle in (
        (["bench", "--models", "resnet"], "unknown model"),
        (["bench", "--suite", "huge"], "unknown suite"),
        (["bench", "--device", "tpu"], "unknown device"),
        (["bench", "--threads", "1,x"], "--threads"),
        (["bench", "--source", "s3"], "unknown model source"),
        (["bench", "--fraud-source", "s3"], "unknown model source"),  # the deprecated spelling still parses
        (["bench", "--source", "train", "--fraud-source", "registry"], "disagree"),
        (["bench", "--models", "digits_cnn", "--source", "registry"], "comes from a model registry"),
    ):
        res = _kindml(args, cli_env)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and "error:" in res.stderr and "hint:" in res.stderr and needle in res.stderr
    helped = _kindml(["bench", "--help"], cli_env)
    assert helped.returncode == 0 and "--source" in helped.stdout and "--fraud-source" not in helped.stdout
    assert "fraud_mlp, digits_cnn, minilm_l6" in " ".join(helped.stdout.split())  # the workload registry's case, then the platform's
    if CUDA_EP in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA EP: --device cuda is valid here")
    res = _kindml(["bench", "--device", "cuda"], cli_env)
    assert res.returncode == BenchmarkError.exit_code, res.stderr
    assert "CUDAExecutionProvider" in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr


# ---------------------------------------------------------------- GPU Job (static)


def test_gpu_job_manifest_is_valid_and_requests_a_gpu() -> None:
    import kubernetes_validate

    from kindml.bench.gpu_job import render_bench_job

    job = render_bench_job("kindml-runtime-gpu:0.1.0", suite="full", models=("minilm_l6",))
    kubernetes_validate.validate(job, "1.34.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"kindml.io/pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    cmd = c["command"]
    assert cmd[:2] == ["kindml", "bench"] and cmd[cmd.index("--device") + 1] == "cuda" and cmd[cmd.index("--output") + 1] == "json"
    assert cmd[cmd.index("--models") + 1] == "minilm_l6"
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    with pytest.raises(UsageError):
        render_bench_job("img", suite="huge")
    assert cmd[cmd.index("--source") + 1] == "train"  # the pod has no registry
    job = render_bench_job("img", models=("fraud_mlp", "minilm_l6"), known_models=("fraud_mlp", "digits_cnn", "minilm_l6"))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "fraud_mlp,minilm_l6"
    with pytest.raises(UsageError):
        render_bench_job("img", models=("Resnet 50",))
    with pytest.raises(UsageError):
        render_bench_job("img", models=("resnet",), known_models=("digits_cnn", "minilm_l6"))
