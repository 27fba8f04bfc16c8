"""Ranking metrics (recall@K, NDCG@K, precision@K, coverage) and the popularity baseline on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from kindml.model.metrics import (
    coverage,
    ndcg_at_k,
    popularity_ranking,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)


def test_recall_at_k_counts_hits_in_the_first_k_over_all_relevant() -> None:
    rec = [5, 3, 9, 1, 7]
    assert recall_at_k(rec, {3, 7, 8}, 5) == pytest.approx(2 / 3)  # 3 and 7 found, 8 missed
    assert recall_at_k(rec, {3, 7, 8}, 2) == pytest.approx(1 / 3)  # only 3 is in the first two
    assert recall_at_k(rec, {4}, 5) == 0.0
    assert recall_at_k(rec, set(), 5) == 0.0  # nothing relevant: defined as 0, left out by ranking_metrics
    assert recall_at_k([1, 2], {1, 2}, 10) == 1.0  # a short list


def test_precision_at_k_counts_empty_slots_as_misses() -> None:
    assert precision_at_k([5, 3, 9, 1], {3, 1}, 4) == 0.5
    assert precision_at_k([5, 3, 9, 1], {3, 1}, 2) == 0.5
    assert precision_at_k([3], {3}, 4) == 0.25
    with pytest.raises(ValueError):
        precision_at_k([1], {1}, 0)


def test_ndcg_at_k_by_hand() -> None:
    # hits at ranks 1 and 3: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5; ideal with 2 relevant: 1 + 1/log2(3)
    assert ndcg_at_k([3, 5, 7], {3, 7}, 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # a single hit at rank 2 of 1 relevant: (1/log2(3)) / 1
    assert ndcg_at_k([5, 3], {3}, 2) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([3, 7], {3, 7}, 2) == pytest.approx(1.0)  # perfect order
    # more relevant items than k: the ideal list is cut at k
    assert ndcg_at_k([1, 2], {1, 2, 3, 4}, 2) == pytest.approx(1.0)
    assert ndcg_at_k([9, 8], {1}, 2) == 0.0


def test_coverage_is_the_share_of_the_catalogue_recommended() -> None:
    assert coverage([[1, 2, 3], [2, 3, 4]], catalogue=10, k=3) == pytest.approx(0.4)
    assert coverage([[1, 2, 3], [2, 3, 4]], catalogue=10, k=1) == pytest.approx(0.2)  # items 1 and 2
    with pytest.raises(ValueError):
        coverage([[1]], catalogue=0, k=1)


def test_ranking_metrics_average_over_users_with_relevant_items() -> None:
    m = ranking_metrics([[1, 2], [3, 4], [5, 6]], [{1}, {4, 9}, set()], catalogue=8, k=2, curve=(1, 2, 5))
    assert m["users"] == 2  # the third user has nothing relevant
    assert m["recall_at_2"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["precision_at_2"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["ndcg_at_2"] == pytest.approx((1.0 + (1 / math.log2(3)) / (1 + 1 / math.log2(3))) / 2)
    assert m["coverage"] == pytest.approx(4 / 8)
    assert m["curve"]["k"] == [1, 2]  # K beyond the list length is not plotted
    assert m["curve"]["recall"] == pytest.approx([0.5, 0.75])
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics([[1]], [set()], catalogue=3)


def test_popularity_ranking_skips_what_each_user_has() -> None:
    log = [7, 7, 7, 3, 3, 5, 5, 9]  # 7 most frequent, then 3 and 5 tied (smaller id first), then 9
    assert popularity_ranking(log, 3, [set(), {7}, {3, 5, 7, 9}]) == [[7, 3, 5], [3, 5, 9], []]
