"""Drift math and the sliding window: PSI / JS / KS on known vectors, no drift vs shift, aging, threads, edge cases."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from kindml.errors import MonitoringError
from kindml.monitoring.drift import DriftMonitor, js, ks, psi
from kindml.monitoring.profile import build_profile

pytestmark = pytest.mark.unit

CATS = np.array(["grocery", "travel", "online", "fuel"])


# ---- pure statistics ------------------------------------------------------------------------

def test_psi_known_value_and_symmetry_of_zero():
    # unsmoothed: 0.4 ln 1.8 + 0.4 ln 5 = 0.87889...; the 1e-4 smoothing moves it by < 1e-3
    assert psi([50, 50], [90, 10]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5), rel=1e-3)
    assert psi([3, 7, 0], [30, 70, 0]) == pytest.approx(0.0, abs=1e-12)  # only proportions matter
    assert psi([1, 2, 3], [3, 2, 1]) == pytest.approx(psi([3, 2, 1], [1, 2, 3]))  # PSI is symmetric


def test_psi_smoothing_keeps_empty_bins_finite_and_empty_both_sides_free():
    one_sided = psi([100, 0], [50, 50])
    assert math.isfinite(one_sided) and one_sided > 2  # ~0.5 ln(0.5 / 1e-4)
    assert psi([100, 0, 0], [100, 0, 0]) == 0.0


def test_js_known_values_in_bits():
    assert js([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: 1 bit
    assert js([5, 5], [5, 5]) == 0.0
    from scipy.spatial.distance import jensenshannon

    p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    assert js(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)  # divergence = distance²
    assert js(p, q) == pytest.approx(0.311278, abs=1e-6)


def test_ks_is_the_max_cdf_gap_at_bin_edges():
    assert ks([1, 1, 1, 1], [0, 0, 1, 1]) == pytest.approx(0.5)
    assert ks([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)


def test_binned_ks_never_exceeds_the_exact_statistic():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(0)
    ref, live = rng.normal(size=20_000), rng.normal(0.3, 1.2, size=3000)
    p = build_profile({"x": ref}, {}, np.zeros(ref.size))
    mon = DriftMonitor(p, "m", "1", window=5000)
    mon.observe({"x": live}, {}, np.zeros(live.size))
    binned = mon.report().features["x"]["ks"]
    exact = ks_2samp(ref, live).statistic
    assert binned <= exact + 1e-12
    assert binned > 0.8 * exact  # a location/scale shift is mostly visible at decile edges


def test_empty_side_is_nan_and_bad_input_raises():
    assert math.isnan(psi([0, 0], [1, 1])) and math.isnan(js([1, 1], [0, 0])) and math.isnan(ks([0], [0]))
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        psi([1, -1], [1, 1])


# ---- the monitor ----------------------------------------------------------------------------

def _world(rng, n, shift=0.0, new_category=0.0):
    amount = rng.lognormal(3.0 + shift, 1.0, n)
    night = (rng.random(n) < 0.1).astype(np.float64)
    cat = rng.choice(CATS, n, p=[0.4, 0.1, 0.3, 0.2])
    if new_category:
        cat = np.where(rng.random(n) < new_category, "crypto", cat)
    score = 1 / (1 + np.exp(-(np.log(amount) - 5 + night)))
    return {"log_amount": np.log(amount), "is_night": night, "const": np.ones(n)}, {"merchant_category": cat}, score


@pytest.fixture(scope="module")
def profile():
    return build_profile(*_world(np.random.default_rng(42), 50_000))


def test_same_distribution_reports_no_drift(profile):
    rng = np.random.default_rng(7)
    mon = DriftMonitor(profile, "fraud", "3")
    for _ in range(50):
        mon.observe(*_world(rng, 100))
    rep = mon.report()
    assert rep.ready and rep.samples == 5000
    for feature, stats in rep.features.items():
        assert stats["psi"] < 0.02, feature
        assert stats["js"] < 0.01, feature
        assert stats.get("ks", 0.0) < 0.03, feature
    assert rep.prediction["psi"] < 0.02
    assert set(rep.features["log_amount"]) == {"psi", "js", "ks"}
    assert set(rep.features["merchant_category"]) == {"psi", "js"}  # no KS for unordered categories


def test_mean_shift_and_new_category_are_detected(profile):
    rng = np.random.default_rng(8)
    mon = DriftMonitor(profile, "fraud", "3")
    mon.observe(*_world(rng, 5000, shift=0.75, new_category=0.2))
    rep = mon.report()
    assert rep.features["log_amount"]["psi"] > 0.2
    assert rep.features["log_amount"]["ks"] > 0.2
    assert rep.features["merchant_category"]["psi"] > 0.2
    assert rep.features["is_night"]["psi"] < 0.02  # untouched features stay quiet
    assert rep.prediction["psi"] > 0.2


def test_constant_column_drifts_only_when_it_moves(profile):
    rng = np.random.default_rng(9)
    mon = DriftMonitor(profile, "fraud", "3", window=1000)
    num, cat, s = _world(rng, 1000)
    mon.observe(num, cat, s)
    assert mon.report().features["const"] == {"psi": 0.0, "js": 0.0, "ks": 0.0}
    num["const"] = np.full(1000, 2.0)
    mon.observe(num, cat, s)
    assert mon.report().features["const"]["ks"] == pytest.approx(1.0)


def test_window_ages_out_old_data_in_whole_sub_windows(profile):
    rng = np.random.default_rng(10)
    mon = DriftMonitor(profile, "fraud", "3", window=1000, buckets=10)
    assert (mon.sub_window, mon.capacity) == (100, 1000)
    mon.observe(*_world(rng, 1000, shift=2.0))
    assert mon.report().features["log_amount"]["psi"] > 1.0
    mon.observe(*_world(rng, 850))  # 8.5 sub-windows of clean data: 9 drifted sub-windows rotated out
    assert mon.window_samples() == 950
    mon.observe(*_world(rng, 50))  # fills the ring: 100 drifted + 900 clean rows
    assert mon.window_samples() == 1000
    mixed = mon.report().features["log_amount"]["psi"]
    mon.observe(*_world(rng, 1))  # rotation drops the last drifted sub-window at once
    assert mon.window_samples() == 901
    ref, live = mon.counts("log_amount")
    clean = mon.report().features["log_amount"]["psi"]
    assert clean < 0.03 and clean < mixed / 2
    assert live.sum() == 901 and ref.sum() == 50_000


def test_memory_is_fixed(profile):
    mon = DriftMonitor(profile, "fraud", "3", window=5000, buckets=10)
    before = mon.memory_bytes
    rng = np.random.default_rng(0)
    for _ in range(30):
        mon.observe(*_world(rng, 1000))
    assert mon.memory_bytes == before < 64_000
    assert mon.window_samples() <= mon.capacity and mon.samples_seen == 30_000


def test_min_samples_gate(profile):
    mon = DriftMonitor(profile, "fraud", "3", window=5000, min_samples=300)
    rng = np.random.default_rng(1)
    mon.observe(*_world(rng, 299))
    rep = mon.report()
    assert not rep.ready and rep.features == {} and rep.prediction == {} and rep.samples == 299
    mon.observe(*_world(rng, 1))
    assert mon.report().ready
    assert DriftMonitor(profile, "m", "1", window=200).min_samples == 200  # capped by the capacity


def test_one_row_path_bins_exactly_like_the_batch_path(profile):
    rng = np.random.default_rng(11)
    num, cat, s = _world(rng, 400, shift=0.3, new_category=0.1)
    num["log_amount"][::7] = np.nan
    num["log_amount"][3] = np.inf
    batch = DriftMonitor(profile, "m", "1", window=1000)
    single = DriftMonitor(profile, "m", "1", window=1000)
    batch.observe(num, cat, s)
    for i in range(400):
        single.observe({k: v[i:i + 1] for k, v in num.items()}, {k: v[i:i + 1] for k, v in cat.items()}, s[i:i + 1])
    assert np.array_equal(batch.window_counts()[0], single.window_counts()[0])
    # scalar values and lists are accepted for one row too
    single.observe({"log_amount": 3.0, "is_night": [0.0]}, {"merchant_category": "fuel"}, [0.2])


def test_missing_numeric_counts_as_missing_unknown_features_are_ignored(profile):
    mon = DriftMonitor(profile, "m", "1", window=1000, min_samples=10)
    num, cat, s = _world(np.random.default_rng(12), 100)
    del num["is_night"]
    num["not_in_profile"] = np.zeros(100)
    mon.observe(num, {}, s)
    ref, live = mon.counts("is_night")
    assert live[-1] == 100  # the missing bin
    _, live_cat = mon.counts("merchant_category")
    assert live_cat[-1] == 100  # absent categorical -> __other__
    assert "not_in_profile" not in mon.report().features


def test_length_mismatch_is_an_error(profile):
    mon = DriftMonitor(profile, "m", "1")
    num, cat, s = _world(np.random.default_rng(0), 10)
    num["log_amount"] = num["log_amount"][:5]
    with pytest.raises(ValueError, match="log_amount"):
        mon.observe(num, cat, s)


def test_bad_window_is_a_monitoring_error(profile):
    with pytest.raises(MonitoringError):
        DriftMonitor(profile, "m", "1", window=5, buckets=10)


def test_thread_safety_no_lost_updates(profile):
    mon = DriftMonitor(profile, "m", "1", window=1_000_000, buckets=10)
    rng = np.random.default_rng(13)
    batches = [_world(rng, n) for n in (1, 7, 64, 1)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(300):
                mon.observe(*batches[i % 4])
                if i % 50 == 0:
                    mon.report()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = 8 * 75 * (1 + 7 + 64 + 1)
    total, rows = mon.window_counts()
    assert rows == mon.samples_seen == expected
    assert total.sum() == expected * (len(mon.features) + 1)  # one bin per feature and the score per row


@pytest.mark.parametrize("n", [3, 255, 256, 2000])
def test_all_binning_paths_agree_on_edges_atoms_nan_and_inf(n):
    """Batches (branch-free comparisons or searchsorted) and single rows (bisect) bin identically, also exactly at edges."""
    rng = np.random.default_rng(n)
    ref = np.where(rng.random(5000) < 0.5, 0.0, rng.normal(size=5000))
    p = build_profile({"x": ref}, {}, rng.random(5000))
    edges = np.asarray(p["numeric"]["x"]["edges"])
    special = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [np.nan, np.inf, -np.inf, 0.0]])
    x = np.resize(np.concatenate([special, rng.normal(size=n)]), n)
    batch = DriftMonitor(p, "m", "1", window=10_000)
    batch.observe({"x": x}, {}, np.zeros(n))
    rows = DriftMonitor(p, "m", "1", window=10_000)
    for v in x:
        rows.observe({"x": np.array([v])}, {}, np.zeros(1))
    expected = np.bincount(np.where(np.isnan(x), edges.size + 1, np.searchsorted(edges, x, side="right")), minlength=edges.size + 2)
    assert np.array_equal(batch.counts("x")[1], expected)
    assert np.array_equal(rows.counts("x")[1], expected)
