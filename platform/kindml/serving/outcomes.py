"""What the predictor keeps of every answer so delayed labels can be joined to it: the prediction log and its quality metrics.

Every scored row gets a ``prediction_id`` (a random hex string, returned in the
answer). The row's score and predicted label are written to the
:class:`~kindml.monitoring.quality.PredictionLog` — SQLite in the workspace
(``serving/predictions.db``), bounded by rows and age, shared by every worker
process — and ``POST /v1/feedback`` later joins the outcome to it. The
realised quality of each (model, version, variant) is computed at scrape time
by a :class:`~kindml.monitoring.quality.QualityCollector` next to the
version's offline holdout score (the bundle's ``metrics.json``), which the
``KindmlQualityDegraded`` alert compares.

Only tasks with one outcome per prediction are logged (binary, multiclass,
regression); a ranking model answers without ids.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

LOGGED_TASKS = ("binary", "multiclass", "regression")
REFERENCE_METRICS = ("roc_auc", "macro_f1", "accuracy", "precision", "recall", "ece", "mae", "wape")
"""Holdout metrics of ``metrics.json`` exported as ``kindml_quality_reference`` (those the realised window also computes)."""

_LOCK = threading.Lock()


class PredictionRecorder:
    """Ids for scored rows, and their entries in the prediction log."""

    def __init__(self, log_file: Path, task: str, classes: Sequence[str] | None = None, threshold: float = 0.5) -> None:
        from kindml.monitoring.quality import PredictionLog

        self.task = task
        self.classes = list(classes) if classes else None
        self.threshold = float(threshold)
        self.log = PredictionLog(log_file)
        self._declared: set[str] = set()

    def register(self, model: str, version: str, reference: dict[str, float] | None = None) -> None:
        """Declare a served version: its task for feedback checks, and its holdout scores for the quality alert."""
        self.log.register_model(model, self.task, self.classes if self.task == "multiclass" else None)
        self._declared.add(model)
        collector = quality_collector(self.log, self.task, self.threshold)
        if reference:
            collector.reference[(model, version)] = reference

    def scores_and_labels(self, probs: np.ndarray) -> tuple[list[float | None], list[str | None]]:
        p = np.asarray(probs, dtype=np.float64)
        if self.task == "binary":
            s = p.reshape(-1)
            return s.tolist(), ["1" if v >= self.threshold else "0" for v in s]
        if self.task == "multiclass":
            top = p.argmax(axis=1)
            names = self.classes or [str(i) for i in range(p.shape[1])]
            return p.max(axis=1).tolist(), [names[k] for k in top]
        if p.ndim == 2:  # a multi-output regression (a forecast horizon): the first output is the row's logged score
            p = p[:, 0]
        return p.reshape(-1).tolist(), [None] * p.reshape(-1).shape[0]

    def record(self, model: str, version: str, probs: np.ndarray, variant: str = "champion", experiment: str = "",
               entities: Sequence[Any] | None = None, parents: Sequence[str] | None = None) -> list[str]:
        """Log a scored batch; the ids, one per row (``<parent>.s`` for shadow rows of a client-visible answer)."""
        from kindml.monitoring.quality import Prediction

        if model not in self._declared:
            self.register(model, version)
        scores, labels = self.scores_and_labels(probs)
        n = len(scores)
        ids = [f"{parents[i]}.s" for i in range(n)] if parents is not None else [uuid.uuid4().hex for _ in range(n)]
        rows = [Prediction(id=ids[i], model=model, version=version, score=scores[i], label=labels[i], variant=variant,
                           experiment=experiment, entity=None if entities is None else str(entities[i]),
                           parent=None if parents is None else parents[i]) for i in range(n)]
        try:
            self.log.log(rows)
        except Exception:  # the answer still goes out; its outcome cannot be joined later
            log.exception("could not write %d predictions to %s", n, self.log.path)
        return ids


class QualityExport:
    """The one collector of realised quality in a process: every prediction log's :class:`QualityCollector`, merged
    (prometheus_client refuses two collectors of the same metric names on one registry)."""

    def __init__(self) -> None:
        self.sources: dict[str, Any] = {}

    def describe(self) -> Any:
        from kindml.monitoring.quality import QualityCollector

        return QualityCollector._families()

    def collect(self) -> Any:
        from kindml.monitoring.quality import QualityCollector

        merged = QualityCollector._families()
        for source in list(self.sources.values()):
            for fam, out in zip(source.collect(), merged, strict=True):
                out.samples.extend(fam.samples)
        yield from merged


class SeriesExport(QualityExport):
    """The one collector of realised error per series (delayed actuals of forecasts) in a process, merged like
    :class:`QualityExport`: every prediction log's :class:`~kindml.monitoring.actuals.SeriesErrorCollector`."""

    def describe(self) -> Any:
        from kindml.monitoring.actuals import SeriesErrorCollector

        return SeriesErrorCollector._families()

    def collect(self) -> Any:
        from kindml.monitoring.actuals import SeriesErrorCollector

        merged = SeriesErrorCollector._families()
        for source in list(self.sources.values()):
            for fam, out in zip(source.collect(), merged, strict=True):
                out.samples.extend(fam.samples)
        yield from merged


_EXPORT: QualityExport | None = None
_SERIES: SeriesExport | None = None


def quality_collector(prediction_log: Any, task: str, threshold: float) -> Any:
    """The QualityCollector of a log file in this process, exported where ``/metrics`` reads; for a regression model
    also the log's per-series error of delayed actuals (:class:`~kindml.monitoring.actuals.SeriesErrorCollector`,
    sharing the holdout reference)."""
    global _EXPORT, _SERIES
    from kindml.monitoring import metrics as mm
    from kindml.monitoring.quality import QualityCollector

    key = str(Path(prediction_log.path).resolve())
    with _LOCK:
        if _EXPORT is None:
            _EXPORT = QualityExport()
            mm.register_collector(_EXPORT)
        existing = _EXPORT.sources.get(key)
        if existing is None:
            existing = _EXPORT.sources[key] = QualityCollector(prediction_log, task, threshold=threshold)
        if task == "regression":
            from kindml.monitoring.actuals import SeriesErrorCollector

            if _SERIES is None:
                _SERIES = SeriesExport()
                mm.register_collector(_SERIES)
            if key not in _SERIES.sources:
                _SERIES.sources[key] = SeriesErrorCollector(prediction_log, reference=existing.reference)
        return existing


def reference_of(folder: Path) -> dict[str, float]:
    """The holdout metrics of a bundle (its ``metrics.json``) that the realised window is compared with."""
    p = Path(folder) / "metrics.json"
    if not p.is_file():
        return {}
    try:
        metrics = json.loads(p.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {k: float(metrics[k]) for k in REFERENCE_METRICS if isinstance(metrics.get(k), int | float)}


def recorder_for(task: str, kit: Any, serving_dir: Path) -> PredictionRecorder | None:
    """The recorder of a served (loaded) model kit of ``task``, or None when the task has no per-row outcome."""
    from kindml.monitoring.feedback import log_path

    if task not in LOGGED_TASKS:
        return None
    classes = getattr(kit, "class_names", None) if task == "multiclass" else None
    return PredictionRecorder(log_path(Path(serving_dir)), task, classes, float(getattr(kit, "threshold", 0.5) or 0.5))
