"""The intent predictor's request contract, answers and drift columns.

A request is a batch of tickets: each needs ``text`` (1..2000 characters) and
may carry ``customer_id`` (its Feast features are looked up; an unknown or
missing customer gets the "no history" defaults and ``customer_known: false``),
``channel`` and ``ticket_id``. v1: ``{"instances": [{"text": "..."}]}``; v2: one
1-D tensor per field (``text`` as BYTES). The answer per ticket: the ``intent``,
its ``confidence``, every intent's probability, and ``customer_known``.

Drift columns: the first principal components of the sentence embedding
(``emb_pc1..3``, training basis), the text length, the share of tokens the
vocabulary does not know (``unknown_token_rate``), whether the customer was
known, and the predicted intent and channel mix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kindml.pipelines.text.data import CHANNELS, MAX_TEXT_CHARS
from kindml.serving.signature import (
    Answer,
    Parsed,
    RequestError,
    Signature,
    check_instances,
    choice,
    integer,
    text,
)

MAX_BATCH = 256  # every ticket is a transformer pass: a smaller batch than tabular models
UNK_ID = 100
REQUIRED = ("text",)
OPTIONAL = ("customer_id", "channel", "ticket_id")
NO_CUSTOMER = -1


class TextSignature(Signature):
    entity_keys = ("customer_id",)
    row_name = "ticket"
    max_batch = MAX_BATCH

    def __init__(self, kit: Any) -> None:
        self.kit = kit

    @property
    def fields(self) -> dict[str, str]:
        return {"text": "BYTES", "customer_id": "INT64", "channel": "BYTES", "ticket_id": "BYTES"}

    @property
    def required(self) -> tuple[str, ...]:
        return REQUIRED

    @property
    def outputs(self) -> dict[str, str]:
        return {"intent": "BYTES", "confidence": "FP64", "customer_known": "BOOL"}

    def parse_v1(self, instances: Any) -> Parsed:
        check_instances(instances, MAX_BATCH, "ticket", REQUIRED)
        texts, customers, channels = [], [], []
        for i, inst in enumerate(instances):
            unknown = [k for k in inst if k not in (*REQUIRED, *OPTIONAL)]
            if unknown:
                raise RequestError(f"instances[{i}] has unknown field(s): {', '.join(map(str, unknown[:5]))}; a ticket has text, "
                                   "and optionally customer_id, channel, ticket_id")
            if "text" not in inst:
                raise RequestError(f"instances[{i}] is missing field(s): text")
            texts.append(text(inst["text"], i, "text", MAX_TEXT_CHARS))
            cid = inst.get("customer_id")
            customers.append(NO_CUSTOMER if cid is None else integer(cid, i, "customer_id", minimum=1))
            ch = inst.get("channel")
            channels.append("unknown" if ch is None else choice(ch, i, "channel", CHANNELS))
            if inst.get("ticket_id") is not None and not isinstance(inst["ticket_id"], str | int):
                raise RequestError(f"instances[{i}].ticket_id must be a string")
        cols = {"text": np.asarray(texts, dtype=object), "customer_id": np.asarray(customers, dtype=np.int64),
                "channel": np.asarray(channels, dtype=object)}
        return Parsed(cols, len(texts), lookup=True)

    def respond(self, parsed: Parsed, probs: np.ndarray, known: dict[str, np.ndarray]) -> Answer:
        classes = self.kit.class_names
        p = np.asarray(probs, dtype=np.float64)
        top = p.argmax(axis=1)
        conf = p[np.arange(len(top)), top]
        cust = known.get("customer_id", np.zeros(len(top), dtype=bool)) & (parsed.columns["customer_id"] != NO_CUSTOMER)
        preds = [{"intent": classes[k], "confidence": round(float(c), 6), "probabilities": {classes[j]: round(float(row[j]), 6) for j in range(len(classes))},
                  "customer_known": bool(ck)} for k, c, row, ck in zip(top, conf, p, cust, strict=True)]
        return Answer(preds, [("intent", "BYTES", [classes[k] for k in top]), ("confidence", "FP64", [round(float(c), 6) for c in conf]),
                              ("customer_known", "BOOL", [bool(x) for x in cust])])

    def monitored(self, cols: Mapping[str, Any], feeds: Mapping[str, np.ndarray], outputs: list[np.ndarray],
                  probs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        pcs = self.kit.project(outputs[1])
        mask = feeds["attention_mask"]
        real = np.maximum(mask.sum(axis=1) - 2, 1)  # without [CLS] and [SEP]
        unk = ((feeds["input_ids"] == UNK_ID) & (mask == 1)).sum(axis=1) / real
        texts = np.asarray(cols["text"], dtype=object)
        ctx_known = feeds["context"][:, -1]
        numeric = {**{f"emb_pc{i + 1}": pcs[:, i].astype(np.float64) for i in range(pcs.shape[1])},
                   "text_length": np.array([len(str(t)) for t in texts], dtype=np.float64),
                   "unknown_token_rate": unk.astype(np.float64),
                   "customer_known": ctx_known.astype(np.float64)}
        classes = np.asarray(self.kit.class_names, dtype=object)
        categorical = {"predicted_intent": classes[np.asarray(probs).argmax(axis=1)].astype(str),
                       "channel": np.asarray(cols.get("channel", np.full(len(texts), "unknown")), dtype=object).astype(str)}
        return numeric, categorical

    def instances(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [{"text": str(r["text"]), "customer_id": int(r["customer_id"]), "channel": str(r["channel"])}
                for r in frame[["text", "customer_id", "channel"]].to_dict(orient="records")]
