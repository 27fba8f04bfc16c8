"""A multilayer perceptron for tabular inputs whose first step standardises them, and its training recipe.

Keeping the standardisation inside the module means the exported ONNX graph
carries it too: serving feeds the preprocessor's raw engineered vector.
``forward`` returns logits (one for a binary task, one per class otherwise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kindml.model.recipe import TorchRecipe


@dataclass(frozen=True)
class NetConfig:
    n_inputs: int
    width: int = 64
    depth: int = 2
    dropout: float = 0.1
    n_outputs: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_mlp(cfg: NetConfig, mean: list[float] | None = None, std: list[float] | None = None) -> Any:
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * cfg.n_inputs, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * cfg.n_inputs, dtype=torch.float32))
            layers: list[nn.Module] = []
            width_in, width = cfg.n_inputs, cfg.width
            for _ in range(cfg.depth):
                layers += [nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(cfg.dropout)]
                width_in, width = width, max(8, width // 2)
            layers.append(nn.Linear(width_in, cfg.n_outputs))
            self.body = nn.Sequential(*layers)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            """Logits, shape (batch, n_outputs)."""
            return self.body((features - self.mean) / self.std)

    return MLP()


class MLPRecipe(TorchRecipe):
    """Ray Tune over lr / width / dropout / weight decay (ASHA), then the DDP fit; input ``features`` float32[N, n_inputs].

    ``meta`` needs ``n_inputs``, ``mean``, ``std`` and, for multiclass, ``n_classes``.
    """

    def __init__(self, task: str = "binary") -> None:
        if task not in ("binary", "multiclass"):
            raise ValueError(task)
        self.task = task
        self.probability = "sigmoid" if task == "binary" else "softmax"
        self.val_metric = "auc" if task == "binary" else "macro_f1"

    def search_space(self, cfg: Any) -> dict[str, Any]:
        from ray import tune

        return {
            "lr": tune.loguniform(5e-4, 1e-2),
            "width": tune.choice([32, 64, 128]),
            "dropout": tune.choice([0.0, 0.1, 0.2]),
            "weight_decay": tune.choice([0.0, 1e-5, 1e-4]),
            "batch_size": cfg.batch_size,
            "epochs": cfg.tune_epochs,
            "seed": cfg.seed,
        }

    @property
    def tuned(self) -> tuple[str, ...]:
        return ("lr", "width", "dropout", "weight_decay")

    def build(self, params: dict[str, Any], meta: dict[str, Any]) -> Any:
        n_out = 1 if self.task == "binary" else int(meta["n_classes"])
        cfg = NetConfig(int(meta["n_inputs"]), width=int(params["width"]), dropout=float(params["dropout"]), n_outputs=n_out)
        return build_mlp(cfg, meta.get("mean"), meta.get("std"))

    def score(self, y: np.ndarray, p: np.ndarray) -> float:
        if self.task == "binary":
            from sklearn.metrics import roc_auc_score

            return float(roc_auc_score(y, p)) if len(np.unique(y)) > 1 else float("nan")
        from sklearn.metrics import f1_score

        return float(f1_score(y, np.asarray(p).argmax(axis=1), average="macro", zero_division=0))


def probability_module(model: Any, kind: str) -> Any:
    """An MLP (logits of ``features``) followed by sigmoid / softmax: what is exported and parity-checked."""
    import torch
    from torch import nn

    class WithProbability(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            logits = self.model(features)
            return torch.sigmoid(logits) if kind == "sigmoid" else torch.softmax(logits, dim=1)

    wrapped = WithProbability()
    wrapped.eval()
    return wrapped
