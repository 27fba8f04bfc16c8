"""KFP v2 pipelines of kindml (``kindml.pipelines``). ``PIPELINES`` maps name → pipeline function factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _capstone() -> Any:
    from kindml.pipelines.capstone import capstone

    return capstone


def _bench_gpu() -> Any:
    from kindml.pipelines.bench_gpu import bench_gpu

    return bench_gpu


PIPELINES: dict[str, Callable[[], Any]] = {"capstone": _capstone, "bench-gpu": _bench_gpu}
