"""The recommendation predictor's request contract, answers and drift columns.

A request asks for recommendations for users: ``{"instances": [{"user_id": 17}, {"user_id": 42, "k": 5}]}``
(v1) or one INT64 tensor per field (v2: ``user_id``, optional ``k``). ``k`` is 1..K (default 10;
K is the model's ``max_k``). The predictor looks the user up in Feast (feature service
``recsys_serving_v1``): precomputed recommendations written by the batch stage answer directly
(``source: "precomputed"``); a user without them (new since the batch ran, or never seen) is
scored live by the ONNX model from their profile (``source: "live"``; no profile at all: the
unknown-user embedding and "no history" inputs, i.e. broadly popular items; ``user_known: false``).

v1 answer per user: ``items`` (ids, best first), ``scores``, ``top_item``, ``source``,
``user_known``. v2 outputs: ``top_item`` (INT64), ``item_ids`` (BYTES, comma-separated ids),
``source`` (BYTES), ``user_known`` (BOOL).

Drift columns: whether the user was known, the user's rating count, and the top score (prediction drift).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kindml.pipelines.recsys.features import SERVING_SERVICE
from kindml.serving.signature import (
    Answer,
    Parsed,
    RequestError,
    Signature,
    check_instances,
    integer,
)

DEFAULT_K = 10
MAX_BATCH = 512
FIELDS = ("user_id", "k")


class RecsysSignature(Signature):
    entity_keys = ("user_id",)
    row_name = "user"
    max_batch = MAX_BATCH
    feature_service = SERVING_SERVICE

    def __init__(self, kit: Any) -> None:
        self.kit = kit

    @property
    def fields(self) -> dict[str, str]:
        return {"user_id": "INT64", "k": "INT64"}

    @property
    def required(self) -> tuple[str, ...]:
        return ("user_id",)

    @property
    def outputs(self) -> dict[str, str]:
        return {"top_item": "INT64", "item_ids": "BYTES", "source": "BYTES", "user_known": "BOOL"}

    @property
    def max_k(self) -> int:
        return min(int(self.kit.max_k), self.kit.n_items)

    def parse_v1(self, instances: Any) -> Parsed:
        check_instances(instances, MAX_BATCH, "user", ("user_id",))
        users, ks = [], []
        for i, inst in enumerate(instances):
            unknown = [k for k in inst if k not in FIELDS]
            if unknown:
                raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}; a request has user_id "
                                   "and optionally k")
            if "user_id" not in inst:
                raise RequestError(f"instances[{i}] is missing field(s): user_id")
            users.append(integer(inst["user_id"], i, "user_id", minimum=1))
            ks.append(DEFAULT_K if inst.get("k") is None else integer(inst["k"], i, "k", minimum=1, maximum=self.max_k))
        return Parsed({"user_id": np.asarray(users, dtype=np.int64), "k": np.asarray(ks, dtype=np.int64)}, len(users), lookup=True)

    def respond(self, parsed: Parsed, probs: Any, known: dict[str, np.ndarray]) -> Answer:
        n = parsed.n
        ks = parsed.columns.get("k", np.full(n, DEFAULT_K))
        user_known = known.get("user_id", np.zeros(n, dtype=bool)) | probs.precomputed
        preds, tops, lists, sources = [], [], [], []
        for i in range(n):
            keep = probs.items[i] >= 0
            items = probs.items[i][keep][: int(ks[i])]
            scores = probs.scores[i][keep][: int(ks[i])]
            source = "precomputed" if probs.precomputed[i] else "live"
            top = int(items[0]) if len(items) else -1
            preds.append({"user_id": int(parsed.columns["user_id"][i]), "items": [int(x) for x in items],
                          "scores": [round(float(s), 5) for s in scores], "top_item": top, "source": source, "user_known": bool(user_known[i])})
            tops.append(top)
            lists.append(",".join(str(int(x)) for x in items))
            sources.append(source)
        return Answer(preds, [("top_item", "INT64", tops), ("item_ids", "BYTES", lists), ("source", "BYTES", sources),
                              ("user_known", "BOOL", [bool(x) for x in user_known])])

    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        uf = feeds["user_features"]
        numeric = {"user_known": uf[:, -1].astype(np.float64),
                   "user_rating_count": np.expm1(uf[:, 0]).astype(np.float64),
                   "top_score": self.score(probs)}
        # no categorical columns: the answer's source is "live" for every reference row (the reference is scored by the model at
        # export, before any batch), and the top item's genre moves with every new rating, so neither is comparable to the reference
        return numeric, {}

    def score(self, probs: Any) -> np.ndarray:
        s = np.asarray(probs.scores, dtype=np.float64)[:, 0] if len(probs) else np.zeros(0)
        return np.where(s <= -1e8, 0.0, s)

    def instances(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"user_id": int(u)} for u in frame["user_id"]]
