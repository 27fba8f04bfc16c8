"""The fraud capstone as a workload: card transactions, account and merchant aggregates in Feast, an MLP.

Everything fraud-specific lives in this folder; the platform's stages call the
methods below (see :class:`kindml.workload.contract.Workload`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kindml.errors import DataError
from kindml.pipelines.fraud.data import CORRUPTION_KINDS
from kindml.workload.contract import FeatureRepo, Ingested, Suite, Window, Workload


class FraudOptions(BaseModel):
    """``workloads.fraud`` in kindml.yaml."""

    model_config = ConfigDict(extra="forbid")

    accounts: int = Field(1_500, ge=50, le=1_000_000, description="Accounts in the generated world.")
    merchants: int = Field(400, ge=20, le=100_000, description="Merchants in the generated world.")
    max_amount: float = Field(25_000.0, gt=0, description="Largest valid transaction amount (validation; corruption goes beyond it).")


class FraudWorkload(Workload):
    name = "fraud"
    title = "Card-fraud detection: tabular events, point-in-time aggregates, an MLP, drift alerts"
    teaches = "the whole MLOps loop on tabular data: GE quarantine, Feast PIT joins, Ray Tune + Train DDP, gate, ONNX INT8, KServe, drift"
    task = "binary"
    model_name = "fraud-detector"
    event_table = "transactions"
    label = "is_fraud"
    row_id = "transaction_id"
    gate_metric = "roc_auc"
    positive_label = "fraud"
    defaults = {"registry.experiment": "kindml-capstone"}
    Options = FraudOptions

    corruption_kinds = CORRUPTION_KINDS

    # --- data ---------------------------------------------------------------------------

    def world(self, end_date: date | None = None) -> Any:
        from kindml.pipelines.fraud.data import build_world

        d = self.cfg.data
        return build_world(d.seed, self.options.accounts, self.options.merchants, d.days, end_date or d.end_date)

    def schemas(self) -> dict[str, dict[str, str]]:
        from kindml.pipelines.fraud.schema import ACCOUNT_COLUMNS, TRANSACTION_COLUMNS

        return {"transactions": TRANSACTION_COLUMNS, "accounts": ACCOUNT_COLUMNS}

    def allowed_values(self) -> dict[str, list[Any]]:
        from kindml.pipelines.fraud.schema import CATEGORIES, CHANNELS, COUNTRIES, SEGMENTS

        return {"merchant_category": list(CATEGORIES), "channel": list(CHANNELS), "country": list(COUNTRIES),
                "home_country": list(COUNTRIES), "segment": list(SEGMENTS), "is_fraud": [0, 1]}

    def generate(self) -> Ingested:
        from kindml.pipelines.fraud.data import DriftSpec, generate_history

        d = self.cfg.data
        world = self.world()
        tx = generate_history(world, d.rows, DriftSpec.from_severity(d.history_drift) if d.history_drift else None)
        return Ingested({"transactions": tx, "accounts": world.accounts},
                        {"window_start": world.start.isoformat(), "window_end": world.end.isoformat(), "days": d.days})

    def check_loaded(self, tables: dict[str, pd.DataFrame]) -> None:
        acc = tables["accounts"]
        if acc["account_id"].duplicated().any():
            dup = int(acc["account_id"].duplicated().sum())
            raise DataError(f"accounts: {dup} duplicated account_id value(s)", "account_id must be unique in the accounts table.")

    def corrupt(self, tables: dict[str, pd.DataFrame], rate: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        from kindml.pipelines.fraud.data import corrupt

        tx, damage = corrupt(tables["transactions"], rate, seed, self.options.max_amount, self.kinds)
        return {**tables, "transactions": tx}, damage.to_dict()

    def data_summary(self, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
        tx = tables["transactions"]
        return {"accounts": len(tables["accounts"]), "fraud_rate": round(float(pd.to_numeric(tx["is_fraud"], errors="coerce").mean()), 5)}

    # --- validation -------------------------------------------------------------------------

    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        from kindml.pipelines.fraud.suites import account_suite, transaction_suite

        return [Suite("accounts", account_suite()),
                Suite("transactions", transaction_suite(self.cfg.validation, self.options.max_amount,
                                                        tables["accounts"]["account_id"].to_numpy(), now), quarantine=True)]

    # --- features -------------------------------------------------------------------------------

    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        from kindml.pipelines.fraud.aggregates import account_daily, merchant_daily
        from kindml.pipelines.fraud.definitions import (
            ACCOUNT_VIEW,
            FEATURE_SERVICE,
            MERCHANT_VIEW,
            feature_objects,
        )

        tx, accounts = tables["transactions"], tables["accounts"]
        return FeatureRepo(
            objects=feature_objects(data_dir),
            service=FEATURE_SERVICE,
            views=[ACCOUNT_VIEW, MERCHANT_VIEW],
            offline_tables={ACCOUNT_VIEW: account_daily(tx, accounts, window.start, window.days),
                            MERCHANT_VIEW: merchant_daily(tx, window.start, window.days)},
            entity_rows=tx,
        )

    # --- model -------------------------------------------------------------------------------------

    def model_kit(self) -> Any:
        from kindml.pipelines.fraud.definitions import FEATURE_SERVICE
        from kindml.pipelines.fraud.model import FraudKit

        return FraudKit(FEATURE_SERVICE, self.cfg.evaluate.threshold)

    def reference_rows(self, frame: pd.DataFrame, window: Window, warmup_days: int = 30) -> pd.DataFrame:
        """Rows of the first ``warmup_days`` of the history are left out when enough remain: their 30-day
        aggregates cover a partial window (the history starts there), which live traffic never shows —
        keeping them would make every undrifted day look drifted."""
        settled = frame[frame["event_timestamp"] >= window.start + pd.Timedelta(days=warmup_days)]
        return settled if len(settled) >= 500 else frame

    # --- live traffic ------------------------------------------------------------------------------

    def live(self, n: int, drift: float, stream: int, concept: float = 0.0) -> pd.DataFrame:
        """Labelled transactions after the history window (what a deployed model will see)."""
        from kindml.pipelines.fraud.data import DriftSpec, generate_live

        return generate_live(self.world(), n, DriftSpec.from_severity(drift) if drift > 0 else None, stream=stream, concept=concept)

    def requests(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        from kindml.pipelines.fraud.serving import FraudSignature

        return FraudSignature([], 0.5).instances(frame)


WORKLOAD = FraudWorkload
