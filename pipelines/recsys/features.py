"""The recommendation capstone's Feast features: user and item snapshots, and the precomputed recommendations.

Snapshots are written only for days with activity and stamped at midnight UTC after the day, with no
TTL (``ttl=0``: a value holds until the next snapshot), so the point-in-time join hands every rating
the history that was complete before its day: never the rating itself, never a later one.

- ``user_profile`` (user_id): ``rating_count``, ``mean_rating``, ``liked_share`` (ratings >= 4),
  ``last_rating_at`` (days since the epoch: the model turns it into recency at the time of the
  question) and one genre affinity per genre (``genre_*``: the share of the user's liked items in
  that genre);
- ``item_stats`` (item_id): ``item_rating_count``, ``item_mean_rating``, ``item_liked_share``,
  ``item_last_rating_at``;
- ``user_recommendations`` (user_id, written by the batch stage): ``rec_items`` / ``rec_scores``
  (the top-K of the served model, best first).

Feature services: ``recsys_v1`` (training: both snapshots joined onto every rating),
``recsys_user_v1`` (the user's features for batch scoring) and ``recsys_serving_v1`` (what the
predictor reads: precomputed recommendations and the user profile for live scoring).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from kindml.pipelines.recsys.data import GENRES, LIKED

DAY_NS = 86_400 * 10**9
USER_VIEW = "user_profile"
ITEM_VIEW = "item_stats"
RECS_VIEW = "user_recommendations"
RECS_TABLE = "user_recommendations"
FEATURE_SERVICE = "recsys_v1"
USER_SERVICE = "recsys_user_v1"
SERVING_SERVICE = "recsys_serving_v1"
NO_TTL = timedelta(0)


def genre_column(genre: str) -> str:
    return "genre_" + re.sub(r"[^a-z0-9]+", "_", genre.lower()).strip("_")


GENRE_FEATURES: tuple[str, ...] = tuple(genre_column(g) for g in GENRES)
USER_FEATURES: tuple[str, ...] = ("rating_count", "mean_rating", "liked_share", "last_rating_at", *GENRE_FEATURES)
ITEM_FEATURES: tuple[str, ...] = ("item_rating_count", "item_mean_rating", "item_liked_share", "item_last_rating_at")


def genre_matrix(items: pd.DataFrame) -> np.ndarray:
    """Multi-hot genres of ``items`` (rows in the table's order), float [n_items, len(GENRES)]."""
    index = {g: j for j, g in enumerate(GENRES)}
    out = np.zeros((len(items), len(GENRES)), dtype=np.float64)
    for i, text in enumerate(items["genres"].fillna("").astype(str)):
        for g in text.split("|"):
            if g in index:
                out[i, index[g]] = 1.0
    return out


def _epoch_days(ts: pd.Series) -> np.ndarray:
    return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64) / DAY_NS


def _day_stamp(ts: pd.Series) -> pd.Series:
    """Midnight UTC after each timestamp's day: when a day's snapshot becomes visible."""
    return pd.to_datetime(ts, utc=True).dt.floor("D") + pd.Timedelta(days=1)


