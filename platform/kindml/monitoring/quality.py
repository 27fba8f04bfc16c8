"""Delayed labels → realised model quality: a bounded prediction log, the outcome join, sliding-window metrics.

Every answer the predictor gives carries a ``prediction_id``; the prediction
(model, version, variant, score, predicted label, time) is logged in a
:class:`PredictionLog`. When the truth arrives later — a chargeback, a
resolved ticket, an actual — ``POST /v1/feedback`` (or ``kindml feedback
ingest FILE``) joins it to the logged prediction. Realised quality is computed
from the newest labelled outcomes of each model / version / variant at scrape
time (:class:`QualityCollector`) and exported as ``kindml_quality`` gauges,
next to ``kindml_quality_reference`` (the version's offline holdout score) so
one workload-agnostic alert rule compares them.

The log is a SQLite file (WAL): every predictor worker process and the CLI
share it, so a label joins no matter which worker served the prediction, and
a scrape of any worker sees the same window. It is bounded: rows older than
``retention_s`` and beyond ``max_rows`` are pruned, oldest first.

Outcomes per task: ``binary`` 0/1; ``multiclass`` the class name; ``regression``
a number. A prediction gets at most one outcome (a second is a duplicate and
changes nothing); an unknown id is reported, never an error that loses the rest.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

QUALITY = "kindml_quality"
QUALITY_REFERENCE = "kindml_quality_reference"
QUALITY_SAMPLES = "kindml_quality_samples"
FEEDBACK = "kindml_feedback_total"

DEFAULT_WINDOW = 2_000
DEFAULT_MIN_SAMPLES = 200
DEFAULT_MAX_ROWS = 500_000
DEFAULT_RETENTION_S = 14 * 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    variant TEXT NOT NULL,
    experiment TEXT NOT NULL,
    ts REAL NOT NULL,
    score REAL,
    label TEXT,
    outcome TEXT,
    outcome_ts REAL,
    entity TEXT,
    parent TEXT
);
CREATE INDEX IF NOT EXISTS by_parent ON predictions (parent) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS by_experiment ON predictions (experiment, outcome_ts) WHERE experiment != '';
CREATE INDEX IF NOT EXISTS labelled ON predictions (model, version, variant, outcome_ts);
CREATE INDEX IF NOT EXISTS by_time ON predictions (ts);
CREATE TABLE IF NOT EXISTS models (
    model TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    classes TEXT
);
"""


@dataclass(frozen=True)
class Prediction:
    id: str
    model: str
    version: str
    score: float | None
    label: str | None
    variant: str = "champion"
    experiment: str = ""
    ts: float = field(default_factory=time.time)
    entity: str | None = None  # the entity the experiment assigned (for its variance buckets)
    parent: str | None = None  # a shadow prediction: the id of the answer the client got (its outcome is this one's too)


@dataclass
class FeedbackResult:
    joined: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"joined": len(self.joined), "unknown": self.unknown, "duplicate": self.duplicate}


