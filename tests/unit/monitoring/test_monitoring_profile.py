"""Reference profiles: quantile edges (ties, constants, flags), categories with __other__, JSON round trip, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kindml.errors import DataError, MonitoringError
from kindml.monitoring.profile import (
    OTHER,
    build_profile,
    load_profile,
    quantile_edges,
    save_profile,
    validate_profile,
)

pytestmark = pytest.mark.unit


def _bins(edges, values):
    return np.searchsorted(np.asarray(edges), np.asarray(values, dtype=float), side="right")


def test_continuous_column_gets_decile_bins_with_equal_counts():
    x = np.random.default_rng(0).normal(size=10_000)
    p = build_profile({"x": x}, {}, np.random.default_rng(1).random(10_000), bins=10)
    ref = p["numeric"]["x"]
    assert len(ref["edges"]) == 9 and len(ref["counts"]) == 10
    assert ref["counts"] == [1000] * 10
    assert sum(ref["counts"]) + ref["missing"] == p["rows"] == 10_000
    assert sum(ref["proportions"]) == pytest.approx(1.0)


def test_values_outside_the_training_range_fall_into_the_end_bins():
    edges = quantile_edges(np.arange(100.0), 10)
    assert list(_bins(edges, [-1e9, 1e9, -np.inf, np.inf])) == [0, len(edges), 0, len(edges)]


def test_constant_column_gets_below_equal_and_above_bins():
    edges = quantile_edges(np.full(1000, 3.5), 10)
    assert list(_bins(edges, [3.0, 3.5, 4.0])) == [0, 1, 2]
    p = build_profile({"c": np.full(1000, 3.5)}, {}, np.zeros(1000))
    assert p["numeric"]["c"]["counts"] == [0, 1000, 0]


def test_binary_flag_gets_one_bin_per_value():
    x = (np.random.default_rng(0).random(5000) < 0.03).astype(float)
    edges = quantile_edges(x, 10)
    assert list(_bins(edges, [0.0, 1.0])) == [1, 3]  # {0} and {1} are bins of their own
    assert _bins(edges, [0.5])[0] == 2  # something in between is neither


def test_heavy_atom_is_isolated_from_the_continuous_part():
    rng = np.random.default_rng(0)
    x = np.where(rng.random(20_000) < 0.6, 0.0, rng.exponential(size=20_000))
    edges = quantile_edges(x, 10)
    assert len(edges) == len(set(edges)) and all(np.diff(edges) > 0)
    b0, b_small = _bins(edges, [0.0, 1e-6])
    assert b0 != b_small  # the zeros have their own bin
    # the atom's bin holds exactly the zeros
    counts = np.bincount(_bins(edges, x), minlength=len(edges) + 1)
    assert counts[b0] == int((x == 0).sum())


def test_nan_is_counted_as_missing_and_inf_in_the_end_bins():
    x = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0] * 100)
    p = build_profile({"x": x}, {}, np.zeros(x.size))
    ref = p["numeric"]["x"]
    assert ref["missing"] == 100
    assert sum(ref["counts"]) == 500


def test_categories_sorted_with_other_last_and_capped():
    vals = np.array(["b"] * 50 + ["a"] * 30 + ["c"] * 20 + ["__other__"] * 5)
    ref = build_profile({}, {"k": vals}, np.zeros(vals.size))["categorical"]["k"]
    assert ref["categories"] == ["a", "b", "c", OTHER]
    assert ref["counts"] == [30, 50, 20, 5]  # a literal "__other__" is just an unseen value
    many = np.array([f"m{i:03d}" for i in range(200)] * 3 + ["m000"] * 10)
    capped = build_profile({}, {"m": many}, np.zeros(many.size), max_categories=64)["categorical"]["m"]
    assert len(capped["categories"]) == 65 and capped["categories"][-1] == OTHER
    assert "m000" in capped["categories"]  # the most frequent one survives the cap
    assert sum(capped["counts"]) == many.size and capped["counts"][-1] > 0


def test_json_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    x = np.where(rng.random(3000) < 0.5, 0.1, rng.normal(size=3000)).astype(np.float32).astype(np.float64)
    p = build_profile({"x": x}, {"c": rng.choice(["u", "v"], 3000)}, rng.random(3000))
    path = save_profile(p, tmp_path / "reference_profile.json")
    assert load_profile(path) == p
    json.loads(path.read_text())  # plain JSON


def test_mismatched_lengths_and_empty_input_are_data_errors():
    with pytest.raises(DataError, match="'x'"):
        build_profile({"x": np.zeros(3)}, {}, np.zeros(4))
    with pytest.raises(DataError):
        build_profile({}, {}, np.zeros(0))


def test_invalid_profiles_are_rejected_with_the_field(tmp_path):
    p = build_profile({"x": np.arange(100.0)}, {"c": np.array(["a"] * 100)}, np.zeros(100))
    bad = json.loads(json.dumps(p))
    bad["numeric"]["x"]["edges"] = bad["numeric"]["x"]["edges"][::-1]
    with pytest.raises(MonitoringError, match="increasing"):
        validate_profile(bad)
    extra = dict(p, surprise=1)
    with pytest.raises(MonitoringError, match="surprise"):
        validate_profile(extra)
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(MonitoringError, match="cannot read"):
        load_profile(tmp_path / "broken.json")
    with pytest.raises(MonitoringError, match="does not exist"):
        load_profile(tmp_path / "missing.json")
