"""Outcome records in: one validation for POST /v1/feedback and `kindml feedback ingest`; file formats; the CLI's exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kindml.monitoring import feedback
from kindml.monitoring.feedback import FeedbackError
from kindml.monitoring.quality import Prediction, PredictionLog

pytestmark = pytest.mark.unit


def _log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions.db")
    log.register_model("fraud", "binary")
    log.register_model("intent", "multiclass", ["billing", "refund"])
    log.log([Prediction(f"f{i}", "fraud", "1", 0.1 * i, str(int(i > 4))) for i in range(10)])
    log.log([Prediction(f"t{i}", "intent", "2", 0.9, "billing") for i in range(4)])
    return log


def test_outcomes_are_checked_against_the_task_of_the_model_that_predicted(tmp_path: Path) -> None:
    log = _log(tmp_path)
    r = feedback.ingest(log, {"outcomes": [{"prediction_id": "f0", "outcome": True}, {"prediction_id": "f1", "outcome": "0"},
                                           {"prediction_id": "t0", "outcome": "refund"}, {"prediction_id": "zz", "outcome": 1}]})
    assert r.joined == ["f0", "f1", "t0"] and r.unknown == ["zz"] and r.duplicate == []
    _, _, outcomes = log.window("fraud", "1", "champion")
    assert outcomes == ["1", "0"]
    again = feedback.ingest(log, [{"prediction_id": "f0", "outcome": 0}])
    assert again.duplicate == ["f0"] and again.joined == []


@pytest.mark.parametrize(
    ("records", "needle"),
    [
        ([], "non-empty list"),
        ({"rows": []}, "non-empty list"),
        ([["f0", 1]], "must be an object"),
        ([{"prediction_id": "f0"}], "outcome is missing"),
        ([{"prediction_id": 7, "outcome": 1}], "prediction_id must be the id string"),
        ([{"prediction_id": "f0", "outcome": 1, "extra": 1}], "unknown fields"),
        ([{"prediction_id": "f0", "outcome": 1}, {"prediction_id": "f0", "outcome": 0}], "appears twice"),
        ([{"prediction_id": "f0", "outcome": 2}], "must be 0/1"),
        ([{"prediction_id": "t0", "outcome": "upgrade"}], "is not a class of this model"),
        ([{"prediction_id": "t0", "outcome": 3.5}], "must be a class name"),
    ],
)
def test_a_malformed_batch_is_refused_whole_and_named(tmp_path: Path, records: object, needle: str) -> None:
    log = _log(tmp_path)
    before = log.counts()
    good = [{"prediction_id": "f9", "outcome": 1}]
    batch = (good + records) if isinstance(records, list) and records else records
    with pytest.raises(FeedbackError) as e:
        feedback.ingest(log, batch)
    assert needle in e.value.message and e.value.hint
    assert log.counts() == before  # nothing applied, not even the good record


def test_regression_outcomes_must_be_finite_numbers(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    log.register_model("demand", "regression")
    log.log([Prediction("d0", "demand", "1", 12.0, None), Prediction("d1", "demand", "1", 3.0, None)])
    with pytest.raises(FeedbackError, match="finite number"):
        feedback.ingest(log, [{"prediction_id": "d0", "outcome": "nan"}])
    assert feedback.ingest(log, [{"prediction_id": "d0", "outcome": "11.5"}]).joined == ["d0"]


def test_files_in_every_format_read_the_same(tmp_path: Path) -> None:
    rows = [{"prediction_id": "f1", "outcome": 1}, {"prediction_id": "f2", "outcome": 0}]
    (tmp_path / "a.json").write_text(json.dumps({"outcomes": rows}))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    for name in ("a.json", "b.jsonl", "c.csv", "d.parquet"):
        got = feedback.parse_records(feedback.read_file(tmp_path / name))
        assert [(p, int(o)) for p, o in got] == [("f1", 1), ("f2", 0)], name
    pd.DataFrame({"id": ["f1"], "label": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(FeedbackError, match="lacks the column"):
        feedback.read_file(tmp_path / "bad.csv")
    (tmp_path / "x.txt").write_text("f1,1")
    with pytest.raises(FeedbackError, match="unsupported"):
        feedback.read_file(tmp_path / "x.txt")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(FeedbackError, match="cannot read"):
        feedback.read_file(tmp_path / "broken.json")


def _kindml(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_joins_reports_and_exits_nonzero_when_nothing_joined(tmp_path: Path, cli_env: dict[str, str]) -> None:
    serving = Path(cli_env["KINDML_HOME"]) / "serving"
    serving.mkdir(parents=True)
    log = PredictionLog(feedback.log_path(serving))
    log.register_model("fraud", "binary")
    log.log([Prediction(f"f{i}", "fraud", "1", 0.5, "0") for i in range(3)])
    pd.DataFrame({"prediction_id": ["f0", "f1", "nobody"], "outcome": [1, 0, 1]}).to_csv(tmp_path / "o.csv", index=False)
    r = _kindml(["feedback", "ingest", str(tmp_path / "o.csv"), "-o", "json"], cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"joined": 2, "unknown": ["nobody"], "duplicate": []}
    r = _kindml(["feedback", "ingest", str(tmp_path / "o.csv")], cli_env)  # the same file again: nothing new
    assert r.returncode != 0 and "0 of 3 outcomes joined" in r.stderr and "hint:" in r.stderr
    pd.DataFrame({"prediction_id": ["f2"], "outcome": ["maybe"]}).to_csv(tmp_path / "bad.csv", index=False)
    r = _kindml(["feedback", "ingest", str(tmp_path / "bad.csv")], cli_env)
    assert r.returncode != 0 and "must be 0/1" in r.stderr and "Traceback" not in r.stderr + r.stdout
    r = _kindml(["feedback", "ingest", str(tmp_path / "nope.csv")], cli_env)
    assert r.returncode != 0 and "no outcome file" in r.stderr
    assert log.counts() == {"predictions": 3, "labelled": 2}
