"""``kindml init NAME``: a new workload folder that works as written — the user's starting point.

Writes ``NAME/pipeline.py`` (a plain KFP pipeline of kindml's components),
``NAME/NAME_workload.py`` (a :class:`~kindml.tabular.TabularWorkload`: a seeded
sensor-readings dataset, "will this machine fail?"), ``NAME/tests/`` (tests that
pass untouched: seeded data, the validation suite, the whole pipeline end to
end registering a model) and a README. Nothing is overwritten.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kindml.errors import UsageError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

WORKLOAD = '''"""{name}: a workload of your own on kindml — sensor readings of machines → will the machine fail within a day?

Generated, seeded data: every machine has a hidden wear level that drifts up
over time; its readings (temperature, vibration, load) and its failures follow
from it. A machine's recent average readings (a Feast feature view that
kindml.tabular builds from the declarations below) tell how worn it is, so the
model needs the point-in-time features, not just the current reading.

Change the declarations and ``readings()`` to model your own problem; the
platform derives the schema, the validation suite, the Feast repo, the model and
the serving contract from them (see kindml.tabular.TabularWorkload).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from kindml.tabular import TabularWorkload
from kindml.workload.contract import Ingested

MACHINES = 120
SITES = ("north", "south", "east")


class {cls}(TabularWorkload):
    name = "{name}"
    title = "{name}: machine failure from sensor readings (a kindml init workload)"
    task = "binary"
    model_name = "{model}"
    event_table = "readings"
    label = "failure"
    row_id = "reading_id"
    entity = "machine_id"
    gate_metric = "roc_auc"
    positive_label = "failure"
    numeric = {{"temperature": (-40.0, 250.0), "vibration": (0.0, 60.0), "load": (0.0, 1.0)}}
    categorical = {{"site": SITES}}
    aggregate = ("temperature", "vibration")
    # small defaults: the whole pipeline runs in a few minutes on a laptop (override with --set or kindml.yaml)
    defaults = {{"data.rows": 4_000, "data.days": 30, "train.epochs": 4, "train.tune_trials": 2, "train.tune_epochs": 2,
                "evaluate.min_score": 0.70}}

    def window(self) -> tuple[datetime, datetime]:
        d = self.cfg.data
        last = d.end_date or (datetime.now(UTC).date() - timedelta(days=1))
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        return end - timedelta(days=d.days), end

    def generate(self) -> Ingested:
        start, end = self.window()
        df = self.readings(self.cfg.data.rows, start, end, drift=0.0, stream=0)
        return Ingested({{"readings": df}}, {{"window_start": start.isoformat(), "window_end": end.isoformat(), "days": self.cfg.data.days}})

    def live(self, n: int, drift: float, stream: int) -> pd.DataFrame:
        _, end = self.window()
        return self.readings(n, end, end + timedelta(days=1), drift=drift, stream=stream)

    def readings(self, n: int, start: datetime, end: datetime, drift: float, stream: int) -> pd.DataFrame:
        """``n`` readings in [start, end); ``drift`` > 0 runs every machine hotter (live traffic that moved)."""
        world = np.random.default_rng([self.cfg.data.seed, 1])
        wear0 = world.beta(2.0, 5.0, MACHINES)
        site = world.integers(0, len(SITES), MACHINES)
        rng = np.random.default_rng([self.cfg.data.seed, 2, stream])
        m = rng.integers(0, MACHINES, n)
        t0, t1 = pd.Timestamp(start).value, pd.Timestamp(end).value
        ts = np.sort(rng.integers(t0, t1, n))
        days_in = (ts - t0) / 86_400e9
        wear = np.clip(wear0[m] + 0.01 * days_in * (m % 3 == 0), 0.0, 1.0)
        load = rng.uniform(0.1, 1.0, n)
        temperature = 60.0 + 40.0 * wear + 15.0 * load + rng.normal(0.0, 6.0, n) + 12.0 * drift
        vibration = np.clip(2.0 + 10.0 * wear ** 2 + rng.normal(0.0, 1.5, n), 0.0, 59.0)
        logit = -5.0 + 5.5 * wear + 1.2 * load + 0.03 * (temperature - 90.0)
        failure = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        return pd.DataFrame({{
            "reading_id": [f"r{{stream}}-{{i:07d}}" for i in range(n)],
            "machine_id": (1_000 + m).astype(np.int64),
            "temperature": np.round(np.clip(temperature, -40.0, 250.0), 2),
            "vibration": np.round(vibration, 3),
            "load": np.round(load, 3),
            "site": np.array(SITES, dtype=object)[site[m]],
            "event_timestamp": pd.to_datetime(ts, utc=True).floor("s"),
            "failure": failure,
        }})


WORKLOAD = {cls}
'''

PIPELINE = '''"""{name}: your pipeline — kindml's reusable components given your workload, in a plain KFP pipeline.

    kindml run {folder}/pipeline.py              # on this machine (kfp.local, Feast, Ray, MLflow, KServe, Prometheus)
    kindml run {folder}/pipeline.py --no-serve   # stop after register
    kindml pipeline compile --name {folder}/pipeline.py --out build/   # KFP IR for a cluster
"""

# no `from __future__ import annotations`: KFP reads the real annotations.
from kfp import dsl

from kindml.components import deploy, evaluate, export, features, ingest, monitor, register, train, validate

WORKLOAD = "{name}_workload"  # the module beside this file (kindml run puts this folder on the import path)


