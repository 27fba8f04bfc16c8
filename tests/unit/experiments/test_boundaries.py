"""The group-sequential numerics against published values (Jennison & Turnbull 2000 via gsDesign's own tests) and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from kindml.experiments.boundaries import (
    MAX_Z,
    crossing,
    drift_for_power,
    msprt_z,
    next_boundary,
    spending_boundaries,
    spent,
)

pytestmark = pytest.mark.unit

Z975 = norm.isf(0.025)


def _constant_shape(k: int, shape: str, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Classical boundaries: Pocock (constant |Z|) or O'Brien-Fleming (constant S) with K equal looks."""
    ts = np.arange(1, k + 1) / k
    f = np.ones(k) if shape == "pocock" else 1 / np.sqrt(ts)
    c = brentq(lambda c_: crossing(ts, c_ * f).total - alpha, 1.5, 5.0)
    return ts, c * f


def _inflation_and_asn(ts: np.ndarray, cs: np.ndarray, power: float, fractions: tuple[float, ...]) -> tuple[float, list[float]]:
    eta = drift_for_power(ts, cs, power)
    r = (eta / (Z975 + norm.isf(1 - power))) ** 2
    return r, [crossing(ts, cs, drift=eta * f).expected_fraction(ts) * r for f in fractions]


def _pct(x: float) -> float:
    return round(float(x) * 100, 1)


def test_repeated_unadjusted_tests_match_published_type_one_error():
    # gsDesign test.Deming.gsProb: |Z| >= 1.96 at k equal looks, upper-side error 0.042, 0.063, 0.097, 0.124
    for k, want in ((2, 0.042), (4, 0.063), (10, 0.097), (20, 0.124)):
        ts = np.arange(1, k + 1) / k
        assert round(crossing(ts, [Z975] * k).power, 3) == want


def test_classical_pocock_and_obrien_fleming_constants_and_sample_sizes():
    # Jennison & Turnbull tables 2.1 / 2.3 and 2.8 (gsDesign test.JT.Pocock, test.JT.OFss)
    ts, cs = _constant_shape(4, "pocock")
    assert cs[0] == pytest.approx(2.361, abs=5e-4)
    r, asn = _inflation_and_asn(ts, cs, 0.8, (0, 0.5, 1, 1.5))
    # the tables print one decimal of percent; the lattice agrees to within that last digit
    assert _pct(r) == pytest.approx(120.2, abs=0.1)
    assert [_pct(a) for a in asn] == pytest.approx([117.5, 108.8, 80.5, 52.2], abs=0.1)
    ts, cs = _constant_shape(15, "pocock")
    r, asn = _inflation_and_asn(ts, cs, 0.9, (0, 0.5, 1, 1.5))
    assert _pct(r) == pytest.approx(130.5, abs=0.1)
    assert [_pct(a) for a in asn] == pytest.approx([126.4, 111.2, 66.4, 35.4], abs=0.1)
    ts, cs = _constant_shape(5, "obrien_fleming")
    assert cs[-1] == pytest.approx(2.040, abs=5e-4)
    r, asn = _inflation_and_asn(ts, cs, 0.8, (0,))
    assert (_pct(r), _pct(asn[0])) == pytest.approx((102.8, 102.1), abs=0.1)
    ts, cs = _constant_shape(20, "obrien_fleming")
    r, asn = _inflation_and_asn(ts, cs, 0.9, (0,))
    assert (_pct(r), _pct(asn[0])) == pytest.approx((104.5, 103.4), abs=0.1)


def test_lan_demets_obrien_fleming_matches_gsdesign_two_sided_bounds():
    # gsDesign(k=5, test.type=2, sfu=sfLDOF) upper bounds
    cs = spending_boundaries(np.arange(1, 6) / 5, 0.05, "obrien_fleming")
    assert np.round(cs, 3).tolist() == [4.877, 3.357, 2.680, 2.290, 2.031]


