"""The background sample stored with a model version: a few training rows, only the explained columns.

An absent player of the tabular game takes its values from these rows, so the
attributions answer "compared with typical traffic the model was trained on".
The export stage writes it from the training reference rows (``reference.parquet``);
the predictor reads it back with the bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kindml.explain.spec import BACKGROUND_FILE, ExplainSpec, ExplanationError

if TYPE_CHECKING:
    import pandas as pd


def sample_background(spec: ExplainSpec, frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``spec.background_rows`` rows of ``frame`` drawn with ``seed``, as the explained columns."""
    if len(frame) == 0:
        raise ExplanationError("no training rows to draw the explanation background from",
                               "The export stage needs the training reference rows (model_dir/reference.parquet).")
    rows = frame.sample(n=min(spec.background_rows, len(frame)), random_state=seed).reset_index(drop=True)
    return spec.rows(rows)


def save_background(background: pd.DataFrame, folder: Path) -> Path:
    path = Path(folder) / BACKGROUND_FILE
    background.to_parquet(path, index=False)
    return path


def load_background(folder: Path) -> dict[str, np.ndarray] | None:
    """The stored sample as columns, or None when the version was exported without one."""
    import pandas as pd

    path = Path(folder) / BACKGROUND_FILE
    if not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise ExplanationError(f"cannot read the explanation background {path}: {type(exc).__name__}: {exc}",
                               "Re-export the model version (kindml run NAME) to write a new one.") from exc
    if len(df) == 0:
        raise ExplanationError(f"the explanation background {path} has no rows", "Re-export the model version.")
    return {c: df[c].to_numpy() for c in df.columns}
