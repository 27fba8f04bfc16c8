"""How a torch model is built, fed, trained and searched: the part of a model kit Ray runs.

Ray Tune and Ray Train (:mod:`kindml.model.train`) call a recipe in their
worker processes, so a recipe must be picklable (a module-level class) and
import torch lazily. Inputs are dicts of numpy arrays (one entry per model
input, plus ``"y"``), so one recipe interface fits a tabular MLP, a text
classifier on token ids or embeddings, or anything else.

The model's ``forward`` returns *logits*: DDP synchronises gradients through
the wrapped module's forward, and the export wraps the model with the
probability function (:meth:`TorchRecipe.probability`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np


class TorchRecipe(ABC):
    val_metric: str = "score"
    """Name of the validation metric (reported as ``val_<name>``; higher is better)."""
    probability: str = "sigmoid"
    """``sigmoid`` (one logit, binary) or ``softmax`` (one logit per class)."""
    predict_batch: int = 4096

    @abstractmethod
    def search_space(self, cfg: Any) -> dict[str, Any]:
        """Ray Tune's ``param_space`` (distributions and fixed values) for ``cfg`` (a TrainConfig)."""

    @property
    def tuned(self) -> tuple[str, ...]:
        """The searched parameter names (recorded as best_params)."""
        return ()

    @abstractmethod
    def build(self, params: dict[str, Any], meta: dict[str, Any]) -> Any:
        """A fresh ``torch.nn.Module`` for these parameters and data facts (``meta``)."""

    def inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The model's keyword inputs from a batch (everything but ``y``)."""
        return {k: v for k, v in batch.items() if k != "y"}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch

        logits = model(**self.inputs(batch))
        if self.probability == "sigmoid":
            return torch.nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), batch["y"].float())
        return torch.nn.functional.cross_entropy(logits, batch["y"].long())

    def trainable(self, model: Any) -> Any:
        """The parameters the optimiser updates (default: all; a frozen encoder excludes its own)."""
        return [p for p in model.parameters() if p.requires_grad]

    def optimizer(self, model: Any, params: dict[str, Any]) -> Any:
        import torch

        return torch.optim.Adam(self.trainable(model), lr=float(params["lr"]), weight_decay=float(params.get("weight_decay", 0.0)))

    def predict(self, model: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities: ``(n,)`` for sigmoid, ``(n, classes)`` for softmax."""
        import torch

        net = model.module if hasattr(model, "module") else model
        net.eval()
        n = len(next(iter(arrays.values())))
        out = []
        with torch.no_grad():
            for i in range(0, n, self.predict_batch):
                feeds = {k: torch.from_numpy(np.ascontiguousarray(v[i:i + self.predict_batch])) for k, v in arrays.items() if k != "y"}
                logits = net(**feeds)
                prob = torch.sigmoid(logits.reshape(-1)) if self.probability == "sigmoid" else torch.softmax(logits, dim=1)
                out.append(prob.numpy())
        return np.concatenate(out) if out else np.zeros(0)

    @abstractmethod
    def score(self, y: np.ndarray, p: np.ndarray) -> float:
        """The validation metric (higher is better) of probabilities ``p`` for labels ``y``."""

    def save(self, model: Any, params: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
        import torch

        net = model.module if hasattr(model, "module") else model
        torch.save({"params": params, "meta": meta, "state_dict": net.state_dict()}, path)

    def load(self, path: Path) -> Any:
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=False)
        net = self.build(blob["params"], blob["meta"])
        net.load_state_dict(blob["state_dict"])
        net.eval()
        return net
