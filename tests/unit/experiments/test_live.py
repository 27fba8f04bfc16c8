"""The running experiment: log rows → outcomes (ab and shadow pairs), the locked evaluator with its cursor, decisions, stop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kindml.experiments import live
from kindml.experiments.assignment import route
from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import parse_spec
from kindml.monitoring.quality import Prediction, PredictionLog

pytestmark = pytest.mark.unit

BASE = {"name": "fraud-v2", "salt": "live-test-salt", "metric": {"name": "accuracy", "baseline": 0.8}, "mde": 0.1,
        "min_samples": 100, "look_every": 0.05}


def _start(serving: Path, **over: object) -> dict:
    return live.start(serving, {**BASE, **over}, model="fraud", task="binary", threshold=0.5,
                      champion={"version": "1", "dir": "/c"}, challenger={"version": "2", "dir": "/d"},
                      entity_field="customer_id", started_by="tester")


def _traffic(log: PredictionLog, spec: dict, n: int, acc: tuple[float, float], seed: int, start: int = 0) -> list[tuple[str, str]]:
    """What the predictor logs for n requests of distinct entities, and the true outcomes."""
    s = parse_spec(spec)
    rng = np.random.default_rng(seed)
    preds, outcomes = [], []
    for i in range(start, start + n):
        ent = f"c{i}"
        truth = str(int(rng.random() < 0.3))
        r = route(s, ent)
        pid = f"p{i}"
        for variant in r.score:
            right = rng.random() < acc[variant == "challenger"]
            label = truth if right else str(1 - int(truth))
            shadow = s.mode == "shadow" and variant != r.answer
            preds.append(Prediction(f"{pid}.s" if shadow else pid, "fraud", "2" if variant == "challenger" else "1",
                                    0.9 if label == "1" else 0.1, label, variant, s.name, entity=ent, parent=pid if shadow else None))
        outcomes.append((pid, truth))
    log.log(preds)
    return outcomes


def test_a_better_challenger_is_promoted_and_outcomes_count_once(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    log = PredictionLog(serving / "predictions.db")
    _start(serving)
    with pytest.raises(ExperimentError, match="still running"):
        _start(serving)
    outs = _traffic(log, BASE, 6000, (0.8, 0.92), seed=1)
    decided = None
    for i in range(0, len(outs), 500):
        log.feedback(outs[i : i + 500])
        rec = live.evaluate(serving, log)
        again = live.evaluate(serving, log)  # nothing new: the cursor keeps outcomes from counting twice
        assert sum(live.report(again)["outcomes_per_arm"].values()) == sum(live.report(rec)["outcomes_per_arm"].values())
        if rec["status"] == "decided":
            decided = rec
            break
    assert decided is not None, live.report(rec)
    rep = live.report(decided)
    assert rep["decision"]["action"] == "promote" and len(rep["path"]) >= 1
    n_ch, n_champ = rep["outcomes_per_arm"]["challenger"], rep["outcomes_per_arm"]["champion"]
    assert 0.4 < n_ch / (n_ch + n_champ) < 0.6  # the 50/50 split of sticky assignment
    assert rep["rates"][1] > rep["rates"][0]


def test_an_equal_challenger_keeps_running_and_stop_archives(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    log = PredictionLog(serving / "predictions.db")
    _start(serving)
    log.feedback(_traffic(log, BASE, 400, (0.8, 0.8), seed=2))  # under the budget of ~700
    rec = live.evaluate(serving, log)
    assert rec["status"] == "running" and live.report(rec)["decision"]["action"] == "keep_running"
    done = live.stop(serving, "enough", "tester")
    assert done["status"] == "stopped" and Path(done["archived_to"]).is_file() and live.load(serving) is None
    assert live.evaluate(serving, log) is None


def test_shadow_pairs_both_models_on_the_same_labelled_request(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    log = PredictionLog(serving / "predictions.db")
    spec = {**BASE, "mode": "shadow"}
    _start(serving, mode="shadow")
    outs = _traffic(log, spec, 800, (0.8, 0.8), seed=3)
    r = log.feedback(outs)
    assert len(r.joined) == 800  # the client's ids; the shadow answers took the same outcomes
    assert log.counts()["labelled"] == 1600
    rep = live.report(live.evaluate(serving, log))
    assert rep["outcomes_per_arm"]["champion"] == rep["outcomes_per_arm"]["challenger"] == 800


def test_rules_must_fit_the_task(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="not a metric kindml computes"):
        _start(tmp_path, metric={"name": "conversion", "baseline": 0.1})
    with pytest.raises(ExperimentError, match="needs a binary model"):
        live.start(tmp_path, {**BASE, "metric": {"name": "catch_rate", "baseline": 0.5}}, model="t", task="multiclass", threshold=0.5,
                   champion={"version": "1"}, challenger={"version": "2"}, entity_field="customer_id", started_by="x")
    with pytest.raises(ExperimentError, match="same version"):
        live.start(tmp_path, BASE, model="t", task="binary", threshold=0.5, champion={"version": "1"}, challenger={"version": "1"},
                   entity_field="customer_id", started_by="x")
    with pytest.raises(ExperimentError, match="no experiment to stop"):
        live.stop(tmp_path, "x", "y")
