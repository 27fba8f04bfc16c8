"""The fraud model kit: the engineered-feature assembler (preprocessing.json) + the platform's MLP recipe."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kindml.model.kit import ModelKit, OnnxSpec, frame_columns
from kindml.model.mlp import MLPRecipe, probability_module
from kindml.pipelines.fraud.preprocess import Assembler, PreprocessingSpec, fit_spec
from kindml.serving.signature import Signature

INPUT_NAME = "features"
OUTPUT_NAME = "fraud_probability"


def _find(folder: Path, name: str) -> Path:
    direct = folder / name
    if direct.is_file():
        return direct
    hits = sorted(folder.rglob(name))
    if not hits:
        raise FileNotFoundError(f"{name} not found under {folder}")
    return hits[0]


class FraudKit(ModelKit):
    files = ("preprocessing.json",)

    def __init__(self, feature_service: str, threshold: float = 0.5) -> None:
        self.recipe = MLPRecipe("binary")
        self.feature_service = feature_service
        self.threshold = threshold
        self.spec: PreprocessingSpec | None = None

    @property
    def assembler(self) -> Assembler:
        if self.spec is None:
            raise RuntimeError("the fraud kit is not fitted or loaded")
        return Assembler(self.spec)

    def fit(self, train: pd.DataFrame) -> None:
        self.spec, _ = fit_spec(frame_columns(train), self.feature_service)

    def save(self, folder: Path) -> None:
        assert self.spec is not None
        self.spec.save(folder / "preprocessing.json")

    def load(self, folder: Path) -> FraudKit:
        self.spec = PreprocessingSpec.load(_find(Path(folder), "preprocessing.json"))
        return self

    def meta(self) -> dict[str, Any]:
        assert self.spec is not None
        return {"n_inputs": len(self.spec.inputs), "mean": self.spec.mean, "std": self.spec.std}

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {INPUT_NAME: self.assembler.transform(frame_columns(frame))}

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["is_fraud"].to_numpy().astype(np.int64)

    def onnx_module(self, model: Any) -> OnnxSpec:
        n = len(self.spec.inputs) if self.spec else 0
        return OnnxSpec(probability_module(model, "sigmoid"), {INPUT_NAME: np.zeros((2, n), dtype=np.float32)}, [INPUT_NAME], [OUTPUT_NAME])

    def feeds(self, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {INPUT_NAME: self.assembler.transform(cols)}

    def explanation(self) -> Any:
        """The request fields (``hour`` from the timestamp) and every looked-up account and merchant feature."""
        from kindml.explain.spec import ExplainSpec
        from kindml.pipelines.fraud.preprocess import REQUEST_FIELDS
        from kindml.pipelines.fraud.serving import FEATURE_FIELDS, STRING_FEATURES

        def hour(frame: pd.DataFrame) -> np.ndarray:
            return pd.DatetimeIndex(pd.to_datetime(frame["event_timestamp"], utc=True)).hour.to_numpy(dtype=np.float64)

        return ExplainSpec(columns=[*REQUEST_FIELDS, *FEATURE_FIELDS, *STRING_FEATURES], derived={"hour": hour})

    def signature(self) -> Signature:
        from kindml.pipelines.fraud.serving import FraudSignature

        assert self.spec is not None, "load the kit before asking for its signature"
        return FraudSignature(list(self.spec.inputs), self.threshold)