class PredictionLog:
    """The bounded, multi-process prediction log (SQLite, WAL)."""

    def __init__(self, path: Path | str, max_rows: int = DEFAULT_MAX_ROWS, retention_s: float = DEFAULT_RETENTION_S,
                 prune_every: int = 5_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.retention_s = retention_s
        self.prune_every = prune_every
        self._local = threading.local()
        self._writes = 0
        with self._conn() as c:
            c.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        yield conn

    def log(self, predictions: Iterable[Prediction]) -> int:
        rows = [(p.id, p.model, p.version, p.variant, p.experiment, p.ts, None if p.score is None else float(p.score), p.label,
                 p.entity, p.parent) for p in predictions]
        if not rows:
            return 0
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT OR IGNORE INTO predictions (id, model, version, variant, experiment, ts, score, label, entity, parent) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            c.execute("COMMIT")
        self._writes += len(rows)
        if self._writes >= self.prune_every:
            self._writes = 0
            self.prune()
        return len(rows)

    def register_model(self, model: str, task: str, classes: list[str] | None = None) -> None:
        """Record a served model's task (and class names) so outcomes for its predictions can be checked."""
        import json

        with self._conn() as c:
            c.execute("INSERT OR REPLACE INTO models (model, task, classes) VALUES (?, ?, ?)",
                      (model, task, None if classes is None else json.dumps(list(classes))))

    def models(self) -> dict[str, tuple[str, list[str] | None]]:
        """model → (task, class names or None) of every model that logged here."""
        import json

        with self._conn() as c:
            rows = c.execute("SELECT model, task, classes FROM models").fetchall()
        return {m: (t, None if cl is None else json.loads(cl)) for m, t, cl in rows}

    def owners(self, ids: Iterable[str]) -> dict[str, str]:
        """prediction id → model, for the ids the log holds."""
        ids = list(ids)
        out: dict[str, str] = {}
        with self._conn() as c:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                out.update(dict(c.execute(f"SELECT id, model FROM predictions WHERE id IN ({marks}) AND parent IS NULL", chunk).fetchall()))  # noqa: S608
        return out

    def feedback(self, outcomes: Iterable[tuple[str, Any]], at: float | None = None) -> FeedbackResult:
        """Join outcomes to logged predictions: each id gets at most one outcome; unknown ids are reported."""
        at = time.time() if at is None else at
        result = FeedbackResult()
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            for pid, outcome in outcomes:
                cur = c.execute("UPDATE predictions SET outcome = ?, outcome_ts = ? WHERE id = ? AND outcome IS NULL AND parent IS NULL",
                                (str(outcome), at, pid))
                if cur.rowcount == 1:
                    result.joined.append(pid)
                    c.execute("UPDATE predictions SET outcome = ?, outcome_ts = ? WHERE parent = ? AND outcome IS NULL",
                              (str(outcome), at, pid))
                elif c.execute("SELECT 1 FROM predictions WHERE id = ? AND parent IS NULL", (pid,)).fetchone():  # shadow rows: unknown to clients
                    result.duplicate.append(pid)
                else:
                    result.unknown.append(pid)
            c.execute("COMMIT")
        return result

    def window(self, model: str, version: str, variant: str, n: int = DEFAULT_WINDOW) -> tuple[np.ndarray, list[str], list[str]]:
        """The newest ``n`` labelled outcomes: (scores, predicted labels, outcomes), oldest first."""
        with self._conn() as c:
            rows = c.execute("SELECT score, label, outcome FROM predictions WHERE model = ? AND version = ? AND variant = ? "
                             "AND outcome IS NOT NULL ORDER BY outcome_ts DESC LIMIT ?", (model, version, variant, n)).fetchall()
        rows.reverse()
        scores = np.array([np.nan if r[0] is None else r[0] for r in rows], dtype=np.float64)
        return scores, [r[1] for r in rows], [r[2] for r in rows]

    def labelled_points(self, id_prefix: str, n: int) -> dict[tuple[str, str], list[tuple[str, float | None, str]]]:
        """(model, version) → its newest ``n`` labelled predictions whose id starts with ``id_prefix`` and that name an
        entity: (entity, score, outcome) each (the joined actuals of forecasts, :mod:`kindml.monitoring.actuals`)."""
        out: dict[tuple[str, str], list[tuple[str, float | None, str]]] = {}
        with self._conn() as c:
            versions = c.execute("SELECT DISTINCT model, version FROM predictions WHERE id LIKE ? AND outcome IS NOT NULL",
                                 (id_prefix + "%",)).fetchall()
            for model, version in versions:
                out[(model, version)] = c.execute(
                    "SELECT entity, score, outcome FROM predictions WHERE model = ? AND version = ? AND id LIKE ? "
                    "AND outcome IS NOT NULL AND entity IS NOT NULL ORDER BY outcome_ts DESC LIMIT ?",
                    (model, version, id_prefix + "%", n)).fetchall()
        return out

    def labelled_since(self, experiment: str, after: tuple[float, str] = (0.0, "")) -> list[dict[str, Any]]:
        """The experiment's predictions whose outcome arrived after the cursor ``(outcome_ts, id)``, in arrival order."""
        with self._conn() as c:
            rows = c.execute("SELECT id, variant, entity, score, label, outcome, outcome_ts, parent FROM predictions "
                             "WHERE experiment = ? AND outcome IS NOT NULL AND (outcome_ts > ? OR (outcome_ts = ? AND id > ?)) "
                             "ORDER BY outcome_ts, id", (experiment, after[0], after[0], after[1])).fetchall()
        keys = ("id", "variant", "entity", "score", "label", "outcome", "outcome_ts", "parent")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def groups(self) -> list[tuple[str, str, str, str]]:
        """(model, version, variant, experiment) of every logged prediction."""
        with self._conn() as c:
            return [tuple(r) for r in c.execute("SELECT DISTINCT model, version, variant, experiment FROM predictions").fetchall()]  # type: ignore[misc]

    def counts(self) -> dict[str, int]:
        with self._conn() as c:
            total, labelled = c.execute("SELECT COUNT(*), COUNT(outcome) FROM predictions").fetchone()
        return {"predictions": int(total), "labelled": int(labelled)}

    def prune(self, now: float | None = None) -> int:
        """Drop predictions past the retention, then the oldest beyond ``max_rows``."""
        now = time.time() if now is None else now
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            gone = c.execute("DELETE FROM predictions WHERE ts < ?", (now - self.retention_s,)).rowcount
            (n,) = c.execute("SELECT COUNT(*) FROM predictions").fetchone()
            if n > self.max_rows:
                gone += c.execute("DELETE FROM predictions WHERE id IN (SELECT id FROM predictions ORDER BY ts ASC LIMIT ?)",
                                  (n - self.max_rows,)).rowcount
            c.execute("COMMIT")
        return int(gone)


# --- metrics of a window, per task ---------------------------------------------------------------

def window_metrics(task: str, scores: np.ndarray, labels: list[str], outcomes: list[str], threshold: float = 0.5) -> dict[str, float]:
    """Realised quality of labelled outcomes: the task's headline metrics (NaN when undefined, e.g. one class only)."""
    if not outcomes:
        return {}
    if task == "binary":
        y = np.array([_as_float(o) for o in outcomes])
        ok = np.isfinite(y) & np.isfinite(scores)
        y, p = y[ok].astype(int), scores[ok]
        if len(y) == 0:
            return {}
        pred = p >= threshold
        tp = float(((pred == 1) & (y == 1)).sum())
        out = {"precision": tp / max(float(pred.sum()), 1.0), "recall": tp / max(float(y.sum()), 1.0),
               "positive_rate": float(y.mean()), "ece": _ece(p, y)}
        out["roc_auc"] = _auc(y, p)
        return out
    if task == "multiclass":
        y = np.array(outcomes, dtype=object)
        pred = np.array(labels, dtype=object)
        classes = sorted(set(y) | set(pred))
        f1s = []
        for c in classes:
            tp = float(((pred == c) & (y == c)).sum())
            prec = tp / max(float((pred == c).sum()), 1.0)
            rec = tp / max(float((y == c).sum()), 1.0)
            f1s.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
        return {"accuracy": float((pred == y).mean()), "macro_f1": float(np.mean(f1s)) if f1s else math.nan}
    if task == "regression":
        y = np.array([_as_float(o) for o in outcomes])
        ok = np.isfinite(y) & np.isfinite(scores)
        y, f = y[ok], scores[ok]
        if len(y) == 0:
            return {}
        err = np.abs(f - y)
        return {"mae": float(err.mean()), "wape": float(err.sum() / max(np.abs(y).sum(), 1e-12))}
    return {}


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(p)
    pos = y == 1
    n1, n0 = float(pos.sum()), float((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return float(total)


class QualityCollector:
    """A ``prometheus_client`` collector: realised quality of every (model, version, variant) in the log, at scrape time.

    ``reference``: (model, version) → {metric: offline holdout value} (``kindml_quality_reference``). Metrics are
    exported once a window holds ``min_samples`` labelled outcomes; the sample count always.
    """

    def __init__(self, log: PredictionLog, task: str, threshold: float = 0.5, window: int = DEFAULT_WINDOW,
                 min_samples: int = DEFAULT_MIN_SAMPLES, reference: dict[tuple[str, str], dict[str, float]] | None = None) -> None:
        self.log = log
        self.task = task
        self.threshold = threshold
        self.window = window
        self.min_samples = min_samples
        self.reference = reference or {}

    def describe(self) -> Iterable[Any]:
        return self._families()

    @staticmethod
    def _families() -> tuple[Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(QUALITY, "Realised model quality on the newest labelled outcomes (delayed labels joined to predictions).",
                              labels=["model", "version", "variant", "metric"]),
            GaugeMetricFamily(QUALITY_SAMPLES, "Labelled outcomes in the quality window.", labels=["model", "version", "variant"]),
            GaugeMetricFamily(QUALITY_REFERENCE, "The version's offline holdout score of each quality metric (the evaluate stage's).",
                              labels=["model", "version", "metric"]),
        )

    def collect(self) -> Iterator[Any]:
        quality, samples, reference = self._families()
        for model, version, variant in sorted({g[:3] for g in self.log.groups()}):  # one window per variant, whatever the experiment
            scores, labels, outcomes = self.log.window(model, version, variant, self.window)
            samples.add_metric([model, version, variant], float(len(outcomes)))
            if len(outcomes) < self.min_samples:
                continue
            for metric, value in window_metrics(self.task, scores, labels, outcomes, self.threshold).items():
                if math.isfinite(value):
                    quality.add_metric([model, version, variant, metric], value)
        for (model, version), values in self.reference.items():
            for metric, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    reference.add_metric([model, version, metric], float(value))
        yield quality
        yield samples
        yield reference
