"""Group-sequential numerics: a Brownian motion watched at a sequence of looks, and its boundaries.

The canonical model (Jennison & Turnbull 2000, ch. 3 and 19)
    Whatever the metric, an efficient test statistic observed at information
    fractions ``0 < t_1 < ... < t_K <= 1`` behaves (asymptotically) like a
    Brownian motion: the *score process* ``S(t) = Z(t)·sqrt(t)`` has independent
    Gaussian increments, ``S(t) - S(u) ~ N(η·(t - u), t - u)``, where ``η`` is the
    drift (0 under the null hypothesis; ``δ / sd(θ̂ at t = 1)`` under an effect
    ``δ``). A two-sided test stops at the first look ``k`` with ``|Z_k| >= c_k``,
    i.e. ``|S(t_k)| >= b_k = c_k·sqrt(t_k)``.

The recursion (:class:`Recursion`)
    The probability of crossing at look ``k`` without having crossed before is
    an integral over the *sub-density* of ``S(t_{k-1})`` on the continuation
    region (Armitage, McPherson & Rowe 1969). Here that sub-density lives on a
    uniform lattice of cells of width ``h`` (masses, not density values): one
    look moves every cell's mass by the exact Gaussian cell-to-cell transition
    probabilities (a convolution with ``Φ`` differences, so mass is conserved to
    rounding), then the mass beyond ``±b_k`` is removed -- counted as an upper or
    lower crossing -- with the cell that straddles the boundary split linearly.
    Rounding each step's mass to cell centres adds at most ``h²/12`` of variance
    per look; with ``h <= sd(smallest increment)/8`` (and at most 0.01) the
    crossing probabilities agree with the published tables to about 1e-4 (see
    ``tests/unit/experiments/test_boundaries.py``).

Spending boundaries (Lan & DeMets 1983)
    :func:`spent` is the cumulative two-sided type-I error ``α(t)`` a design may
    have spent by information fraction ``t``; ``α(1) = α``. At each look the
    boundary ``c_k`` is solved so that ``P(first crossing at k | H0) = α(t_k) -
    α(t_{k-1})`` given the boundaries actually used before -- so neither the
    number nor the timing of looks has to be fixed in advance (only
    independent of the data). The boundaries are symmetric: each side spends
    half, with the one-sided spending function at level ``α/2`` (the
    convention of gsDesign's ``test.type = 2``). Two spending functions:

    - ``obrien_fleming``: per side ``2 - 2Φ(z_{1-α/4} / sqrt(t))``, the
      first-passage law of a constant ``S``-boundary ``z_{1-α/4}`` -- the
      continuous-monitoring limit of O'Brien & Fleming. Spends almost nothing
      early; the last boundary stays near the fixed-horizon ``z`` (2.03 with 5
      looks, 2.19 with 100 at α = 5 %, against 1.96);
    - ``pocock``: per side ``(α/2)·ln(1 + (e - 1)·t)``. Spends evenly; stops
      earlier under a large effect, costs more samples at the end.

mSPRT boundaries (Johari, Pekelis & Walsh 2017/2022)
    :func:`msprt_z` is the ``|Z|`` at which the mixture likelihood ratio with a
    ``N(0, τ²)`` mixing distribution reaches ``1/α`` (see
    :mod:`kindml.experiments.sequential`); fed to the same recursion it gives
    that test's exact error and power over a finite horizon.

Everything here is pure numpy/scipy; nothing happens at import time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

SPENDING_FUNCTIONS = ("obrien_fleming", "pocock")
# |Z| boundaries are capped here: a spending increment too small for float64
# (an OBF look at t < ~0.002) would otherwise give an infinite boundary.
MAX_Z = 50.0
# Below this the crossing probability is solved from the marginal N(0, t) law
# instead of the lattice (the lattice's tails are cut at KERNEL_SDS sds).
TINY = 1e-15
KERNEL_SDS = 10.0
MAX_CELL = 0.01
CELLS_PER_SD = 8.0


def spent(kind: str, alpha: float, t: float | np.ndarray) -> float | np.ndarray:
    """Cumulative two-sided type-I error spent by information fraction ``t`` (clipped to [0, 1])."""
    tt = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obrien_fleming":
        with np.errstate(divide="ignore"):
            z = ndtri(1.0 - alpha / 4.0) / np.sqrt(tt)
        out = np.where(tt > 0, 4.0 * ndtr(-z), 0.0)
    elif kind == "pocock":
        out = alpha * np.log1p((math.e - 1.0) * tt)
    else:
        raise ValueError(f"unknown spending function {kind!r}; use one of {SPENDING_FUNCTIONS}")
    return float(out) if np.ndim(out) == 0 else out


def msprt_z(alpha: float, r: float | np.ndarray, t: float | np.ndarray) -> float | np.ndarray:
    """``|Z|`` at which the normal-mixture SPRT rejects, at information fraction ``t``.

    ``r = τ² / V(t = 1)`` is the mixing variance in units of the estimator's
    variance at the horizon, so ``τ² / V(t) = r·t``. From
    ``Λ = sqrt(V/(V+τ²))·exp(τ²θ̂² / (2V(V+τ²))) >= 1/α``:
    ``Z² >= (1 + 1/(r·t))·(2·ln(1/α) + ln(1 + r·t))``.
    """
    rt = np.asarray(r, dtype=float) * np.asarray(t, dtype=float)
    z = np.sqrt((1.0 + 1.0 / rt) * (2.0 * math.log(1.0 / alpha) + np.log1p(rt)))
    return float(z) if np.ndim(z) == 0 else z


def cell_width(ts: Sequence[float]) -> float:
    """Lattice cell width for a look schedule: at most 0.01 and 1/8 of the smallest increment's sd."""
    steps = np.diff(np.concatenate([[0.0], np.asarray(ts, dtype=float)]))
    smallest = float(steps[steps > 0].min()) if np.any(steps > 0) else 1.0
    return min(MAX_CELL, math.sqrt(smallest) / CELLS_PER_SD)


