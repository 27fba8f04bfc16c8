"""A user's own pipeline, written by this test into a temporary folder, composing kindml's reusable components on a dataset
the test makes (not fraud, not text: a multiclass grading of produce batches), runs with `kindml run FILE` and registers a model;
and `kindml init` scaffolds a workload whose own tests pass untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.local

WORKLOAD = '''
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from kindml.tabular import TabularWorkload
from kindml.workload.contract import Ingested


class GradingWorkload(TabularWorkload):
    name = "grading"
    task = "multiclass"
    model_name = "produce-grade"
    event_table = "batches"
    label = "grade"
    row_id = "batch_id"
    entity = "farm_id"
    gate_metric = "macro_f1"
    classes = ("A", "B", "C")
    numeric = {"sugar": (0.0, 30.0), "firmness": (0.0, 15.0), "defects": (0.0, 100.0)}
    categorical = {"crop": ("apple", "pear", "plum")}
    aggregate = ("defects",)
    defaults = {"data.rows": 3_000, "data.days": 21, "train.epochs": 4, "train.tune_trials": 2, "train.tune_epochs": 2, "evaluate.min_score": 0.5}

    def _batches(self, n, start, end, stream):
        rng = np.random.default_rng([self.cfg.data.seed, stream])
        farm_quality = np.random.default_rng(self.cfg.data.seed).normal(0.0, 1.0, 40)
        farm = rng.integers(0, 40, n)
        q = farm_quality[farm] + rng.normal(0.0, 0.7, n)
        sugar = np.clip(12 + 2.5 * q + rng.normal(0, 1.5, n), 0, 30)
        firmness = np.clip(7 + 1.5 * q + rng.normal(0, 1.0, n), 0, 15)
        defects = np.clip(20 - 6 * q + rng.normal(0, 4, n), 0, 100)
        grade = np.where(q > 0.6, "A", np.where(q > -0.6, "B", "C"))
        ts = np.sort(rng.integers(pd.Timestamp(start).value, pd.Timestamp(end).value, n))
        return pd.DataFrame({"batch_id": [f"b{stream}-{i}" for i in range(n)], "farm_id": (100 + farm).astype(np.int64),
                             "sugar": sugar.round(2), "firmness": firmness.round(2), "defects": defects.round(1),
                             "crop": np.array(["apple", "pear", "plum"], dtype=object)[rng.integers(0, 3, n)],
                             "event_timestamp": pd.to_datetime(ts, utc=True).floor("s"), "grade": grade.astype(object)})

    def generate(self):
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=self.cfg.data.days)
        return Ingested({"batches": self._batches(self.cfg.data.rows, start, end, 0)},
                        {"window_start": start.isoformat(), "window_end": end.isoformat(), "days": self.cfg.data.days})

    def live(self, n, drift, stream):
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return self._batches(n, end, end + timedelta(days=1), stream)


WORKLOAD = GradingWorkload
'''

PIPELINE = '''
from kfp import dsl

from kindml.components import evaluate, export, features, ingest, register, train, validate

W = "grading_workload"


@dsl.pipeline(name="grading")
def grading(config_json: str = "{}", run_id: str = "") -> str:
    raw = ingest(workload=W, config_json=config_json)
    val = validate(workload=W, config_json=config_json, raw=raw.outputs["raw"])
    fs = features(workload=W, config_json=config_json, clean=val.outputs["clean"])
    tr = train(workload=W, config_json=config_json, training_set=fs.outputs["training_set"])
    ev = evaluate(workload=W, config_json=config_json, model=tr.outputs["model"], holdout=tr.outputs["holdout"])
    ex = export(workload=W, config_json=config_json, model=tr.outputs["model"], holdout=tr.outputs["holdout"])
    reg = register(workload=W, config_json=config_json, pipeline_run_id=run_id, evaluation=ev.outputs["evaluation"], onnx_model=ex.outputs["onnx_model"])
    return reg.outputs["Output"]
'''


def kindml(args: list[str], home: Path, cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")} | {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


def test_users_pipeline_file_runs_and_registers_a_model(tmp_path: Path) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "grading_workload.py").write_text(textwrap.dedent(WORKLOAD))
    (project / "my_pipeline.py").write_text(textwrap.dedent(PIPELINE))
    elsewhere = tmp_path / "elsewhere"  # run from another folder: the file's folder goes on the import path, not the cwd
    elsewhere.mkdir()
    home = tmp_path / "ws"
    res = kindml(["run", str(project / "my_pipeline.py"), "--run-id", "mine", "-o", "json"], home, elsewhere)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    assert s["status"] == "succeeded" and s["pipeline"] == "grading"
    assert list(s["stages"]) == ["ingest", "validate", "features", "train", "evaluate", "export", "register"]
    assert s["model"]["name"] == "produce-grade" and s["model"]["version"] == "1"
    assert s["metrics"]["macro_f1"] > 0.5 and s["metrics"]["classes"] == ["A", "B", "C"]
    tags = json.loads(kindml(["models", "show", "produce-grade@1", "-o", "json"], home, elsewhere).stdout)["tags"]
    assert tags["kindml.workload"] == "grading" and tags["kindml.pipeline_run_id"] == "mine" and tags["kindml.feast_feature_service"] == "grading_model_v1"
    # the same file compiles to KFP IR (what --target kind submits)
    out = kindml(["pipeline", "compile", "--name", str(project / "my_pipeline.py"), "--out", str(tmp_path / "ir"), "-o", "json"], home, elsewhere)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["pipeline"] == "grading" and (tmp_path / "ir" / "grading.yaml").is_file()
    # a wrong parameter is a clear error
    bad = kindml(["run", str(project / "my_pipeline.py"), "--param", "rows=10"], home, elsewhere)
    assert bad.returncode == 2 and "has no parameter 'rows'" in bad.stderr and "Traceback" not in bad.stderr


def test_kindml_init_scaffold_passes_its_own_tests(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    res = kindml(["init", "demo", "-o", "json"], home, tmp_path)
    assert res.returncode == 0, res.stderr
    created = json.loads(res.stdout)
    assert set(created["files"]) == {"demo_workload.py", "pipeline.py", "tests/test_demo.py", "README.md"}
    again = kindml(["init", "demo"], home, tmp_path)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "demo/tests"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=1500)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "3 passed" in tests.stdout
