"""The computer-vision case: a small CNN on scikit-learn's bundled 8x8 ``digits``.

The images ship inside scikit-learn (``load_digits`` never downloads). A
stratified, seeded 80/20 split; the CNN trains in a few seconds with plain
PyTorch. Static quantisation calibrates on real training images.

Architecture (fixed before any measurement, ~190k parameters, so weights — not
graph bookkeeping — dominate the file and INT8 sizes are meaningful):
conv 1→32 → ReLU → conv 32→64 → ReLU → max-pool 2 → conv 64→64 → ReLU →
flatten 1024 → linear 128 → ReLU → linear 10 (logits).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
EPOCHS = 12
CALIBRATION_IMAGES = 256
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def make_cnn() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    ds = load_digits()
    x = (ds.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = ds.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return np.ascontiguousarray(x_tr), np.ascontiguousarray(x_te), y_tr, y_te


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, seed: int = SEED) -> Any:
    import torch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = make_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return model


def export(model: Any, path: Path, opset: int = 18) -> None:
    import torch

    from kindml.bench.onnx_export import export_module

    example = torch.zeros(2, 1, 8, 8, dtype=torch.float32)
    export_module(model, (example,), path, [INPUT_NAME], [OUTPUT_NAME], {"input": {0: torch.export.Dim("batch", min=1, max=1_000_000)}}, opset)


def build(work_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    x_tr, x_te, y_tr, y_te = load_split()
    net = train_cnn(x_tr, y_tr)
    onnx_path = work_dir / "digits_cnn" / "model.onnx"
    export(net, onnx_path)
    rng = np.random.default_rng(SEED)
    calib = x_tr[rng.choice(len(x_tr), size=min(CALIBRATION_IMAGES, len(x_tr)), replace=False)]
    meta = {
        "source": "trained on the spot on sklearn load_digits (8x8), stratified 80/20 split, seed 0",
        "params": int(sum(p.numel() for p in net.parameters())),
        "epochs": EPOCHS,
        "train_images": int(len(x_tr)),
        "holdout_images": int(len(x_te)),
        "calibration_images": int(len(calib)),
        "prepare_seconds": round(time.perf_counter() - t0, 2),
    }
    return {"net": net, "onnx_path": onnx_path, "x_test": x_te, "y_test": y_te, "x_train": x_tr, "calibration": calib, "meta": meta}
