"""Which models the suite measures: the platform's own cases, plus the cases a caller brings.

A :class:`BenchCase` is the plug-in interface. The core knows two cases of its
own (:data:`PLATFORM_CASES`: ``digits_cnn``, ``minilm_l6``); a workload
contributes more by giving the suite its cases (``BenchRequest.cases``). The
CLI reads them from the workload layer's registry
(``kindml.pipelines.BENCH_CASES``: name → ``"module:attribute"``), so
``kindml bench --models NAME`` works for a workload's model without the core
naming it.

A case carries what the suite needs before and after building the model:

- ``name``: the model name in results and tables (``[a-z][a-z0-9_]*``);
- ``primary_metric`` and ``acceptable`` (``(quality key, floor)``): the
  :class:`~kindml.bench.quality.QualityRule` the report and the headline use;
- ``transformer``: whether the fused transformer family (``ort_ts_*``,
  ``ort_fused_*``) applies (then the built :class:`ModelCase` sets its
  ``transformer`` settings);
- ``build(request, work_dir) -> ModelCase``: train or load the model, export
  FP32 ONNX, return real eval and calibration inputs and a quality function;
- ``registry_source(config, tracking_uri)`` (optional): where a registered
  champion of this model could be. When present, ``--source auto|registry|train``
  applies to the case; the caller resolves it into ``BenchRequest.sources[name]``
  and the builder reads it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kindml.bench.catalog import MODEL_NAME_PATTERN, PLATFORM_MODELS
from kindml.bench.quality import PLATFORM_RULES, QualityRule
from kindml.errors import UsageError

if TYPE_CHECKING:
    from kindml.bench.models import ModelCase
    from kindml.bench.suite import BenchRequest

SOURCES: tuple[str, ...] = ("auto", "registry", "train")


@dataclass(frozen=True)
class BenchCase:
    name: str
    primary_metric: str
    acceptable: tuple[str, float]
    """``(quality key, floor)``: a variant is acceptable when ``quality[key] >= floor``."""
    build: Callable[[BenchRequest, Path], ModelCase]
    transformer: bool = False
    registry_source: Callable[[Any, str], Any] | None = None
    """``(workspace config, MLflow tracking URI) -> source``: where a registered champion could be."""
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(MODEL_NAME_PATTERN, self.name):
            raise UsageError(f"benchmark case name {self.name!r} is not valid", "Use lower-case letters, digits and underscores, starting with a letter.")
        if not callable(self.build):
            raise UsageError(f"benchmark case {self.name}: build is not callable", "Give it a function (request, work_dir) -> ModelCase.")

    @property
    def rule(self) -> QualityRule:
        key, floor = self.acceptable
        return QualityRule(self.primary_metric, key, float(floor))

    @property
    def from_registry(self) -> bool:
        return self.registry_source is not None


def _digits(req: BenchRequest, work: Path) -> ModelCase:
    from kindml.bench.models import digits_case

    return digits_case(work)


def _minilm(req: BenchRequest, work: Path) -> ModelCase:
    from kindml.bench.models import minilm_case
    from kindml.bench.suite import effective_settings

    return minilm_case(work, effective_settings(req).minilm_sentences)


def _platform(name: str, build: Callable[[BenchRequest, Path], ModelCase], transformer: bool, description: str) -> BenchCase:
    rule = PLATFORM_RULES[name]
    return BenchCase(name, rule.primary, (rule.key, rule.floor), build, transformer=transformer, description=description)


PLATFORM_CASES: dict[str, BenchCase] = {
    "digits_cnn": _platform("digits_cnn", _digits, False, "a small CNN on scikit-learn's digits"),
    "minilm_l6": _platform("minilm_l6", _minilm, True, "all-MiniLM-L6-v2 sentence embeddings"),
}
assert tuple(PLATFORM_CASES) == PLATFORM_MODELS


def catalog(extra: Iterable[BenchCase] = ()) -> dict[str, BenchCase]:
    """Every case a request can name, in suite order: the caller's cases first, then the platform's."""
    out: dict[str, BenchCase] = {}
    for case in extra:
        if not isinstance(case, BenchCase):
            raise UsageError(f"{case!r} is not a kindml.bench.cases.BenchCase", "A workload's benchmark case must be a BenchCase instance.")
        if case.name in PLATFORM_CASES or case.name in out:
            raise UsageError(f"two benchmark cases are named {case.name!r}", "Give every workload case its own name.")
        out[case.name] = case
    return out | PLATFORM_CASES


def parse_models(value: str | Sequence[str] | None, known: Sequence[str] = PLATFORM_MODELS) -> tuple[str, ...]:
    """``"digits_cnn,minilm_l6"`` (or a list, or None / ``all`` for every known one) → validated names, in ``known``'s order."""
    if value is None:
        return tuple(known)
    items = value.split(",") if isinstance(value, str) else [x for v in value for x in str(v).split(",")]
    names = [x.strip() for x in items if x.strip()]
    if not names or names == ["all"]:
        return tuple(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown model(s): {', '.join(unknown)}", f"Choose from: {', '.join(known)} (comma-separated), or all.")
    return tuple(m for m in known if m in names)
