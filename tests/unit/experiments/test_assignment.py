"""Sticky assignment: deterministic everywhere, uniform, independent across salts, monotone in the split; routes per mode."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from kindml.experiments.assignment import assign, assign_many, bucket, buckets_of, position, route
from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import parse_spec

pytestmark = pytest.mark.unit

IDS = [f"user-{i}" for i in range(200_000)]
SALT = "exp-2026-ab-7f3a"


@pytest.fixture(scope="module")
def positions() -> np.ndarray:
    return np.array([position(e, SALT) for e in IDS])


def test_positions_are_pinned_across_versions():
    # golden values: a change of hash, encoding or bit extraction reshuffles every running experiment
    assert position("user-1", SALT) == 0.4176894310012096
    assert position(123456789, SALT) == 0.18338280290249498
    assert assign("user-1", SALT, 0.5) == "challenger"
    assert bucket("user-1", SALT, 64) == 43


def test_the_documented_byte_format_reproduces_the_position():
    # docs/experiments.md: BLAKE2b-64, person "kindml.assign", 4-byte big-endian salt length, salt, id; top 53 bits
    h = hashlib.blake2b(digest_size=8, person=b"kindml.assign")
    h.update(len(SALT.encode()).to_bytes(4, "big") + SALT.encode() + b"user-1")
    assert (int.from_bytes(h.digest(), "big") >> 11) / 2**53 == position("user-1", SALT)


def test_same_answer_in_another_process_with_another_hash_seed():
    code = ("import json; from kindml.experiments.assignment import position, bucket; "
            f"print(json.dumps([[position(e, {SALT!r}), bucket(e, {SALT!r}, 64)] for e in ['a', 'user-1', 7, b'x']]))")
    here = [[position(e, SALT), bucket(e, SALT, 64)] for e in ["a", "user-1", 7, b"x"]]
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                             capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == here


def test_positions_are_uniform(positions):
    counts = np.bincount((positions * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001
    assert stats.kstest(positions, "uniform").pvalue > 0.001
    assert positions.min() >= 0.0 and positions.max() < 1.0


@pytest.mark.parametrize("split", [0.01, 0.05, 0.3, 0.5])
def test_challenger_share_matches_the_split(positions, split):
    share = (positions < split).mean()
    se = np.sqrt(split * (1 - split) / positions.size)
    assert abs(share - split) < 4 * se
    assert assign_many(IDS[:5000], SALT, split).tolist() == [p < split for p in positions[:5000]]


def test_assignments_are_independent_across_salts(positions):
    other = np.array([position(e, "another-experiment") for e in IDS])
    table = np.histogram2d(positions < 0.5, other < 0.5, bins=2)[0]
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert abs(np.corrcoef(positions, other)[0, 1]) < 4 / np.sqrt(positions.size)


def test_growing_the_split_keeps_the_challenger_entities(positions):
    at10 = assign_many(IDS, SALT, 0.10)
    at20 = assign_many(IDS, SALT, 0.20)
    assert np.all(at20[at10])  # nobody leaves the challenger when the split grows
    assert at20.sum() > at10.sum()
    assert not assign_many(IDS[:1000], SALT, 0.0).any() and assign_many(IDS[:1000], SALT, 1.0).all()


def test_sticky_for_repeated_requests():
    assert len({assign("card-42", SALT, 0.5) for _ in range(50)}) == 1


def test_variance_buckets_are_uniform_and_independent_of_the_arm(positions):
    b = buckets_of(IDS, SALT, 64)
    assert stats.chisquare(np.bincount(b, minlength=64)).pvalue > 0.001
    table = np.array([np.bincount(b[positions < 0.5], minlength=64), np.bincount(b[positions >= 0.5], minlength=64)])
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_entity_ids_are_canonical_and_bad_ids_are_refused():
    assert position(42, SALT) == position("42", SALT) == position(np.int64(42), SALT) == position(b"42", SALT)
    for bad in (4.2, None, True, ["a"]):
        with pytest.raises(ExperimentError, match="cannot be assigned") as err:
            position(bad, SALT)  # type: ignore[arg-type]
        assert "string" in err.value.hint
    with pytest.raises(ExperimentError, match="not a share"):
        assign("a", SALT, 1.5)


def _spec(**over):
    return parse_spec({"name": "exp", "salt": SALT, "metric": {"baseline": 0.1}, "mde": 0.1, **over})


def test_routes_per_mode():
    ids = [f"e{i}" for i in range(2000)]
    ab = _spec(mode="ab")
    for e in ids[:200]:
        r = route(ab, e)
        assert r.answer == r.arm and r.score == (r.arm,) and r.record == (r.arm,) and not r.shadowed
    shadow = _spec(mode="shadow")
    rs = [route(shadow, e) for e in ids[:200]]
    assert all(r.answer == "champion" and r.shadowed and r.record == ("champion", "challenger") for r in rs)  # split 1.0
    half = _spec(mode="shadow", split=0.5)
    rs = [route(half, e) for e in ids]
    assert all(r.answer == "champion" for r in rs)
    assert all(r.record == () and r.score == ("champion",) for r in rs if r.arm == "champion")
    assert 0.45 < np.mean([r.shadowed for r in rs]) < 0.55
    canary = _spec(mode="canary")  # split 0.05 by default
    share = np.mean([route(canary, e).answer == "challenger" for e in ids])
    assert 0.03 < share < 0.07
