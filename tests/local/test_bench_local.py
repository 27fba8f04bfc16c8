"""The benchmark harness end to end on tiny settings: real models, variants, correctness, result files.

One model per run, batches 1 and 8, the minimum of 5 repeats and very short
blocks: it checks the harness, never the speed (no timing assertions).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kindml.bench.catalog import CPU_EP

pytestmark = pytest.mark.local


def _tiny(models: tuple[str, ...], out: Path, work: Path, **kw: Any) -> dict[str, Any]:
    from kindml.bench.suite import BenchRequest, run
    from kindml.pipelines import bench_cases

    return run(BenchRequest(suite="quick", models=models, cases=tuple(bench_cases(models)), device="cpu", out_dir=out, work_dir=work, batches=(1, 8), repeats=5,
                            min_block_ms=1.0, source="train", **kw))


@pytest.fixture(scope="module")
def fraud_built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from kindml.bench.onnx_export import quiet_torch_export
    from kindml.pipelines.fraud import bench as fraud

    with quiet_torch_export():
        return fraud.build(tmp_path_factory.mktemp("fraud"), None, None)


def test_tiny_bench_digits_end_to_end(tmp_path: Path) -> None:
    from kindml.bench.schema import validate_result

    doc = _tiny(("digits_cnn",), tmp_path / "out", tmp_path / "work")
    validate_result(doc)
    files = doc["files"]
    for key in ("json", "markdown", "latency_plot", "tradeoff_plot"):
        assert Path(files[key]).is_file(), key
    on_disk = json.loads(Path(files["json"]).read_text())
    validate_result(on_disk)
    assert on_disk["machine"]["threads"] == 1 and on_disk["machine"]["cpu_flags"] is not None
    recs = doc["results"]
    variants = {r["variant"] for r in recs}
    assert variants == {"torch_eager", "ort_fp32_basic", "ort_fp32_extended", "ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq"}
    assert {r["batch"] for r in recs} == {1, 8}
    for r in recs:
        if r["precision"] == "fp32":
            assert r["quality"]["accuracy_delta"] == pytest.approx(0.0, abs=1e-6), r["variant"]
        else:
            assert math.isfinite(r["quality"]["accuracy_delta"]) and 0.0 <= r["quality"]["accuracy"] <= 1.0
        assert r["speedup_vs_fp32"] is not None and r["speedup_vs_fp32"] > 0
    fp32 = next(r for r in recs if r["variant"] == "ort_fp32_all")
    qdq = next(r for r in recs if r["variant"] == "ort_int8_static_qdq")
    assert fp32["speedup_vs_fp32"] == 1.0
    assert qdq["size_bytes"] < fp32["size_bytes"]
    skipped = {(s["variant"], s["provider"]): s for s in doc["skipped"]}
    assert skipped[("trt_int8", "TensorrtExecutionProvider")]["reason"]
    assert skipped[("ort_fp16", CPU_EP)]["kind"] == "not_applicable"
    profile = doc["models"]["digits_cnn"]["profile"]
    assert profile["ort_fp32_all"]["ops"] and profile["ort_int8_static_qdq"]["ops"]
    md = Path(files["markdown"]).read_text()
    assert "## digits_cnn" in md and "## Skipped" in md


def test_tiny_bench_fraud_with_fp16_and_qoperator(tmp_path: Path) -> None:
    doc = _tiny(("fraud_mlp",), None, tmp_path / "work", variants=("ort_fp32_all", "ort_int8_static_qop", "ort_fp16"))  # type: ignore[arg-type]
    by = {r["variant"]: r for r in doc["results"] if r["batch"] == 8}
    assert set(by) == {"ort_fp32_all", "ort_int8_static_qop", "ort_fp16"}
    assert by["ort_fp16"]["precision"] == "fp16" and by["ort_fp16"]["note"].startswith("not applicable on CPU")
    assert math.isfinite(by["ort_int8_static_qop"]["quality"]["roc_auc_delta"])
    assert doc["models"]["fraud_mlp"]["source"].startswith("trained on the spot")
    assert doc["models"]["fraud_mlp"]["quality_rule"] == {"primary_metric": "roc_auc", "acceptable": {"metric": "roc_auc_delta", "min": -0.005}}
    assert by["ort_fp32_all"]["quality_delta"] == by["ort_fp32_all"]["quality"]["roc_auc_delta"]
    assert "files" not in doc  # out_dir None: nothing written


def test_choose_variant_for_the_capstone(fraud_built: dict[str, Any], tmp_path: Path) -> None:
    from kindml.bench.quantize import QUANTIZATION_FILE, choose_variant, registry_tags

    d = fraud_built["data"]
    out = tmp_path / "q"
    res = choose_variant(fraud_built["onnx_path"], fraud_built["calibration"], d.x_test, d.y_test, 0.005, out, batches=(1, 8), min_block_ms=1.0)
    assert res["chosen"] in {"ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq"}
    assert (out / "model.onnx").is_file() and json.loads((out / QUANTIZATION_FILE).read_text())["chosen"] == res["chosen"]
    cands = {c["variant"]: c for c in res["candidates"]}
    assert set(cands) == {"ort_fp32_all", "ort_int8_dynamic", "ort_int8_static_qdq"}
    assert cands["ort_fp32_all"]["quality"]["roc_auc_delta"] == 0.0
    for c in cands.values():
        assert set(c["timing"]) == {"1", "8"} and c["speedup_geo_mean"] > 0
    chosen = cands[res["chosen"]]
    assert chosen["eligible"] and chosen["within_budget"]
    if res["chosen"] != "ort_fp32_all":
        assert chosen["speedup_geo_mean"] >= res["min_speedup"]
    tags = registry_tags(res)
    assert tags["kindml.quantization"] == res["chosen"]
    # a zero budget with a lossy INT8 model can only keep FP32 or a lossless variant
    strict = choose_variant(fraud_built["onnx_path"], fraud_built["calibration"], d.x_test, d.y_test, 0.0, tmp_path / "strict", batches=(1,), min_block_ms=1.0)
    picked = {c["variant"]: c for c in strict["candidates"]}[strict["chosen"]]
    assert picked["quality"]["roc_auc_delta"] >= 0.0


def test_fraud_model_rebuilt_from_its_onnx(fraud_built: dict[str, Any]) -> None:
    import torch

    from kindml.pipelines.fraud.bench import rebuild_from_onnx

    net = rebuild_from_onnx(fraud_built["onnx_path"])
    x = torch.from_numpy(fraud_built["data"].x_test[:256])
    with torch.inference_mode():
        assert np.allclose(net(x).numpy(), fraud_built["net"](x).numpy(), atol=1e-6)


def test_fraud_model_from_the_registry_champion(fraud_built: dict[str, Any], tmp_path: Path) -> None:
    from kindml import registry
    from kindml.bench.suite import BenchRequest
    from kindml.pipelines.fraud.bench import TRAIN_WORLD, RegistrySource
    from kindml.pipelines.fraud.bench import case as fraud_case

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    onnx_path = fraud_built["onnx_path"]
    with registry.mlflow_env(uri) as mlflow:
        exp = registry.ensure_experiment(mlflow, "bench-test", tmp_path / "artifacts")
        with mlflow.start_run(experiment_id=exp) as run:
            run_id = run.info.run_id
    ref = registry.register_onnx(uri, run_id, "fraud-detector", onnx_path, [onnx_path.parent / "preprocessing.json"], {"kindml.roc_auc": "0.9"}, "test", promote=True, alias="champion")
    req = BenchRequest(models=("fraud_mlp",), cases=(fraud_case,), source="registry", sources={"fraud_mlp": RegistrySource(uri, "fraud-detector", "champion", dict(TRAIN_WORLD))})
    case = fraud_case.build(req, tmp_path / "work")  # the plug-in path the suite takes
    assert case.meta["source"] == f"registry fraud-detector v{ref.version} (@champion)"
    case.compute_reference()
    q = case.quality(case.reference)
    assert q["roc_auc"] > 0.7 and q["roc_auc_delta"] == 0.0
