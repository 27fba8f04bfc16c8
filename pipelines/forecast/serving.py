"""The forecast predictor's request contract, answers and drift columns.

A request asks for the next H days of series: ``{"instances": [{"store_id": 3, "product_id": 17}]}`` (v1) or one
INT64 tensor per field (v2: ``store_id``, ``product_id``). The predictor looks the series up in Feast (feature service
``forecast_serving_v1``, key ``series_id = store_id * 10000 + product_id``): the forecast the batch stage precomputed
answers directly (``source: "precomputed"``); a series without one is forecast live by the ONNX model from its
history and plan (``source: "live"``); a series the store has no history for gets a flat forecast at the minimum
level and ``series_known: false``.

v1 answer per series: ``forecast`` (H values, units, day 1 first), ``total`` (their sum), ``source``,
``series_known``. v2 outputs: ``total`` (FP64), ``forecast_days`` (BYTES, comma-separated), ``source`` (BYTES),
``series_known`` (BOOL).

Drift columns: whether the series was known, its level (``mean_28``) and the first day's forecast (prediction drift).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kindml.pipelines.forecast.data import SERIES_BASE
from kindml.pipelines.forecast.features import SERVING_SERVICE
from kindml.serving.signature import (
    Answer,
    Parsed,
    RequestError,
    Signature,
    check_instances,
    integer,
)

MAX_BATCH = 512
FIELDS = ("store_id", "product_id")


class ForecastSignature(Signature):
    entity_keys = ("series_id",)
    row_name = "series"
    max_batch = MAX_BATCH
    feature_service = SERVING_SERVICE

    def __init__(self, kit: Any) -> None:
        self.kit = kit

    @property
    def fields(self) -> dict[str, str]:
        return {"store_id": "INT64", "product_id": "INT64"}

    @property
    def outputs(self) -> dict[str, str]:
        return {"total": "FP64", "forecast_days": "BYTES", "source": "BYTES", "series_known": "BOOL"}

    def parse_v1(self, instances: Any) -> Parsed:
        check_instances(instances, MAX_BATCH, "series", FIELDS)
        stores, products = [], []
        for i, inst in enumerate(instances):
            unknown = [k for k in inst if k not in FIELDS]
            if unknown:
                raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}; a request has store_id and product_id")
            missing = [k for k in FIELDS if k not in inst]
            if missing:
                raise RequestError(f"instances[{i}] is missing field(s): {', '.join(missing)}")
            stores.append(integer(inst["store_id"], i, "store_id", minimum=1, maximum=10**9))
            products.append(integer(inst["product_id"], i, "product_id", minimum=1, maximum=SERIES_BASE - 1))
        s, p = np.asarray(stores, dtype=np.int64), np.asarray(products, dtype=np.int64)
        return Parsed({"store_id": s, "product_id": p, "series_id": s * SERIES_BASE + p}, len(s), lookup=True)

    def respond(self, parsed: Parsed, probs: Any, known: dict[str, np.ndarray]) -> Answer:
        n = parsed.n
        forecasts, pre = probs.values, probs.precomputed
        has = known.get("series_id", np.zeros(n, dtype=bool)) | pre
        preds, totals, texts, sources = [], [], [], []
        for i in range(n):
            f = [round(float(v), 3) for v in forecasts[i]]
            source = "precomputed" if pre[i] else "live"
            preds.append({"store_id": int(parsed.columns["store_id"][i]), "product_id": int(parsed.columns["product_id"][i]),
                          "forecast": f, "total": round(float(sum(f)), 3), "source": source, "series_known": bool(has[i])})
            totals.append(round(float(sum(f)), 3))
            texts.append(",".join(str(v) for v in f))
            sources.append(source)
        return Answer(preds, [("total", "FP64", totals), ("forecast_days", "BYTES", texts), ("source", "BYTES", sources),
                              ("series_known", "BOOL", [bool(x) for x in has])])

    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        level = np.asarray(feeds["level"], dtype=np.float64).reshape(-1)
        m28 = cols.get("mean_28")
        known = np.array([v is not None and np.isfinite(float(v)) for v in m28], dtype=np.float64) if m28 is not None else np.zeros(len(level))
        return {"series_known": known, "level": level, "forecast_day_1": self.score(probs)}, {}

    def score(self, probs: Any) -> np.ndarray:
        f = np.asarray(probs.values, dtype=np.float64)
        return f[:, 0] if f.ndim == 2 and f.shape[1] else np.zeros(len(f))

    def instances(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"store_id": int(s), "product_id": int(p)} for s, p in zip(frame["store_id"], frame["product_id"], strict=True)]
