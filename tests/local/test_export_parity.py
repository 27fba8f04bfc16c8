"""ONNX export of the fraud MLP: parity with PyTorch, dynamic batch, and a failing check when tolerance is impossible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kindml.model.export import check_parity, export_onnx, onnx_predict, onnx_session
from kindml.model.net import FraudMLP, NetConfig

pytestmark = pytest.mark.local


def test_onnx_parity(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    n = 12
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, n)).astype(np.float32) * 3 + 1
    net = FraudMLP(NetConfig(n_inputs=n, width=32, depth=2, dropout=0.1), mean=list(x.mean(0)), std=list(x.std(0))).eval()
    path = tmp_path / "m.onnx"
    export_onnx(net, n, path, 18)
    report = check_parity(net, path, x, 1e-4, 18)
    assert report.passed and report.max_abs_error < 1e-5 and report.rows == 300
    sess = onnx_session(path)
    for batch in (1, 7, 64):  # dynamic batch dimension
        assert onnx_predict(sess, x[:batch]).shape == (batch,)
    assert not check_parity(net, path, x, 1e-12, 18).passed or report.max_abs_error == 0.0
