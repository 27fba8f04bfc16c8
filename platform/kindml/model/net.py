"""The fraud classifier: an MLP whose first layer standardises its inputs.

Keeping the standardisation inside the module means the exported ONNX graph
carries it too: serving feeds the assembler's raw engineered vector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    n_inputs: int
    width: int = 64
    depth: int = 2
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FraudMLP(nn.Module):
    def __init__(self, cfg: NetConfig, mean: list[float] | None = None, std: list[float] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * cfg.n_inputs, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * cfg.n_inputs, dtype=torch.float32))
        layers: list[nn.Module] = []
        width_in = cfg.n_inputs
        width = cfg.width
        for _ in range(cfg.depth):
            layers += [nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width_in, width = width, max(8, width // 2)
        layers.append(nn.Linear(width_in, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fraud probability, shape (batch, 1)."""
        return torch.sigmoid(self.logits(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)


def save_model(model: FraudMLP, path: Path) -> None:
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict()}, path)


def load_model(path: Path) -> FraudMLP:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = FraudMLP(NetConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model