@dsl.pipeline(name="{name}")
def pipeline(config_json: str = "{{}}", run_id: str = "", serve: bool = True) -> str:
    w = WORKLOAD
    raw = ingest(workload=w, config_json=config_json)
    checked = validate(workload=w, config_json=config_json, raw=raw.outputs["raw"])
    feats = features(workload=w, config_json=config_json, clean=checked.outputs["clean"])
    trained = train(workload=w, config_json=config_json, training_set=feats.outputs["training_set"])
    scored = evaluate(workload=w, config_json=config_json, model=trained.outputs["model"], holdout=trained.outputs["holdout"])
    bundle = export(workload=w, config_json=config_json, model=trained.outputs["model"], holdout=trained.outputs["holdout"])
    reg = register(workload=w, config_json=config_json, pipeline_run_id=run_id, evaluation=scored.outputs["evaluation"],
                   onnx_model=bundle.outputs["onnx_model"])
    with dsl.If(serve == True, name="serve"):  # noqa: E712 - a KFP condition, not Python
        deployed = deploy(workload=w, config_json=config_json, registered=reg.outputs["registered"]).set_caching_options(False)
        monitor(workload=w, config_json=config_json, deployed=deployed.outputs["deployed"]).set_caching_options(False)
    return reg.outputs["Output"]
'''

TEST = '''"""Tests of the {name} workload. They pass as written: keep them green while you make the workload yours.

    pytest {folder}/tests
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
REF = "{name}_workload"


def workload(**overrides):  # type: ignore[no-untyped-def]
    from kindml.workload.loader import instantiate, workload_config

    cfg = workload_config(REF, overrides={{"data.end_date": date(2026, 1, 31), **overrides}})
    return instantiate(REF, cfg)


def test_data_is_seeded_and_passes_its_validation_suite() -> None:
    from kindml.validation import validate_tables

    wl = workload()
    a, b = wl.generate().tables["readings"], wl.generate().tables["readings"]
    assert a.equals(b) and len(a) == wl.cfg.data.rows
    assert 0.02 < a["failure"].mean() < 0.6  # both classes, a learnable base rate
    now = datetime(2026, 2, 1, tzinfo=UTC)
    report, _, _ = validate_tables({{"readings": a}}, wl.suites({{"readings": a}}, now), wl.cfg.validation)
    assert report.success, report.summary_line()
    broken = a.copy()
    broken.loc[0, "temperature"] = 999.0
    report, _, _ = validate_tables({{"readings": broken}}, wl.suites({{"readings": broken}}, now), wl.cfg.validation)
    assert not report.success  # the suite catches an out-of-range reading


def test_drifted_live_traffic_is_hotter() -> None:
    wl = workload()
    assert wl.live(2_000, 1.0, 7)["temperature"].mean() > wl.live(2_000, 0.0, 7)["temperature"].mean() + 5


def test_pipeline_runs_end_to_end_and_registers_a_model(tmp_path: Path) -> None:
    env = {{k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}} | {{"KINDML_HOME": str(tmp_path / "ws"), "KINDML_NO_PROGRESS": "1"}}
    res = subprocess.run([sys.executable, "-m", "kindml", "run", str(HERE / "pipeline.py"), "--no-serve", "--run-id", "t", "-o", "json"],
                         capture_output=True, text=True, env=env, timeout=1_200)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert summary["status"] == "succeeded"
    assert summary["model"]["name"] == "{model}" and summary["model"]["version"] == "1"
    assert summary["metrics"]["roc_auc"] > 0.6
'''

README = '''# {name}

A kindml workload of your own, made by `kindml init {name}`.

| file | what |
|---|---|
| `{name}_workload.py` | the workload: declarations + a seeded data generator (change them to model your problem) |
| `pipeline.py` | the pipeline: kindml's reusable components, in a plain KFP `@dsl.pipeline` |
| `tests/` | tests that pass as written (`pytest tests`) |

    kindml run ./pipeline.py           # run it (add --no-serve to stop after register)
    kindml runs show                   # the summary; `kindml report` for an HTML page
    kindml models show {model}@champion

Bring your own data: `kindml data schema --pipeline {name}_workload.py` lists the columns;
`kindml run ./pipeline.py --data DIR` reads `DIR/readings.parquet` (or `.csv`).
'''


def scaffold(name: str, path: Path | None = None) -> dict[str, Any]:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a workload name", "Use lowercase letters, digits and '_', starting with a letter (e.g. churn or demo).")
    folder = Path(path) if path is not None else Path.cwd() / name
    files = {
        folder / f"{name}_workload.py": WORKLOAD,
        folder / "pipeline.py": PIPELINE,
        folder / "tests" / f"test_{name}.py": TEST,
        folder / "README.md": README,
    }
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise UsageError(f"{folder} already has {', '.join(existing)}", "Pick another name or --path; kindml init never overwrites files.")
    cls = "".join(part.capitalize() for part in name.split("_")) + "Workload"
    values = {"name": name, "cls": cls, "model": name.replace("_", "-") + "-model", "folder": folder.name}
    for p, template in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(template.format(**values), encoding="utf-8")
    return {"folder": str(folder), "workload": f"{name}_workload", "files": [str(p.relative_to(folder)) for p in files],
            "next": [f"kindml run {folder}/pipeline.py", f"pytest {folder}/tests"]}