def _last_per_day(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """The cumulative row at the end of each (key, day): one snapshot per active day."""
    df = df.assign(event_timestamp=_day_stamp(df["_ts"]))
    return df.drop_duplicates([key, "event_timestamp"], keep="last").drop(columns="_ts").reset_index(drop=True)


def user_profile(ratings: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per user and active day: cumulative counts, mean rating, liked share, last activity and genre affinities."""
    r = ratings.sort_values(["user_id", "event_timestamp", "rating_id"], kind="stable").reset_index(drop=True)
    g = r.groupby("user_id", sort=False)
    liked = (r["rating"].to_numpy() >= LIKED).astype(np.float64)
    count = g.cumcount().to_numpy() + 1.0
    total = g["rating"].cumsum().to_numpy()
    n_liked = pd.Series(liked).groupby(r["user_id"].to_numpy()).cumsum().to_numpy()
    pos = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    idx = pos.reindex(r["item_id"].to_numpy()).to_numpy()
    known = ~np.isnan(idx)
    gm = genre_matrix(items)
    genres = np.zeros((len(r), len(GENRES)))
    genres[known] = gm[idx[known].astype(np.int64)] * liked[known, None]
    cum = pd.DataFrame(genres).groupby(r["user_id"].to_numpy()).cumsum().to_numpy()
    out = pd.DataFrame({"user_id": r["user_id"].to_numpy(np.int64), "_ts": r["event_timestamp"].to_numpy(),
                        "rating_count": count, "mean_rating": np.round(total / count, 5), "liked_share": np.round(n_liked / count, 5),
                        "last_rating_at": np.round(_epoch_days(r["event_timestamp"]), 5),
                        **{c: np.round(cum[:, j] / np.maximum(n_liked, 1.0), 5) for j, c in enumerate(GENRE_FEATURES)}})
    out["_ts"] = pd.to_datetime(out["_ts"], utc=True)
    return _last_per_day(out, "user_id")


def item_stats(ratings: pd.DataFrame) -> pd.DataFrame:
    """Per item and active day: cumulative rating count, mean rating, liked share and last rating time."""
    r = ratings.sort_values(["item_id", "event_timestamp", "rating_id"], kind="stable").reset_index(drop=True)
    g = r.groupby("item_id", sort=False)
    count = g.cumcount().to_numpy() + 1.0
    total = g["rating"].cumsum().to_numpy()
    liked = pd.Series((r["rating"].to_numpy() >= LIKED).astype(np.float64)).groupby(r["item_id"].to_numpy()).cumsum().to_numpy()
    out = pd.DataFrame({"item_id": r["item_id"].to_numpy(np.int64), "_ts": pd.to_datetime(r["event_timestamp"], utc=True),
                        "item_rating_count": count, "item_mean_rating": np.round(total / count, 5),
                        "item_liked_share": np.round(liked / count, 5), "item_last_rating_at": np.round(_epoch_days(r["event_timestamp"]), 5)})
    return _last_per_day(out, "item_id")


def _entities() -> tuple[object, object]:
    from feast import Entity, ValueType

    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="A user who rates items.")
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64, description="An item (a movie) users rate.")
    return user, item


def _user_view(data_dir: Path) -> object:
    from feast import FeatureView, Field, FileSource
    from feast.types import Float64

    user, _ = _entities()
    return FeatureView(
        name=USER_VIEW, entities=[user], ttl=NO_TTL,
        schema=[Field(name=f, dtype=Float64) for f in USER_FEATURES],
        source=FileSource(name=f"{USER_VIEW}_source", path=str(data_dir / f"{USER_VIEW}.parquet"), timestamp_field="event_timestamp"),
        online=True, description="A user's ratings so far: counts, mean, liked share, last activity, genre affinities (daily snapshots).",
        tags={"owner": "kindml", "workload": "recsys"},
    )


def feature_objects(data_dir: Path) -> list[object]:
    """Entities, the user and item views, and the training and batch feature services (applied by the features stage)."""
    from feast import FeatureService, FeatureView, Field, FileSource
    from feast.types import Float64

    user, item = _entities()
    uview = _user_view(data_dir)
    iview = FeatureView(
        name=ITEM_VIEW, entities=[item], ttl=NO_TTL,
        schema=[Field(name=f, dtype=Float64) for f in ITEM_FEATURES],
        source=FileSource(name=f"{ITEM_VIEW}_source", path=str(data_dir / f"{ITEM_VIEW}.parquet"), timestamp_field="event_timestamp"),
        online=True, description="An item's ratings so far: count, mean, liked share, last rating (daily snapshots).",
        tags={"owner": "kindml", "workload": "recsys"},
    )
    training = FeatureService(name=FEATURE_SERVICE, features=[uview, iview], description="User and item context of every rating (training).")
    batch = FeatureService(name=USER_SERVICE, features=[uview], description="The user's context, for batch scoring of every user.")
    return [user, item, uview, iview, training, batch]


def recommendation_objects(data_dir: Path) -> list[object]:
    """The precomputed-recommendations view (written by the batch stage) and the predictor's feature service."""
    from feast import FeatureService, FeatureView, Field, FileSource
    from feast.types import Array, Float64, Int64

    user, _ = _entities()
    recs = FeatureView(
        name=RECS_VIEW, entities=[user], ttl=NO_TTL,
        schema=[Field(name="rec_items", dtype=Array(Int64)), Field(name="rec_scores", dtype=Array(Float64))],
        source=FileSource(name=f"{RECS_VIEW}_source", path=str(data_dir / f"{RECS_TABLE}.parquet"), timestamp_field="event_timestamp"),
        online=True, description="Top-K items per user precomputed by the batch stage with the served model (best first).",
        tags={"owner": "kindml", "workload": "recsys", "written_by": "batch"},
    )
    serving = FeatureService(name=SERVING_SERVICE, features=[recs, _user_view(data_dir)],
                             description="What the recommendation predictor reads: precomputed top-K, and the user profile for live scoring.")
    return [user, recs, serving]
