"""kindml's built-in pipelines (``kindml.pipelines``): the capstones, each a workload folder, and platform pipelines.

This package is the *workload layer*: it may import the core (``kindml.*``);
the core never imports it. The CLI reads :data:`CAPSTONES` to resolve
``kindml run NAME`` and to list them, and :data:`BENCH_CASES` for the model
cases the workloads add to ``kindml bench``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
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
    "forecast": Capstone("forecast", "kindml.pipelines.forecast.pipeline:pipeline", "kindml.pipelines.forecast.workload"),
}
DEFAULT_CAPSTONE = "fraud"
"""What ``kindml capstone`` (the README's first command) runs."""


def _bench_gpu() -> Any:
    from kindml.pipelines.bench_gpu import bench_gpu

    return bench_gpu


# The workloads' models in `kindml bench` (next to the platform's digits_cnn and minilm_l6):
# case name -> "module:attribute" of a kindml.bench.cases.BenchCase, imported only when selected.
BENCH_CASES: dict[str, str] = {
    "fraud_mlp": "kindml.pipelines.fraud.bench:case",
}
# Deprecated spellings of `kindml bench --source` (hidden, still accepted).
BENCH_SOURCE_ALIASES: tuple[str, ...] = ("--fraud-source",)


def bench_cases(names: Iterable[str] | None = None) -> list[Any]:
    """The registered cases (all, or those in ``names``), loaded, in registry order."""
    from kindml.bench.cases import BenchCase
    from kindml.errors import UsageError

    wanted = set(BENCH_CASES) if names is None else set(names)
    out = []
    for name, ref in BENCH_CASES.items():
        if name not in wanted:
            continue
        module, _, attr = ref.partition(":")
        case = getattr(importlib.import_module(module), attr)
        if not isinstance(case, BenchCase) or case.name != name:
            raise UsageError(f"BENCH_CASES[{name!r}] = {ref!r} is not a BenchCase named {name!r}", "Point the entry at a kindml.bench.cases.BenchCase with that name.")
        out.append(case)
    return out


# every pipeline `kindml pipeline compile` writes: the capstones and the platform's own
PIPELINES: dict[str, Callable[[], Any]] = {**{name: c.load for name, c in CAPSTONES.items()}, "bench-gpu": _bench_gpu}
