"""The model kit: everything that travels with one model version.

A kit is the workload's model family, in four parts that must agree with each other:

1. **preprocessing** fitted on the training split only (:meth:`ModelKit.fit`), saved next to
   the model (:meth:`~ModelKit.save`) and loaded by the predictor (:meth:`~ModelKit.load`):
   the same code turns raw columns into model inputs for training, evaluation and serving;
2. a **torch recipe** (:class:`~kindml.model.recipe.TorchRecipe`) that Ray Tune and Ray Train run
   on :meth:`~ModelKit.arrays`;
3. the **ONNX module** (:meth:`~ModelKit.onnx_module`): what is exported, with named inputs
   that :meth:`~ModelKit.feeds` produces from raw columns;
4. the **serving signature** (:meth:`~ModelKit.signature`): request parsing, Feast entity keys,
   answers, and the columns the drift monitor watches;
5. optionally, what **explanations** are about (:meth:`~ModelKit.explanation`): the raw columns
   (or the words of a text column) that :mod:`kindml.explain` attributes the served output to.

"Columns" are a mapping of column name → numpy array (a request after parsing and
the Feast lookup, or a DataFrame via :func:`frame_columns`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kindml.model.recipe import TorchRecipe

if TYPE_CHECKING:
    import pandas as pd

    from kindml.explain.spec import ExplainSpec
    from kindml.serving.signature import Signature

KIT_FILE = "kit.json"


@dataclass
class OnnxSpec:
    """What to export: a module taking ``inputs`` (names, in order) and returning ``outputs``."""

    module: Any
    example: dict[str, np.ndarray]
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    """Input name → {axis: name}; default: axis 0 of every input is the batch."""
    transformer: dict[str, int] | None = None
    """For a BERT-like encoder: ``{"num_heads": .., "hidden_size": ..}`` (the quantize chooser may fuse it)."""
    exporter: str = "dynamo"
    """``dynamo`` (torch.export) or ``torchscript`` (``dynamo=False``: the graphs ONNX Runtime's transformer optimizer fuses)."""


def frame_columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """A DataFrame as columns."""
    return {c: df[c].to_numpy() for c in df.columns}


class ModelKit(ABC):
    recipe: TorchRecipe
    files: tuple[str, ...] = ()
    """Preprocessing files this kit saves next to the model (travel with the ONNX file into the registry)."""

    @abstractmethod
    def fit(self, train: pd.DataFrame) -> None:
        """Fit the preprocessing on the training split (never on validation or holdout rows)."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the fitted preprocessing into ``folder`` (the names in :attr:`files`)."""

    @abstractmethod
    def load(self, folder: Path) -> ModelKit:
        """Read the preprocessing back (from a model folder or a served bundle); returns self."""

    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """Data facts the recipe's ``build`` needs (input width, standardisation, classes, ...)."""

    @abstractmethod
    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The recipe's inputs for rows of the training set (without the label)."""

    @abstractmethod
    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        """Integer labels (0/1, or class indices) of rows of the training set."""

    @property
    def class_names(self) -> list[str] | None:
        """Multiclass: the class names in index order."""
        return None

    @abstractmethod
    def onnx_module(self, model: Any) -> OnnxSpec:
        """The trained model wrapped for export (probabilities out, preprocessing that belongs in the graph in)."""

    @abstractmethod
    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Raw columns (request fields + features) → the ONNX model's inputs."""

    def probabilities(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The ONNX model's first output as probabilities (``(n,)`` binary, ``(n, classes)`` multiclass)."""
        first = np.asarray(outputs[0], dtype=np.float64)
        return first.reshape(-1) if self.recipe.probability == "sigmoid" else first

    def score(self, session: Any, cols: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """The predictor's scoring of a request's columns (after the Feast lookup): ``(feeds, outputs)``.

        Default: :meth:`feeds` → ONNX Runtime. A kit that answers some rows without running the model
        (e.g. results precomputed by the batch stage and looked up in Feast) overrides it; ``outputs``
        must still be what :meth:`probabilities` and the signature expect.
        """
        from kindml.model.export import run_onnx

        feeds = self.feeds(cols)
        return feeds, run_onnx(session, feeds)

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities of the trained torch model for rows of the training set (evaluation)."""
        return self.recipe.predict(model, self.arrays(frame))

    @abstractmethod
    def signature(self) -> Signature:
        """The serving contract for this kit (request parsing, answers, drift columns)."""

    def explanation(self) -> ExplainSpec | None:
        """What per-request attributions and the global importance are about: raw columns (request fields and
        looked-up features, or named groups of them), or the words of a text column; and the evaluation budgets.

        Default: None — the model has no explanations (``:explain`` answers 501, export writes no importance).
        """
        return None

    def parity_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows used to check ONNX against torch (default: as given)."""
        return frame

    def quantize(self, onnx_path: Path, feeds: dict[str, np.ndarray], labels: np.ndarray, budget: float, out_dir: Path) -> dict[str, Any]:
        """The export stage's optional quantize step: INT8 candidates timed side by side, the fastest within ``budget``.

        Default: a single float input ``features`` and a binary score (ROC AUC budget). Kits with other
        inputs (token ids, several inputs) override it. Writes ``out_dir/quantization.json`` and, if a
        variant wins, ``out_dir/model.onnx``; returns the chooser's result (``chosen``, ``reason``, ...).
        """
        from kindml.bench.quantize import choose_variant
        from kindml.errors import ExportError

        if list(feeds) != ["features"] or self.recipe.probability != "sigmoid":
            raise ExportError("this model kit has no quantize step (it takes inputs other than one float 'features' matrix)",
                              "Turn quantize.enabled off for this workload, or give its kit a quantize() method.")
        x = feeds["features"]
        return choose_variant(onnx_path, x[:512], x, labels, budget, out_dir)
