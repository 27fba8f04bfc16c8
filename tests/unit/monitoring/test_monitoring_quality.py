"""Delayed labels: the bounded prediction log, the outcome join (unknown and duplicate ids), window metrics, the collector."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from kindml.monitoring.quality import Prediction, PredictionLog, QualityCollector, window_metrics


def _preds(n: int, model: str = "m", version: str = "1", variant: str = "champion", start: int = 0, seed: int = 0) -> list[Prediction]:
    rng = np.random.default_rng(seed)
    return [Prediction(f"p{i}", model, version, float(rng.random()), None, variant, ts=1_000.0 + i) for i in range(start, start + n)]


def test_join_reports_unknown_and_duplicate_and_changes_nothing_twice(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "q.db")
    assert log.log(_preds(5)) == 5
    r = log.feedback([("p0", 1), ("p1", 0), ("nope", 1), ("p0", 0)])
    assert r.joined == ["p0", "p1"] and r.unknown == ["nope"] and r.duplicate == ["p0"]
    scores, _, outcomes = log.window("m", "1", "champion")
    assert outcomes == ["1", "0"] and len(scores) == 2  # the duplicate did not overwrite p0's first outcome
    assert log.counts() == {"predictions": 5, "labelled": 2}
    assert log.log(_preds(2)) == 2 and log.counts()["predictions"] == 5  # ids are unique: a re-log is ignored


def test_bounded_by_rows_and_retention(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "q.db", max_rows=100, retention_s=50.0, prune_every=10**9)
    log.log(_preds(300))
    gone = log.prune(now=1_000.0 + 300)  # retention keeps ts >= 1250 (50 rows), already under max_rows
    assert gone == 250 and log.counts()["predictions"] == 50
    log2 = PredictionLog(tmp_path / "q2.db", max_rows=100, retention_s=1e9, prune_every=50)
    log2.log(_preds(400))  # pruning runs as rows arrive
    assert log2.counts()["predictions"] <= 100 + 50


WORKER = """
import sys
import numpy as np
from kindml.monitoring.quality import Prediction, PredictionLog
path, start = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(start)
log = PredictionLog(path)
log.log([Prediction(f"p{i}", "m", "1", float(rng.random()), None, "champion", ts=1_000.0 + i) for i in range(start, start + 200)])
log.feedback([(f"p{i}", i % 2) for i in range(start, start + 200)])
"""


def test_several_processes_share_one_log(tmp_path: Path) -> None:
    """Predictor workers (processes) log and join into the same file at the same time; nothing is lost."""
    path = str(tmp_path / "q.db")
    PredictionLog(path)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, path, str(k * 1000)], stderr=subprocess.PIPE, text=True) for k in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert PredictionLog(path).counts() == {"predictions": 600, "labelled": 600}


def test_window_metrics_match_sklearn() -> None:
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    m = window_metrics("binary", p, [""] * 500, [str(v) for v in y])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert m["recall"] == pytest.approx(((p >= 0.5) & (y == 1)).sum() / y.sum())
    assert math.isnan(window_metrics("binary", p[:10], [""] * 10, ["1"] * 10)["roc_auc"])  # one class only: undefined, not a crash
    truth = rng.choice(["a", "b", "c"], 300)
    pred = np.where(rng.random(300) < 0.8, truth, rng.choice(["a", "b", "c"], 300))
    mc = window_metrics("multiclass", np.zeros(300), list(pred), list(truth))
    assert mc["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"), abs=1e-9)
    reg = window_metrics("regression", np.array([10.0, 20.0]), ["", ""], ["12", "16"])
    assert reg["mae"] == pytest.approx(3.0) and reg["wape"] == pytest.approx(6 / 28)


def test_collector_exports_quality_per_variant_with_its_reference(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "q.db")
    good = [Prediction(f"g{i}", "m", "2", float(i % 2) * 0.8 + 0.1, None, "champion") for i in range(300)]
    bad = [Prediction(f"b{i}", "m", "3", 0.5 + 0.01 * (i % 7), None, "challenger") for i in range(300)]
    log.log(good + bad)
    log.feedback([(f"g{i}", i % 2) for i in range(300)] + [(f"b{i}", i % 2) for i in range(300)])
    log.log([Prediction("x1", "m", "4", 0.3, None, "shadow")])
    reg = CollectorRegistry()
    reg.register(QualityCollector(log, "binary", min_samples=200, reference={("m", "2"): {"roc_auc": 0.91}}))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in reg.collect() for s in fam.samples}
    key = lambda name, **kw: (name, tuple(sorted(kw.items())))  # noqa: E731
    assert samples[key("kindml_quality", model="m", version="2", variant="champion", metric="roc_auc")] == pytest.approx(1.0)
    assert samples[key("kindml_quality", model="m", version="3", variant="challenger", metric="roc_auc")] < 0.7
    assert samples[key("kindml_quality_samples", model="m", version="4", variant="shadow")] == 0.0
    assert not any(k[0] == "kindml_quality" and ("version", "4") in k[1] for k in samples)  # below min_samples: no quality yet
    assert samples[key("kindml_quality_reference", model="m", version="2", metric="roc_auc")] == 0.91
