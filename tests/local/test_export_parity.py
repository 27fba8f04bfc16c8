"""ONNX export of the fraud MLP: parity with PyTorch, dynamic batch, and a failing check when tolerance is impossible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kindml.model.export import check_parity, export_onnx, onnx_session, run_onnx
from kindml.model.kit import OnnxSpec
from kindml.model.mlp import NetConfig, build_mlp, probability_module

pytestmark = pytest.mark.local


def test_onnx_parity(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    n = 12
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, n)).astype(np.float32) * 3 + 1
    net = build_mlp(NetConfig(n_inputs=n, width=32, depth=2, dropout=0.1), mean=list(x.mean(0)), std=list(x.std(0))).eval()
    spec = OnnxSpec(probability_module(net, "sigmoid"), {"features": x[:2]}, ["features"], ["probability"])
    path = tmp_path / "m.onnx"
    export_onnx(spec, path, 18)
    report = check_parity(spec, path, {"features": x}, 1e-4, 18)
    assert report.passed and report.max_abs_error < 1e-5 and report.rows == 300
    sess = onnx_session(path)
    for batch in (1, 7, 64):  # dynamic batch dimension
        assert run_onnx(sess, {"features": x[:batch]})[0].reshape(-1).shape == (batch,)
    assert not check_parity(spec, path, {"features": x}, 1e-12, 18).passed or report.max_abs_error == 0.0


def test_multiclass_parity_with_softmax(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(1)
    x = np.random.default_rng(1).normal(size=(200, 6)).astype(np.float32)
    net = build_mlp(NetConfig(n_inputs=6, width=16, n_outputs=4)).eval()
    spec = OnnxSpec(probability_module(net, "softmax"), {"features": x[:2]}, ["features"], ["probabilities"])
    export_onnx(spec, tmp_path / "mc.onnx", 18)
    assert check_parity(spec, tmp_path / "mc.onnx", {"features": x}, 1e-5, 18).passed
    probs = run_onnx(onnx_session(tmp_path / "mc.onnx"), {"features": x})[0]
    assert probs.shape == (200, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