@pytest.mark.parametrize("kind", ["obrien_fleming", "pocock"])
def test_spending_boundaries_spend_exactly_alpha_over_uneven_looks(kind):
    ts = np.array([0.013, 0.05, 0.11, 0.3, 0.31, 0.62, 0.9, 1.0])
    cs = spending_boundaries(ts, 0.05, kind)
    cr = crossing(ts, cs)
    assert cr.total == pytest.approx(0.05, abs=1e-6)
    # every look spends its increment of the spending function
    inc = np.diff(np.concatenate([[0.0], spent(kind, 0.05, ts)]))
    assert np.allclose(cr.upper + cr.lower, inc, atol=1e-7)
    assert np.allclose(cr.upper, cr.lower)  # symmetric


def test_spending_functions_start_at_zero_and_end_at_alpha():
    for kind in ("obrien_fleming", "pocock"):
        assert spent(kind, 0.05, 0.0) == 0.0
        assert spent(kind, 0.05, 1.0) == pytest.approx(0.05)
        assert spent(kind, 0.05, 2.0) == pytest.approx(0.05)  # clipped
    assert spent("obrien_fleming", 0.05, 0.5) < spent("pocock", 0.05, 0.5)
    with pytest.raises(ValueError, match="unknown spending"):
        spent("haybittle", 0.05, 0.5)


def test_next_boundary_replays_the_past_exactly():
    ts = np.array([0.02, 0.05, 0.2, 0.21, 0.5, 0.77, 1.0])
    h = 0.00625
    cs = spending_boundaries(ts, 0.05, "obrien_fleming", h=h)
    for k in range(len(ts)):
        assert next_boundary(ts[:k].tolist(), cs[:k].tolist(), ts[k], 0.05, "obrien_fleming", h) == cs[k]


def test_boundaries_agree_with_monte_carlo_brownian_motion():
    rng = np.random.default_rng(7)
    ts = np.array([0.1, 0.25, 0.5, 0.75, 1.0])
    cs = spending_boundaries(ts, 0.05, "pocock")
    steps = np.diff(np.concatenate([[0.0], ts]))
    m = 400_000
    s = np.cumsum(rng.standard_normal((m, ts.size)) * np.sqrt(steps), axis=1)
    z = s / np.sqrt(ts)
    assert np.any(np.abs(z) >= cs, axis=1).mean() == pytest.approx(0.05, abs=0.0015)  # ~4.5 MC standard errors
    eta = 2.5
    z1 = (s + eta * ts) / np.sqrt(ts)
    hit = np.abs(z1) >= cs
    first = np.where(hit.any(1), hit.argmax(1), -1)
    upper = np.mean((first >= 0) & (z1[np.arange(m), np.maximum(first, 0)] > 0))
    assert upper == pytest.approx(crossing(ts, cs, drift=eta).power, abs=0.003)


def test_tiny_spending_is_solved_from_the_marginal_law_and_capped():
    ts = np.array([1e-4, 0.01, 1.0])
    cs = spending_boundaries(ts, 0.05, "obrien_fleming")
    assert cs[0] == MAX_Z  # float64 cannot spend 4Φ(-224): capped, finite, JSON-safe
    assert cs[1] == pytest.approx(norm.isf(spent("obrien_fleming", 0.05, 0.01) / 2), rel=1e-6)
    assert crossing(ts, cs).total == pytest.approx(0.05, abs=1e-6)


def test_msprt_boundary_is_the_mixture_likelihood_ratio_threshold():
    alpha, r, t = 0.05, 4.0, 0.3
    z = msprt_z(alpha, r, t)
    v, tau2 = 1.0 / t, r  # V(t) = V(1)/t with V(1) = 1, τ² = r·V(1)
    theta = z * np.sqrt(v)
    lam = np.sqrt(v / (v + tau2)) * np.exp(tau2 * theta**2 / (2 * v * (v + tau2)))
    assert lam == pytest.approx(1 / alpha)
    # always valid, hence conservative over a finite horizon with discrete looks
    ts = np.arange(1, 101) / 100
    assert crossing(ts, msprt_z(alpha, r, ts)).total < alpha