def _kernel(delta: float, drift: float, h: float) -> tuple[int, np.ndarray]:
    """Cell-to-cell transition probabilities of an N(drift·delta, delta) step: (first offset, masses)."""
    sd = math.sqrt(delta)
    mu = drift * delta
    lo = math.floor((mu - KERNEL_SDS * sd) / h)
    hi = math.ceil((mu + KERNEL_SDS * sd) / h)
    d = np.arange(lo, hi + 1)
    a = ((d - 0.5) * h - mu) / sd
    b = ((d + 0.5) * h - mu) / sd
    # survival differences in the upper tail keep tiny masses accurate
    p = np.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
    return lo, p


class Recursion:
    """The sub-density of ``S(t)`` on paths that have not crossed yet, advanced look by look.

    ``drift`` is ``η`` (0 under H0). Boundaries are given on the ``|Z|`` scale;
    ``scale`` multiplies them on the ``S`` scale (``b = c·sqrt(t)·scale``), which
    is how a statistic standardised by a variance other than the true one is
    handled (see :func:`kindml.experiments.sequential.design`).
    """

    def __init__(self, h: float, drift: float = 0.0, scale: float = 1.0) -> None:
        self.h = float(h)
        self.drift = float(drift)
        self.scale = float(scale)
        self.t = 0.0
        self.first = 0  # lattice index of mass[0]
        self.mass = np.ones(1)

    @property
    def alive(self) -> float:
        """Probability of not having crossed any boundary so far."""
        return float(self.mass.sum())

    def _advance(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if t <= self.t:
            raise ValueError(f"looks must move forward in information: {t} after {self.t}")
        k0, kern = _kernel(t - self.t, self.drift, self.h)
        conv = np.convolve(self.mass, kern)
        x = (np.arange(conv.size) + self.first + k0) * self.h
        return x, conv

    def _split(self, x: np.ndarray, conv: np.ndarray, b: float) -> tuple[np.ndarray, float, float]:
        h = self.h
        up = np.clip((x + h / 2 - b) / h, 0.0, 1.0)
        down = np.clip((-b - (x - h / 2)) / h, 0.0, 1.0)
        keep = np.clip(1.0 - up - down, 0.0, 1.0)
        return conv * keep, float(conv @ up), float(conv @ down)

    def _commit(self, t: float, x: np.ndarray, kept: np.ndarray) -> None:
        nz = np.flatnonzero(kept > 0)
        if nz.size == 0:
            self.mass, self.first = np.zeros(1), 0
        else:
            self.mass = kept[nz[0]: nz[-1] + 1].copy()
            self.first = int(round(x[nz[0]] / self.h))
        self.t = t

    def step(self, t: float, c: float) -> tuple[float, float]:
        """Look at ``t`` with the boundary ``|Z| >= c``: (upper, lower) first-crossing probabilities."""
        x, conv = self._advance(t)
        kept, up, down = self._split(x, conv, c * math.sqrt(t) * self.scale)
        self._commit(t, x, kept)
        return up, down

    def solve(self, t: float, target: float) -> float:
        """Look at ``t`` with the two-sided boundary that spends ``target``; returns ``c`` (|Z| scale).

        Only meaningful under H0 (``drift == 0``, ``scale == 1``). A target below
        :data:`TINY` is solved from the marginal law of ``S(t)`` (the earlier
        looks cannot matter at that level), and the boundary is capped at
        :data:`MAX_Z`.
        """
        x, conv = self._advance(t)
        root_t = math.sqrt(t)
        if target < TINY:
            c = MAX_Z if target <= 0 else min(MAX_Z, float(-ndtri(target / 2.0)))
        else:
            def excess(c_: float) -> float:
                _, up, down = self._split(x, conv, c_ * root_t)
                return up + down - target

            lo_c, hi_c = 1e-6, MAX_Z
            if excess(lo_c) <= 0:  # cannot spend that much: everything still alive crosses
                c = lo_c
            elif excess(hi_c) >= 0:
                c = hi_c
            else:
                c = brentq(excess, lo_c, hi_c, xtol=1e-10, rtol=1e-12)
        kept, _, _ = self._split(x, conv, c * root_t)
        self._commit(t, x, kept)
        return c


def spending_boundaries(ts: Sequence[float], alpha: float, kind: str, h: float | None = None) -> np.ndarray:
    """Two-sided ``|Z|`` boundaries at the looks ``ts`` spending ``alpha`` with spending function ``kind``."""
    ts = [float(t) for t in ts]
    rec = Recursion(h or cell_width(ts))
    out, before = [], 0.0
    for t in ts:
        now = float(spent(kind, alpha, t))
        out.append(rec.solve(t, now - before))
        before = now
    return np.asarray(out)


def next_boundary(past_t: Sequence[float], past_c: Sequence[float], t: float, alpha: float, kind: str,
                  h: float) -> float:
    """The boundary for a new look at ``t``, given the looks (and boundaries) actually taken before.

    Replays the recursion through the past looks with the boundaries that were
    used, then spends ``α(t) - α(t_last)``. With the same ``h`` this returns
    exactly what :func:`spending_boundaries` returns for the whole schedule.
    """
    rec = Recursion(h)
    for tp, cp in zip(past_t, past_c, strict=True):
        rec.step(tp, cp)
    before = float(spent(kind, alpha, past_t[-1])) if len(past_t) else 0.0
    return rec.solve(t, float(spent(kind, alpha, t)) - before)


@dataclass(frozen=True)
class Crossing:
    """Operating characteristics of boundaries ``c`` at looks ``t`` under one drift."""

    upper: np.ndarray  # P(first crossing at look k, upwards)
    lower: np.ndarray

    @property
    def power(self) -> float:
        return float(self.upper.sum())

    @property
    def total(self) -> float:
        return float(self.upper.sum() + self.lower.sum())

    def expected_fraction(self, ts: Sequence[float]) -> float:
        """E[information fraction at stopping], running to t = 1 when nothing is crossed."""
        ts = np.asarray(ts, dtype=float)
        stop = self.upper + self.lower
        return float(stop @ ts + (1.0 - stop.sum()) * max(1.0, float(ts[-1])))


def crossing(ts: Sequence[float], cs: Sequence[float], drift: float = 0.0, scale: float = 1.0,
             h: float | None = None) -> Crossing:
    """First-crossing probabilities of the boundaries ``|Z_k| >= c_k`` at looks ``t_k`` under ``drift``."""
    rec = Recursion(h or cell_width(ts), drift=drift, scale=scale)
    ups, downs = [], []
    for t, c in zip(ts, cs, strict=True):
        u, d = rec.step(float(t), float(c))
        ups.append(u)
        downs.append(d)
    return Crossing(np.asarray(ups), np.asarray(downs))


def drift_for_power(ts: Sequence[float], cs: Sequence[float], power: float, scale: float = 1.0,
                    h: float | None = None) -> float:
    """The drift ``η`` at which the upper boundary is crossed with probability ``power``."""
    h = h or cell_width(ts)

    def gap(eta: float) -> float:
        return crossing(ts, cs, drift=eta, scale=scale, h=h).power - power

    hi = 1.0
    while gap(hi) < 0:
        hi *= 2.0
        if hi > 1e3:
            raise ValueError("no drift reaches that power with these boundaries")
    return brentq(gap, 0.0, hi, xtol=1e-7)
