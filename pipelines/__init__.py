"""kindml's built-in pipelines (``kindml.pipelines``): the capstones, each a workload folder, and platform pipelines.

This package is the *workload layer*: it may import the core (``kindml.*``);
the core never imports it. The CLI reads :data:`CAPSTONES` to resolve
``kindml run NAME`` and to list them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Capstone:
    name: str
    pipeline: str
    """``module:function`` of the ``@dsl.pipeline``."""
    workload: str
    """The workload reference its components get."""

    def load(self) -> Any:
        module, _, attr = self.pipeline.partition(":")
        return getattr(importlib.import_module(module), attr)

    def workload_class(self) -> Any:
        from kindml.workload.loader import load_workload

        return load_workload(self.workload)


CAPSTONES: dict[str, Capstone] = {
    "fraud": Capstone("fraud", "kindml.pipelines.fraud.pipeline:pipeline", "kindml.pipelines.fraud.workload"),
    "text": Capstone("text", "kindml.pipelines.text.pipeline:pipeline", "kindml.pipelines.text.workload"),
    "recsys": Capstone("recsys", "kindml.pipelines.recsys.pipeline:pipeline", "kindml.pipelines.recsys.workload"),
}
DEFAULT_CAPSTONE = "fraud"
"""What ``kindml capstone`` (the README's first command) runs."""


def _bench_gpu() -> Any:
    from kindml.pipelines.bench_gpu import bench_gpu

    return bench_gpu


# every pipeline `kindml pipeline compile` writes: the capstones and the platform's own
PIPELINES: dict[str, Callable[[], Any]] = {**{name: c.load for name, c in CAPSTONES.items()}, "bench-gpu": _bench_gpu}
