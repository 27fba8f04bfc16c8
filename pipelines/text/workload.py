"""The text capstone as a workload: support tickets → intent, with a pretrained MiniLM encoder (transfer learning).

Everything text-specific lives in this folder; the platform's stages call the
methods below (see :class:`kindml.workload.contract.Workload`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kindml.errors import DataError
from kindml.pipelines.text.data import CHANNELS, CORRUPTION_KINDS, COUNTRIES, INTENTS, PLANS
from kindml.workload.contract import FeatureRepo, Ingested, Suite, Window, Workload

REFERENCE_ROWS = 1_500


class TextOptions(BaseModel):
    """``workloads.text`` in kindml.yaml."""

    model_config = ConfigDict(extra="forbid")

    customers: int = Field(2_000, ge=20, le=1_000_000, description="Customers in the generated world.")
    unfreeze_layers: int = Field(0, ge=0, le=6, description="Top MiniLM layers trained with the head (0: frozen encoder, head only).")


class TextWorkload(Workload):
    name = "text"
    title = "Support-ticket intents: transfer learning from MiniLM, Feast customer context, embedding drift"
    teaches = "NLP with a pretrained encoder: frozen-embedding head vs baseline, tokenizer shipped with the model, INT8 transformer serving, embedding drift"
    task = "multiclass"
    model_name = "ticket-intent"
    event_table = "tickets"
    label = "intent"
    row_id = "ticket_id"
    gate_metric = "macro_f1"
    corruption_kinds = CORRUPTION_KINDS
    defaults = {
        "data.rows": 8_000,
        "train.epochs": 12,
        "train.batch_size": 64,
        "train.tune_trials": 3,
        "train.tune_epochs": 4,
        "evaluate.min_score": 0.85,
        "quantize.enabled": True,
        "quantize.accuracy_budget": 0.01,
    }
    Options = TextOptions

    # --- data -------------------------------------------------------------------------------

    def world(self) -> Any:
        from kindml.pipelines.text.data import build_world

        d = self.cfg.data
        return build_world(d.seed, self.options.customers, d.days, d.end_date)

    def schemas(self) -> dict[str, dict[str, str]]:
        from kindml.pipelines.text.suites import CUSTOMER_COLUMNS, TICKET_COLUMNS

        return {"tickets": TICKET_COLUMNS, "customers": CUSTOMER_COLUMNS}

    def allowed_values(self) -> dict[str, list[Any]]:
        return {"intent": list(INTENTS), "channel": list(CHANNELS), "plan": list(PLANS), "country": list(COUNTRIES)}

    def generate(self) -> Ingested:
        from kindml.pipelines.text.data import generate_history

        d = self.cfg.data
        world = self.world()
        tickets = generate_history(world, d.rows, d.history_drift)
        return Ingested({"tickets": tickets, "customers": world.customers},
                        {"window_start": world.start.isoformat(), "window_end": world.end.isoformat(), "days": d.days})

    def check_loaded(self, tables: dict[str, pd.DataFrame]) -> None:
        if tables["customers"]["customer_id"].duplicated().any():
            raise DataError("customers: duplicated customer_id values", "customer_id must be unique in the customers table.")

    def corrupt(self, tables: dict[str, pd.DataFrame], rate: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        from kindml.pipelines.text.data import corrupt

        tickets, damage = corrupt(tables["tickets"], rate, seed, self.kinds)
        return {**tables, "tickets": tickets}, damage

    def data_summary(self, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
        t = tables["tickets"]
        return {"customers": len(tables["customers"]), "intents": int(t["intent"].nunique()),
                "top_intent_share": round(float(t["intent"].value_counts(normalize=True).iloc[0]), 4) if len(t) else None}

    # --- validation -------------------------------------------------------------------------

    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        from kindml.pipelines.text.suites import customer_suite, ticket_suite

        return [Suite("customers", customer_suite()),
                Suite("tickets", ticket_suite(self.cfg.validation, tables["customers"]["customer_id"].to_numpy(), now), quarantine=True)]

    # --- features ---------------------------------------------------------------------------

    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        from kindml.pipelines.text.features import (
            FEATURE_SERVICE,
            VIEW,
            customer_daily,
            feature_objects,
        )

        return FeatureRepo(objects=feature_objects(data_dir), service=FEATURE_SERVICE, views=[VIEW],
                           offline_tables={VIEW: customer_daily(tables["tickets"], tables["customers"], window.start, window.days)},
                           entity_rows=tables["tickets"])

    # --- model --------------------------------------------------------------------------------

    def model_kit(self) -> Any:
        from kindml.pipelines.text.model import TextKit

        return TextKit(self.options.unfreeze_layers)

    def reference_rows(self, frame: pd.DataFrame, window: Window) -> pd.DataFrame:
        """A sample: every reference row is a transformer pass at export time."""
        return frame.sample(min(REFERENCE_ROWS, len(frame)), random_state=0)

    def baselines(self, train: pd.DataFrame, holdout: pd.DataFrame, kit: Any) -> dict[str, dict[str, Any]]:
        """Frozen MiniLM embeddings + logistic regression (text only), fitted on the training split."""
        from sklearn.linear_model import LogisticRegression

        from kindml.model.metrics import multiclass_metrics

        x_train, x_test = kit.embed(train["text"].tolist()), kit.embed(holdout["text"].tolist())
        clf = LogisticRegression(max_iter=2_000, C=4.0)
        clf.fit(x_train, kit.labels(train))
        # predict_proba's columns follow clf.classes_; spread them into every class of the kit
        import numpy as np

        p = np.zeros((len(holdout), len(kit.class_names)))
        p[:, clf.classes_] = clf.predict_proba(x_test)
        m = multiclass_metrics(kit.labels(holdout), p, kit.class_names)
        return {"frozen_embeddings_logreg": {k: round(v, 5) for k, v in m.items() if isinstance(v, float)}
                | {"note": "all-MiniLM-L6-v2 embeddings (frozen) + logistic regression on the text alone, no customer context"}}

    # --- live traffic ----------------------------------------------------------------------------

    def live(self, n: int, drift: float, stream: int, concept: float = 0.0) -> pd.DataFrame:
        from kindml.pipelines.text.data import generate_live

        return generate_live(self.world(), n, drift, stream=stream, concept=concept)

    def requests(self, df: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {
                "text": str(r["text"]),
                "customer_id": int(r["customer_id"]),
                "channel": str(r["channel"]),
            }
            for r in df[["text", "customer_id", "channel"]].to_dict(orient="records")
        ]


WORKLOAD = TextWorkload
