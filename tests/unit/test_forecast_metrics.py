"""WAPE, sMAPE and MASE on cases computed by hand."""

from __future__ import annotations

import math

import pytest

from kindml.model.metrics import forecast_metrics, mase, seasonal_naive_scale, smape, wape

pytestmark = pytest.mark.unit


def test_wape_is_total_absolute_error_over_total_actuals() -> None:
    # |10-8| + |0-1| + |5-5| = 3 over 10 + 0 + 5 = 15
    assert wape([10, 0, 5], [8, 1, 5]) == pytest.approx(0.2)
    assert wape([[1, 2], [3, 4]], [[1, 2], [3, 4]]) == 0.0
    assert math.isnan(wape([0, 0], [1, 2]))  # no demand at all: undefined, not infinite


def test_smape_per_point_with_both_zero_counting_as_perfect() -> None:
    # 2*2/18, 2*1/1, 2*0/10 → (2/9 + 2 + 0) / 3 = 20/27
    assert smape([10, 0, 5], [8, 1, 5]) == pytest.approx(20 / 27)
    assert smape([0, 0], [0, 0]) == 0.0
    assert smape([1], [0]) == pytest.approx(2.0)  # the bound


def test_mase_scales_each_series_by_its_seasonal_naive_error() -> None:
    # history [1,2,3,4,6], season 2: |3-1|, |4-2|, |6-3| → 7/3
    assert seasonal_naive_scale([1, 2, 3, 4, 6], 2) == pytest.approx(7 / 3)
    assert math.isnan(seasonal_naive_scale([1, 2], 2))
    # series 1: MAE 0.5 / (7/3) = 3/14; series 2: a constant history (scale 0) is left out; series 3: history [0,2,4,6] → |4-0|, |6-2| = 4, MAE 2 / 4 = 0.5
    got = mase([[4, 6], [5], [2]], [[5, 6], [4], [0]], [[1, 2, 3, 4, 6], [5, 5, 5], [0, 2, 4, 6]], season=2)
    assert got == pytest.approx((3 / 14 + 0.5) / 2)
    assert math.isnan(mase([[1]], [[2]], [[3, 3, 3]], season=1))


def test_forecast_metrics_pool_points_for_wape_and_average_series_for_mase() -> None:
    m = forecast_metrics([[10, 0], [5]], [[8, 1], [5]], [[9, 10, 11, 12], [4, 6, 4, 6]], season=2)
    assert m["wape"] == pytest.approx(0.2) and m["smape"] == pytest.approx(20 / 27)
    # series 1: MAE 1.5 / scale 2; series 2: MAE 0 / scale 0 → left out
    assert m["mase"] == pytest.approx(0.75)
    assert m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["series"] == 2 and m["points"] == 3
    with pytest.raises(ValueError, match="no forecast point"):
        forecast_metrics([], [], [], season=7)
