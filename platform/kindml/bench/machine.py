"""What the benchmark ran on: CPU model and ISA flags, thread count, ONNX Runtime build.

A result is only comparable with another one from the same kind of CPU: INT8
speed-ups depend on VNNI (AVX-512 VNNI or AVX-VNNI) and AMX, FP32 on AVX-512.
Every result records them, read from ``/proc/cpuinfo`` (Linux).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The ISA flags that matter for ONNX Runtime's CPU kernels (MLAS), in report order.
ISA_FLAGS: tuple[str, ...] = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "amx_fp16",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    vendor: str
    flags: tuple[str, ...]  # the subset of ISA_FLAGS present, in ISA_FLAGS order
    logical_cpus: int
    physical_cores: int | None = None
    all_flags: frozenset[str] = field(default_factory=frozenset, repr=False)

    @property
    def isa(self) -> dict[str, bool]:
        """The headline capabilities: AVX2, AVX-512, VNNI (any flavour), AMX."""
        f = set(self.flags)
        return {
            "avx2": "avx2" in f,
            "avx512": "avx512f" in f,
            "vnni": bool(f & {"avx512_vnni", "avx_vnni"}),
            "amx": any(x.startswith("amx") for x in f),
        }

    @property
    def u8s8_saturates(self) -> bool:
        """True where ONNX Runtime's U8 x S8 integer kernels can saturate: x86 with AVX2 but no VNNI.

        Without VNNI, MLAS multiplies U8 activations by S8 weights with ``VPMADDUBSW``,
        whose 16-bit pair sums saturate; ORT's quantization guide recommends
        ``reduce_range`` (7-bit weights) on such CPUs and says it is not needed with VNNI.
        """
        isa = self.isa
        return isa["avx2"] and not isa["vnni"]

    @property
    def slug(self) -> str:
        return cpu_slug(self.model)


def parse_cpuinfo(text: str, logical_cpus: int | None = None) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` text (x86 ``flags``; ARM ``Features`` is accepted too)."""
    model = vendor = ""
    flags: set[str] = set()
    processors = 0
    cores: int | None = None
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip().lower()
        value = value.strip()
        if key == "processor":
            processors += 1
        elif key in ("model name", "hardware", "cpu model") and not model:
            model = value
        elif key == "vendor_id" and not vendor:
            vendor = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "cpu cores" and cores is None and value.isdigit():
            cores = int(value)
    model = re.sub(r"\s+", " ", model).strip() or platform.processor() or platform.machine() or "unknown cpu"
    present = tuple(f for f in ISA_FLAGS if f in flags)
    return CpuInfo(
        model=model,
        vendor=vendor or "unknown",
        flags=present,
        logical_cpus=logical_cpus or processors or (os.cpu_count() or 1),
        physical_cores=cores,
        all_flags=frozenset(flags),
    )


def cpu_slug(model: str) -> str:
    """``"AMD EPYC 9R14 96-Core Processor"`` → ``"amd-epyc-9r14-96-core"``: safe in a file name."""
    text = model.lower()
    text = re.sub(r"\((r|tm)\)", "", text)
    text = re.sub(r"\b(processor|cpu)\b", "", text)
    text = re.sub(r"@.*$", "", text)  # drop the clock suffix "@ 2.10GHz"
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return slug[:48].strip("-") or "unknown-cpu"


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return parse_cpuinfo(text, logical_cpus=available_cpus())


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def ort_build() -> dict[str, Any]:
    import onnxruntime as ort

    return {"onnxruntime_version": ort.__version__, "providers": list(ort.get_available_providers()), "ort_device": ort.get_device()}


def machine_info(threads: int, device: str, cpu: CpuInfo | None = None) -> dict[str, Any]:
    """The ``machine`` section of a result."""
    import numpy as np

    cpu = cpu or read_cpuinfo()
    info: dict[str, Any] = {
        "cpu_model": cpu.model,
        "cpu_vendor": cpu.vendor,
        "cpu_slug": cpu.slug,
        "cpu_flags": list(cpu.flags),
        "isa": cpu.isa,
        "logical_cpus": cpu.logical_cpus,
        "physical_cores": cpu.physical_cores,
        "threads": threads,
        "device": device,
        **ort_build(),
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.release()}",
    }
    try:
        import torch

        info["torch_version"] = torch.__version__
        info["torch_cuda"] = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch_version"] = None
        info["torch_cuda"] = False
    return info
