"""Which inputs the drift monitor watches (bounded: a fixed, small set of labels)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# engineered inputs (names in PreprocessingSpec.inputs) watched for drift, plus the raw amount and hour
NUMERIC_INPUTS: tuple[str, ...] = ("log_amount", "amount_log_z", "log_txn_count_30d", "log_amount_mean_30d",
                                   "log_merchant_txn_count_30d", "merchant_known", "account_known", "is_night")
CATEGORICAL: tuple[str, ...] = ("merchant_category", "channel", "country")


def monitored_columns(inputs: list[str], x: np.ndarray, cols: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(numeric, categorical) columns for the drift monitor from the assembled matrix and the raw columns."""
    index = {name: i for i, name in enumerate(inputs)}
    numeric = {name: x[:, index[name]].astype(np.float64) for name in NUMERIC_INPUTS if name in index}
    categorical = {name: np.asarray(cols[name], dtype=object).astype(str) for name in CATEGORICAL if name in cols}
    return numeric, categorical
