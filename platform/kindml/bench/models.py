"""A benchmark *case*: one model with its FP32 ONNX file, real inputs, calibration data and quality measure.

Every variant of a case sees the same inputs: ``batch(n)`` returns the first
``n`` real samples of the held-out set (tiled when the set is smaller), the
eval set is fed in fixed chunks (dynamic quantisation computes its ranges per
call, so the chunking is the same for every variant), and ``quality(outputs)``
compares a variant's eval outputs with the FP32 reference (PyTorch eager).

Which cases exist and how each is built: :mod:`kindml.bench.cases`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kindml.bench import quality as q

EVAL_CHUNK = 32


@dataclass
class ModelCase:
    name: str
    onnx_path: Path
    net: Any  # the eager PyTorch module (CPU, FP32)
    input_names: tuple[str, ...]
    eval_inputs: dict[str, np.ndarray]  # the whole eval set, per input
    calibration: dict[str, np.ndarray]  # calibration samples (real, from training data)
    score: Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (outputs, reference) -> quality
    meta: dict[str, Any] = field(default_factory=dict)
    reference: np.ndarray | None = None  # FP32 eval outputs (set by compute_reference)
    transformer: dict[str, Any] | None = None  # num_heads, hidden_size, mask_inputs: enables the fused family
    output_names: tuple[str, ...] = ("output",)
    generic_calibration_rows: int | None = None  # the generic static recipes calibrate on the first rows only (time)

    @property
    def n_eval(self) -> int:
        return int(next(iter(self.eval_inputs.values())).shape[0])

    def batch(self, n: int) -> dict[str, np.ndarray]:
        idx = np.arange(n) % self.n_eval
        return {k: np.ascontiguousarray(v[idx]) for k, v in self.eval_inputs.items()}

    def eval_chunks(self, chunk: int = EVAL_CHUNK) -> list[dict[str, np.ndarray]]:
        return [{k: np.ascontiguousarray(v[i : i + chunk]) for k, v in self.eval_inputs.items()} for i in range(0, self.n_eval, chunk)]

    def calibration_chunks(self, chunk: int = EVAL_CHUNK, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        n = int(next(iter(self.calibration.values())).shape[0])
        n = min(n, limit) if limit else n
        return [{k: np.ascontiguousarray(v[i : i + chunk]) for k, v in self.calibration.items()} for i in range(0, n, chunk)]

    def torch_args(self, feeds: dict[str, np.ndarray], device: str = "cpu") -> tuple[Any, ...]:
        import torch

        return tuple(torch.from_numpy(feeds[name]).to(device) for name in self.input_names)

    def run_eval(self, predict: Callable[[dict[str, np.ndarray]], np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(predict(chunk)) for chunk in self.eval_chunks()], axis=0)

    def compute_reference(self) -> np.ndarray:
        """FP32 outputs of the eager module on the eval set (the quality reference)."""
        import torch

        with torch.inference_mode():
            self.reference = self.run_eval(lambda feeds: self.net(*self.torch_args(feeds)).numpy())
        return self.reference

    def quality(self, outputs: np.ndarray) -> dict[str, float]:
        if self.reference is None:
            self.compute_reference()
        assert self.reference is not None
        return self.score(outputs, self.reference)


def digits_case(work_dir: Path) -> ModelCase:
    from kindml.bench import digits

    built = digits.build(work_dir)
    y = built["y_test"]
    return ModelCase(
        name="digits_cnn",
        onnx_path=built["onnx_path"],
        net=built["net"],
        input_names=(digits.INPUT_NAME,),
        eval_inputs={digits.INPUT_NAME: built["x_test"]},
        calibration={digits.INPUT_NAME: built["calibration"]},
        score=lambda out, ref: q.digits_quality(y, out, ref),
        meta=built["meta"] | {"quality_metric": "accuracy on the held-out split", "eval_rows": int(len(y))},
    )


def minilm_case(work_dir: Path, n_sentences: int) -> ModelCase:
    from kindml.bench import minilm

    built = minilm.build(work_dir, n_sentences)
    return ModelCase(
        name="minilm_l6",
        onnx_path=built["onnx_path"],
        net=built["net"],
        input_names=minilm.INPUT_NAMES,
        eval_inputs=built["feeds"],
        calibration=built["calibration"],
        score=lambda out, ref: q.minilm_quality(out, ref),
        meta=built["meta"] | {"quality_metric": "cosine similarity to FP32 embeddings, nearest-neighbour agreement", "eval_rows": n_sentences},
        transformer=built["transformer"],
        generic_calibration_rows=minilm.GENERIC_CALIBRATION_SENTENCES,
        output_names=(minilm.OUTPUT_NAME,),
    )
