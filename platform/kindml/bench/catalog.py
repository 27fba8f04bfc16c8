"""The names the suite knows: models, variants, suites, devices (pure data, no imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The platform's own cases (kindml.bench.cases.PLATFORM_CASES); workloads add theirs (BenchRequest.cases).
PLATFORM_MODELS: tuple[str, ...] = ("digits_cnn", "minilm_l6")
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SUITES: tuple[str, ...] = ("quick", "full")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
TORCH_CPU = "torch-cpu"
TORCH_CUDA = "torch-cuda"

Weights = Literal[
    "fp32",
    "int8_dynamic",
    "int8_qdq",
    "int8_qop",
    "int8_qdq_symmetric",
    "fp16",
    # the transformer family (kindml.bench.transformer): TorchScript export, ORT's transformer optimizer
    "ts_fp32",
    "ts_int8_dynamic",
    "ts_int8_qdq",
    "fused_fp32",
    "fused_int8_dynamic",
    "fused_int8_qdq",
    "fused_int8_smooth",
]

# Platform models the transformer family applies to (an encoder with attention heads and a mask input);
# a workload case says so itself (BenchCase.transformer).
TRANSFORMER_MODELS: tuple[str, ...] = ("minilm_l6",)


@dataclass(frozen=True)
class Variant:
    name: str
    runtime: Literal["torch", "ort", "trt"]
    weights: Weights  # which ONNX file the variant runs (torch: the eager module)
    precision: Literal["fp32", "int8", "fp16"]
    opt_level: Literal["basic", "extended", "all"] | None
    description: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("torch_eager", "torch", "fp32", "fp32", None, "PyTorch eager, inference_mode (the baseline users start from)"),
        Variant("ort_fp32_basic", "ort", "fp32", "fp32", "basic", "ORT FP32, graph optimisation level basic"),
        Variant("ort_fp32_extended", "ort", "fp32", "fp32", "extended", "ORT FP32, graph optimisation level extended"),
        Variant("ort_fp32_all", "ort", "fp32", "fp32", "all", "ORT FP32, graph optimisation level all (ORT's default; the FP32 baseline)"),
        Variant("ort_int8_dynamic", "ort", "int8_dynamic", "int8", "all", "ORT INT8 dynamic quantisation (weights per-channel S8, activations quantised at run time)"),
        Variant("ort_int8_static_qdq", "ort", "int8_qdq", "int8", "all", "ORT INT8 static, QDQ format, per-channel S8S8, MinMax calibration on real samples"),
        Variant("ort_int8_static_qop", "ort", "int8_qop", "int8", "all", "ORT INT8 static, QOperator format (U8S8, per-channel): a reference only"),
        Variant("ort_fp16", "ort", "fp16", "fp16", "all", "ORT FP16 weights and compute (I/O kept FP32); a GPU variant"),
        Variant("ort_ts_fp32", "ort", "ts_fp32", "fp32", "all", "ORT FP32 on the TorchScript export (dynamo=False), ORT's own runtime fusions only"),
        Variant("ort_ts_int8_dynamic", "ort", "ts_int8_dynamic", "int8", "all", "ORT INT8 dynamic on the TorchScript export"),
        Variant("ort_ts_int8_static_qdq", "ort", "ts_int8_qdq", "int8", "all", "ORT INT8 static QDQ, transformer recipe, on the unfused TorchScript export"),
        Variant("ort_fused_fp32", "ort", "fused_fp32", "fp32", "all", "ORT FP32 after ORT's transformer optimizer (Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm)"),
        Variant("ort_fused_int8_dynamic", "ort", "fused_int8_dynamic", "int8", "all", "ORT INT8 dynamic on the fused graph (QAttention, DynamicQuantizeMatMul)"),
        Variant("ort_fused_int8_static_qdq", "ort", "fused_int8_qdq", "int8", "all", "ORT INT8 static QDQ on the fused graph: MatMul inputs only, mask path excluded, U8S8 per-channel, MinMax"),
        Variant("ort_fused_int8_smooth", "ort", "fused_int8_smooth", "int8", "all", "ORT INT8 dynamic on the fused graph after SmoothQuant of the LayerNorm-fed inputs, most sensitive MatMuls kept FP32 (kindml.bench.smoothing)"),
        Variant("trt_fp16", "trt", "fp32", "fp16", None, "TensorRT EP with FP16 enabled, engine cache on"),
        Variant("trt_int8", "trt", "int8_qdq_symmetric", "int8", None, "TensorRT EP, explicit INT8 from a symmetric QDQ model, engine cache on"),
    )
}

def is_transformer_variant(name: str) -> bool:
    return VARIANTS[name].weights.startswith(("ts_", "fused_"))


def variant_applies(name: str, model: str, transformer: bool | None = None) -> bool:
    """The transformer family runs only on transformer models (``transformer``; default: the platform's
    :data:`TRANSFORMER_MODELS`); every other variant on all."""
    is_transformer = model in TRANSFORMER_MODELS if transformer is None else transformer
    return is_transformer or not is_transformer_variant(name)


# Intra-op threads when --threads is not given. One thread by default: the
# ratios are then per-core kernel efficiency, free of thread-pool scheduling
# noise (worker threads of one session spinning while the next variant runs,
# or a busy neighbour preempting one of two workers). --threads N measures
# multi-core scaling; the count is recorded with every result.
DEFAULT_THREADS = 1

# The variant every speed-up is measured against (same model, provider family, batch).
BASELINE_VARIANT = "ort_fp32_all"
BASELINE_PROVIDER = {TORCH_CPU: CPU_EP, CPU_EP: CPU_EP, TORCH_CUDA: CUDA_EP, CUDA_EP: CUDA_EP, TRT_EP: CUDA_EP}


@dataclass(frozen=True)
class SuiteSettings:
    name: str
    batches: tuple[int, ...]
    repeats: int  # timed blocks per (variant, batch); >= 5
    warmup: int  # untimed calls per (variant, batch) before timing
    min_block_ms: float  # a timed block runs enough calls to last at least this long
    max_calls_per_block: int
    cv_threshold: float  # a measurement with a higher coefficient of variation is flagged noisy
    variants: tuple[str, ...]  # CPU variants; GPU ones are chosen by providers.plan
    minilm_sentences: int  # size of the generated sentence set (correctness)
    minilm_batches: tuple[int, ...] | None = None  # MiniLM is ~1000x heavier than the others
    minilm_skip: tuple[str, ...] = ()  # variants left out for MiniLM (time)
    profile: bool = True  # an ORT op-type profile of FP32 vs INT8 per model (explains the ratios)

    def variants_for(self, model: str, transformer: bool | None = None) -> tuple[str, ...]:
        skip = self.minilm_skip if model == "minilm_l6" else ()
        return tuple(v for v in self.variants if v not in skip and variant_applies(v, model, transformer))

    def batches_for(self, model: str) -> tuple[int, ...]:
        if model == "minilm_l6" and self.minilm_batches is not None:
            return self.minilm_batches
        return self.batches


_CPU_CORE = ("torch_eager", "ort_fp32_basic", "ort_fp32_extended", "ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq")
_TRANSFORMER = ("ort_ts_fp32", "ort_ts_int8_dynamic", "ort_fused_fp32", "ort_fused_int8_dynamic", "ort_fused_int8_static_qdq", "ort_fused_int8_smooth")

SUITE_SETTINGS: dict[str, SuiteSettings] = {
    "quick": SuiteSettings(
        name="quick",
        batches=(1, 8, 32),
        repeats=5,
        warmup=2,
        min_block_ms=50.0,
        max_calls_per_block=2_000,
        cv_threshold=0.10,
        variants=(*_CPU_CORE, *_TRANSFORMER),
        minilm_sentences=96,
        minilm_batches=(1, 32),
        minilm_skip=("ort_fp32_basic", "ort_fp32_extended", "ort_int8_static_qdq"),  # time; all three are in the full suite
    ),
    "full": SuiteSettings(
        name="full",
        batches=(1, 8, 32, 128),
        repeats=10,
        warmup=3,
        min_block_ms=200.0,
        max_calls_per_block=20_000,
        cv_threshold=0.10,
        variants=(*_CPU_CORE, "ort_int8_static_qop", "ort_fp16", *_TRANSFORMER, "ort_ts_int8_static_qdq"),
        minilm_sentences=256,
        # batch 128 left out for MiniLM: with 14 variants at two thread counts it would double the run
        # (~6 s per FP32 call); its ratios were within a few % of batch 32 in the 2026-11-23 run.
        minilm_batches=(1, 8, 32),
    ),
}
