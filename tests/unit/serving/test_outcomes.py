"""The predictor's prediction log and realised-quality export (kindml.serving.outcomes) on a real SQLite file and a
real prometheus_client registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kindml.monitoring.feedback import FeedbackError, ingest
from kindml.serving.outcomes import QualityExport, quality_collector, recorder_for, reference_of

pytestmark = pytest.mark.unit


class BinaryKit:
    threshold = 0.3


class TextKit:
    class_names = ["billing", "refund", "login"]


def samples(collector: QualityExport) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in collector.collect() for s in fam.samples}


def test_binary_rows_get_ids_and_labels_at_the_kits_threshold(tmp_path: Path) -> None:
    rec = recorder_for("binary", BinaryKit(), tmp_path)
    assert rec is not None and rec.log.path == tmp_path / "predictions.db"
    ids = rec.record("fraud", "3", np.array([0.1, 0.35, 0.9]))
    assert len(set(ids)) == 3
    scores, labels, _ = rec.log.window("fraud", "3", "champion")
    assert len(scores) == 0  # nothing labelled yet
    res = ingest(rec.log, {"outcomes": [{"prediction_id": ids[0], "outcome": 0}, {"prediction_id": ids[1], "outcome": True}]})
    assert sorted(res.joined) == sorted(ids[:2])
    scores, labels, outcomes = rec.log.window("fraud", "3", "champion")
    assert scores.tolist() == [0.1, 0.35] and labels == ["0", "1"] and outcomes == ["0", "1"]
    with pytest.raises(FeedbackError, match="0/1"):
        ingest(rec.log, [{"prediction_id": ids[2], "outcome": "maybe"}])


def test_multiclass_outcomes_must_be_a_class_of_the_model(tmp_path: Path) -> None:
    rec = recorder_for("multiclass", TextKit(), tmp_path)
    assert rec is not None
    rec.register("intents", "1")
    ids = rec.record("intents", "1", np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]]))
    with pytest.raises(FeedbackError, match="not a class"):
        ingest(rec.log, [{"prediction_id": ids[0], "outcome": "shipping"}])
    assert ingest(rec.log, [{"prediction_id": ids[0], "outcome": "refund"}]).joined == [ids[0]]
    _, labels, outcomes = rec.log.window("intents", "1", "champion")
    assert labels == ["refund"] and outcomes == ["refund"]


def test_ranking_models_are_not_logged(tmp_path: Path) -> None:
    assert recorder_for("ranking", object(), tmp_path) is None


def test_shadow_rows_share_the_outcome_of_the_answer_the_client_got(tmp_path: Path) -> None:
    rec = recorder_for("binary", BinaryKit(), tmp_path)
    assert rec is not None
    ids = rec.record("fraud", "3", np.array([0.2, 0.8]), variant="champion", experiment="e1", entities=[10, 11])
    shadow = rec.record("fraud", "4", np.array([0.6, 0.9]), variant="challenger", experiment="e1", entities=[10, 11], parents=ids)
    assert shadow == [f"{i}.s" for i in ids]
    assert ingest(rec.log, [{"prediction_id": ids[1], "outcome": 1}]).joined == [ids[1]]
    rows = rec.log.labelled_since("e1")
    assert {(r["variant"], r["entity"], r["outcome"]) for r in rows} == {("champion", "11", "1"), ("challenger", "11", "1")}
    # a shadow id is not something a client ever saw: unknown to feedback
    res = ingest(rec.log, [{"prediction_id": shadow[0], "outcome": 1}])
    assert res.unknown == [shadow[0]] and res.joined == []


def test_quality_is_exported_once_the_window_holds_enough_outcomes(tmp_path: Path) -> None:
    rec = recorder_for("binary", BinaryKit(), tmp_path / "a")
    assert rec is not None
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "metrics.json").write_text(json.dumps({"task": "binary", "roc_auc": 0.91, "ece": 0.02, "rows": 100}))
    ref = reference_of(tmp_path / "bundle")
    assert ref == {"roc_auc": 0.91, "ece": 0.02}
    rec.register("fraud", "3", ref)
    collector = quality_collector(rec.log, "binary", 0.3)
    collector.min_samples = 50
    rng = np.random.default_rng(0)
    y = rng.random(80) < 0.3
    p = np.where(y, rng.uniform(0.4, 1.0, 80), rng.uniform(0.0, 0.6, 80))
    ids = rec.record("fraud", "3", p)
    export = QualityExport()
    export.sources["a"] = collector
    before = samples(export)
    assert before[("kindml_quality_samples", (("model", "fraud"), ("variant", "champion"), ("version", "3")))] == 0
    assert not any(k[0] == "kindml_quality" for k in before)
    assert before[("kindml_quality_reference", (("metric", "roc_auc"), ("model", "fraud"), ("version", "3")))] == 0.91
    ingest(rec.log, [{"prediction_id": i, "outcome": int(v)} for i, v in zip(ids, y, strict=True)])
    after = samples(export)
    auc = after[("kindml_quality", (("metric", "roc_auc"), ("model", "fraud"), ("variant", "champion"), ("version", "3")))]
    assert 0.8 < auc <= 1.0
    assert after[("kindml_quality_samples", (("model", "fraud"), ("variant", "champion"), ("version", "3")))] == 80
