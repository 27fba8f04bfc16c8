"""Which variants run where: device resolution and execution-provider planning.

Pure functions of the requested device, the suite and the list of providers
the installed onnxruntime offers, so they are tested without a GPU. A variant
that cannot run here is never faked: it is planned as *skipped* with the
reason, and the report lists it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kindml.bench.catalog import (
    CPU_EP,
    CUDA_EP,
    DEVICES,
    TORCH_CPU,
    TORCH_CUDA,
    TRT_EP,
    VARIANTS,
    SuiteSettings,
)
from kindml.errors import BenchmarkError

SkipKind = Literal["not_available", "not_applicable", "failed"]


@dataclass(frozen=True)
class Planned:
    variant: str
    provider: str
    skip_kind: SkipKind | None = None
    reason: str = ""  # why skipped, or a note for a variant that runs (e.g. FP16 on CPU)

    @property
    def runs(self) -> bool:
        return self.skip_kind is None


def resolve_device(requested: str, available: Sequence[str]) -> tuple[str, str]:
    """``auto`` / ``cpu`` / ``cuda`` → (device, note). ``cuda`` without a CUDA EP is an error."""
    if requested not in DEVICES:
        raise BenchmarkError(f"unknown device {requested!r}", f"Use one of: {', '.join(DEVICES)}.")
    have = ", ".join(available) or "none"
    if requested == "cpu":
        return "cpu", ""
    if CUDA_EP in available:
        return "cuda", ""
    if requested == "cuda":
        raise BenchmarkError(
            f"--device cuda: this onnxruntime build has no {CUDA_EP} (available: {have})",
            "Run on a GPU node with the onnxruntime-gpu package and an NVIDIA driver (see benchmarks/README.md), "
            "or use --device cpu / --device auto.",
        )
    return "cpu", f"{CUDA_EP} is not available in this onnxruntime build (available: {have}): running on CPU; GPU variants are reported as skipped."


def plan(settings: SuiteSettings, device: str, available: Sequence[str], torch_cuda: bool = False) -> list[Planned]:
    """The (variant, provider) pairs of one model for a suite on a device, runnable or skipped."""
    have = ", ".join(available) or "none"
    out: list[Planned] = []
    if device == "cpu":
        for name in settings.variants:
            if name == "torch_eager":
                out.append(Planned(name, TORCH_CPU))
            elif name == "ort_fp16":
                out.append(Planned(name, CPU_EP, reason="not applicable on CPU: ORT's CPU EP has few FP16 kernels, so this is measured only to show the regression"))
            else:
                out.append(Planned(name, CPU_EP))
        if "ort_fp16" not in settings.variants:
            out.append(Planned("ort_fp16", CPU_EP, "not_applicable", "FP16 on CPU is not a deployment option (few FP16 kernels in ORT's CPU EP); measured as a regression in the full suite only"))
        gpu_reason = (
            "not run: --device cpu" if CUDA_EP in available else f"{CUDA_EP} is not available in this onnxruntime build (available: {have})"
        )
        out.append(Planned("ort_fp32_all", CUDA_EP, "not_available", f"CUDA EP FP32 with IO binding: {gpu_reason}"))
        out.append(Planned("ort_fp16", CUDA_EP, "not_available", f"CUDA EP FP16 with IO binding: {gpu_reason}"))
        trt_reason = "not run: --device cpu" if TRT_EP in available else f"{TRT_EP} is not available in this onnxruntime build (available: {have})"
        out.append(Planned("trt_fp16", TRT_EP, "not_available", trt_reason))
        out.append(Planned("trt_int8", TRT_EP, "not_available", trt_reason))
        return out
    if device != "cuda":
        raise BenchmarkError(f"unknown device {device!r}", "Use cpu or cuda.")
    if CUDA_EP not in available:
        raise BenchmarkError(f"device cuda but no {CUDA_EP} (available: {have})", "Install onnxruntime-gpu, or use --device cpu.")
    if torch_cuda:
        out.append(Planned("torch_eager", TORCH_CUDA))
    else:
        out.append(Planned("torch_eager", TORCH_CUDA, "not_available", "this PyTorch build has no CUDA (torch.cuda.is_available() is false)"))
    for name in ("ort_fp32_basic", "ort_fp32_extended", "ort_fp32_all", "ort_fp16"):
        out.append(Planned(name, CUDA_EP, reason="IO binding: inputs and outputs stay on the GPU"))
    out.append(Planned("ort_int8_dynamic", CUDA_EP, "not_applicable", "dynamic quantisation ops (DynamicQuantizeLinear, MatMulInteger) are CPU kernels; on GPU INT8 is measured through TensorRT (trt_int8)"))
    for name in ("ort_int8_static_qdq", "ort_int8_static_qop"):
        out.append(Planned(name, CUDA_EP, "not_applicable", "the CUDA EP runs Q/DQ graphs in float (no INT8 GEMM kernels); on GPU INT8 is measured through TensorRT (trt_int8)"))
    for name in ("trt_fp16", "trt_int8"):
        if TRT_EP in available:
            out.append(Planned(name, TRT_EP, reason="engine cache on; IO binding"))
        else:
            out.append(Planned(name, TRT_EP, "not_available", f"{TRT_EP} is not available in this onnxruntime build (available: {have})"))
    return out


def session_providers(provider: str, trt_options: dict[str, object] | None = None) -> list[object]:
    """The ``providers=`` list for an InferenceSession: the wanted EP first, then its fallbacks."""
    if provider == CPU_EP:
        return [CPU_EP]
    if provider == CUDA_EP:
        return [(CUDA_EP, {"device_id": 0}), CPU_EP]
    if provider == TRT_EP:
        return [(TRT_EP, dict(trt_options or {})), (CUDA_EP, {"device_id": 0}), CPU_EP]
    raise BenchmarkError(f"unknown execution provider {provider!r}", f"Known: {CPU_EP}, {CUDA_EP}, {TRT_EP}.")


def check_session_provider(requested: str, active: Sequence[str]) -> str | None:
    """None when the session really runs on ``requested``; else why not (ORT falls back silently)."""
    if active and active[0] == requested:
        return None
    return f"requested {requested} but the session runs on {', '.join(active) or 'nothing'} (driver, CUDA/cuDNN or TensorRT libraries missing?)"


def known_variant(name: str) -> bool:
    return name in VARIANTS
