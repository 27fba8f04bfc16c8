"""Opt-in (``pytest -m benchmark``): the whole quick suite, every model, as `kindml bench --suite quick` runs it.

Takes a few minutes. Checks the result is complete and well-formed; the speed
figures themselves are reported, not asserted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark


def test_quick_suite(tmp_path: Path) -> None:
    from kindml.bench.catalog import SUITE_SETTINGS
    from kindml.bench.schema import validate_result
    from kindml.bench.suite import BenchRequest, run, selected_cases
    from kindml.pipelines import bench_cases

    req = BenchRequest(suite="quick", device="cpu", out_dir=tmp_path, cases=tuple(bench_cases()), source="train")
    doc = run(req)
    validate_result(json.loads(Path(doc["files"]["json"]).read_text()))
    settings = SUITE_SETTINGS["quick"]
    cases = selected_cases(req)
    assert {"fraud_mlp", "digits_cnn", "minilm_l6"} <= {c.name for c in cases}
    for case in cases:
        model = case.name
        recs = [r for r in doc["results"] if r["model"] == model]
        measured = {r["variant"] for r in recs}
        failed = [s for s in doc["skipped"] if s["model"] == model and s["kind"] == "failed"]
        assert measured | {s["variant"] for s in failed} == set(settings.variants_for(model, case.transformer)), model
        assert {r["batch"] for r in recs} == set(settings.batches_for(model))
        for r in recs:
            assert all(v is None or math.isfinite(v) or math.isnan(v) for v in r["quality"].values())
    assert {g["goal"] for g in doc["goals"]}
    fused = doc["models"]["minilm_l6"]["recipes"]["fused_fp32"]
    assert fused["fully_fused"] and fused["fused"]["Attention"] == 6
    print(f"quick suite: {doc['wall_seconds']} s, noisy {doc['noisy_records']}/{len(doc['results'])}")
