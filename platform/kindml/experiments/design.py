"""The design shown before an experiment starts: how many labelled outcomes it needs, and what it can detect.

For a rate metric (successes out of labelled outcomes per arm) with champion
rate ``p0``, challenger rate ``p1 = p0 ± MDE`` and challenger share ``s``:

- the estimator ``θ̂ = p̂1 - p̂0`` has variance ``V1/n`` over ``n`` outcomes in
  total, ``V1 = p0·q0/(1-s) + p1·q1/s`` (shadow: ``p0·q0 + p1·q1`` per paired
  request -- the independence bound, conservative when the two models agree
  more than chance);
- the test standardises ``θ̂`` by the variance the configured estimator
  targets: under ``variance: binomial`` the pooled null variance
  ``V0 = p̄q̄·(1/(1-s) + 1/s)`` (shadow: McNemar's ``(p0q1 + p1q0)``), whose
  ratio ``ρ = V0/V1`` to the true variance is carried into the power
  computation exactly; under ``variance: cluster`` the unpooled variance from
  entity buckets (``ρ = 1``) with Satterthwaite degrees of freedom, whose
  boundaries are converted to the t scale (Jennison & Turnbull 2000, §3.8);
- the looks are planned every ``look_every`` of the information up to 1, the
  boundaries come from :mod:`kindml.experiments.boundaries`, and the drift
  ``η*`` that crosses the upper boundary with probability ``power`` is solved
  on the same lattice. Then ``n = design_effect · η*² · V1 / MDE²``.

The same recursion gives the expected stopping size under the effect and under
no effect, and the power of a smaller budget (``max_samples``). For an AUC the
design is the fixed-horizon DeLong test sized with the Hanley & McNeil (1982)
variance (:mod:`kindml.experiments.auc`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtri
from scipy.stats import norm
from scipy.stats import t as student_t

from kindml.experiments.boundaries import crossing, drift_for_power, msprt_z, spending_boundaries
from kindml.experiments.spec import ExperimentSpec


@dataclass(frozen=True)
class Design:
    """What an experiment needs and what it can detect, computed from its spec alone."""

    metric: str
    kind: str  # rate | auc
    mode: str
    method: str  # gsd | msprt | fixed (auc)
    spending: str | None
    alpha: float
    power: float
    baseline: float
    target: float
    effect: float  # target - baseline
    split: float
    paired: bool
    fixed_total: int  # a single test at the end would need this many
    required_total: int  # this design needs this many for `power` at `effect`
    budget_total: int  # the horizon actually used (max_samples, or required_total)
    budget_per_arm: tuple[int, int]  # (champion, challenger) at the horizon
    power_at_budget: float
    expected_total_effect: float  # E[outcomes at stopping] under the effect
    expected_total_null: float  # ... and under no effect
    looks: int  # planned formal looks
    final_z: float  # |Z| boundary at the last look (normal scale)
    tau: float | None = None  # msprt mixing sd (absolute difference)
    df: float | None = None  # cluster variance: degrees of freedom
    variance_ratio: float = 1.0  # ρ
    h: float = 0.01  # lattice cell width of the recursion (kept so every look uses the same)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["budget_per_arm"] = list(self.budget_per_arm)
        d["notes"] = list(self.notes)
        return d

    def describe(self) -> str:
        """The design in a few lines, to show before the experiment starts."""
        arms = "paired requests (both models score each)" if self.paired else \
            f"champion {self.budget_per_arm[0]:,} + challenger {self.budget_per_arm[1]:,}"
        what = {"gsd": f"group-sequential, {self.spending} alpha spending, a formal look every "
                       f"{100 / max(self.looks, 1):.2g} % of the budget",
                "msprt": f"mixture SPRT (always valid, τ = {self.tau:.4g})" if self.tau else "mixture SPRT",
                "fixed": "one DeLong test at the horizon (not sequential)"}[self.method]
        lines = [
            f"{self.metric} ({self.kind}), mode {self.mode}, challenger share {self.split:g}",
            f"champion {self.baseline:.4g} -> challenger {self.target:.4g} (MDE {self.effect:+.4g}), "
            f"alpha {self.alpha:g} two-sided, power {self.power:.0%}",
            f"test: {what}",
            f"labelled outcomes needed: {self.required_total:,} (one fixed-horizon test: {self.fixed_total:,})",
            f"horizon: {self.budget_total:,} = {arms}; power there {self.power_at_budget:.1%}",
        ]
        if self.method != "fixed":
            lines.append(f"expected stop: {self.expected_total_effect:,.0f} at the MDE, "
                         f"{self.expected_total_null:,.0f} with no effect")
        lines += list(self.notes)
        return "\n".join(lines)


def lattice_width(look_every: float) -> float:
    """The recursion's cell width for looks at least ``look_every`` apart (design and every look use it)."""
    return min(0.01, math.sqrt(look_every) / 16.0)


def schedule(look_every: float) -> np.ndarray:
    """Planned formal looks: every ``look_every`` of the information, the last at 1."""
    k = math.ceil(1.0 / look_every - 1e-9)
    ts = np.arange(1, k + 1) * look_every
    ts[-1] = 1.0
    return ts


def t_boundary(c: float | np.ndarray, df: float | np.ndarray | None) -> float | np.ndarray:
    """A normal-scale boundary moved to Student's t with ``df`` degrees of freedom (same nominal level)."""
    if df is None:
        return c
    df_arr = np.asarray(df, dtype=float)
    tail = norm.sf(c)
    # an extreme early boundary whose tail underflows float64 stays as it is (never infinite)
    ok = np.isfinite(df_arr) & (df_arr > 0) & (tail > 0)
    out = np.where(ok, student_t.isf(np.where(tail > 0, tail, 0.5), np.maximum(df_arr, 1.0)), c)
    return float(out) if np.ndim(out) == 0 else out


def satterthwaite(v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Degrees of freedom of a sum of variance components ``v`` estimated from ``g`` groups each."""
    v = np.asarray(v, dtype=float)
    g = np.asarray(g, dtype=float)
    den = np.sum(np.where(g > 1, v**2 / np.maximum(g - 1.0, 1.0), 0.0), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, np.sum(v, axis=-1) ** 2 / den, np.inf)


def _rate_variances(spec: ExperimentSpec) -> tuple[float, float, float | None]:
    """(V1, V0, df): per-outcome variance of θ̂ and of the test's standardiser; df for the cluster variance."""
    p0, p1 = spec.metric.baseline, spec.target
    q0, q1 = 1 - p0, 1 - p1
    if spec.paired:
        cov = spec.agreement * math.sqrt(p0 * q0 * p1 * q1)
        v1 = p0 * q0 + p1 * q1 - 2 * cov
        v0 = p0 * q1 + p1 * q0 - 2 * cov if spec.variance == "binomial" else v1  # McNemar: P(discordant)
        df = float(spec.buckets - 1) if spec.variance == "cluster" else None
        return v1, v0, df
    s = spec.challenger_share
    comp = np.array([p0 * q0 / (1 - s), p1 * q1 / s])
    v1 = float(comp.sum())
    if spec.variance == "binomial":
        pbar = (1 - s) * p0 + s * p1
        return v1, pbar * (1 - pbar) * (1 / (1 - s) + 1 / s), None
    return v1, v1, float(satterthwaite(comp, np.full(2, spec.buckets)))


def _key(spec: ExperimentSpec) -> tuple[Any, ...]:
    return (spec.metric.kind, spec.metric.baseline, spec.metric.prevalence, spec.target, spec.mode, spec.challenger_share,
            spec.agreement,
            spec.alpha, spec.power, spec.method, spec.spending, spec.variance, spec.buckets, spec.look_every,
            spec.max_samples, spec.design_effect, spec.metric.name, spec.metric.direction)


_CACHE: dict[tuple[Any, ...], Design] = {}
_CACHE_SIZE = 128


def design(spec: ExperimentSpec) -> Design:
    """The design of ``spec``: a pure function of the spec's statistical fields (memoised per process)."""
    key = _key(spec)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        if spec.metric.kind == "auc":
            from kindml.experiments.auc import design_auc

            _CACHE[key] = design_auc(spec)
        else:
            _CACHE[key] = _design_rate(spec)
    return _CACHE[key]


def _per_arm(spec: ExperimentSpec, total: int) -> tuple[int, int]:
    if spec.paired:
        return total, total
    b = max(1, round(spec.challenger_share * total))
    return total - b, b


def _msprt_r(ts: np.ndarray, alpha: float, power: float, scale: float, h: float) -> tuple[float, float]:
    """The mixing variance (as r = τ²/V at the horizon) that needs the fewest outcomes, and its drift."""
    def eta(log_r: float) -> float:
        return drift_for_power(ts, msprt_z(alpha, math.exp(log_r), ts), power, scale=scale, h=h)

    best = minimize_scalar(eta, bounds=(math.log(0.05), math.log(500.0)), method="bounded", options={"xatol": 0.05})
    return math.exp(float(best.x)), float(best.fun)


def _design_rate(spec: ExperimentSpec) -> Design:
    v1, v0, df = _rate_variances(spec)
    rho = v0 / v1
    scale = math.sqrt(rho)
    delta = abs(spec.effect)
    deff = spec.design_effect
    ts = schedule(spec.look_every)
    h = lattice_width(spec.look_every)
    z_a = float(ndtri(1 - spec.alpha / 2))
    z_b = float(ndtri(spec.power))
    fixed = math.ceil(deff * (z_a * math.sqrt(v0) + z_b * math.sqrt(v1)) ** 2 / delta**2)
    notes: list[str] = []
    tau = None
    if spec.method == "gsd":
        raw = spending_boundaries(ts, spec.alpha, spec.spending, h=h)
        cs = np.asarray(t_boundary(raw, df), dtype=float)
        eta_star = drift_for_power(ts, cs, spec.power, scale=scale, h=h)
        r = None
        final_z = float(raw[-1])
    else:
        r, eta_star = _msprt_r(ts, spec.alpha, spec.power, scale, h)
        cs = np.asarray(msprt_z(spec.alpha, r, ts), dtype=float)
        final_z = float(cs[-1])
    required = math.ceil(deff * eta_star**2 * v1 / delta**2)
    budget = spec.max_samples or required
    # the drift at the budget; boundaries live on the information scale, so only η moves
    eta_b = delta * math.sqrt(budget / (deff * v1))
    if spec.method == "msprt":
        assert r is not None
        tau = math.sqrt(r * deff * v0 / required)  # fixed in θ units once the design is made
        r_b = tau**2 / (deff * v0 / budget)
        cs = np.asarray(msprt_z(spec.alpha, r_b, ts), dtype=float)
        null = crossing(ts, cs, drift=0.0, h=h)
        notes.append(f"the mSPRT's false-positive rate at this horizon is {null.total:.2%} "
                     f"(always valid, so below alpha {spec.alpha:g} when stopped at a finite budget)")
    else:
        null = crossing(ts, cs, drift=0.0, h=h)
    eff = crossing(ts, cs, drift=eta_b, scale=scale, h=h)
    if spec.max_samples is not None and budget < required:
        notes.append(f"max_samples {budget:,} is below the {required:,} this MDE needs: power {eff.power:.1%}, not "
                     f"{spec.power:.0%}")
    if spec.variance == "cluster" and df is not None:
        notes.append(f"cluster variance over {spec.buckets} entity buckets: boundaries on the t scale, ~{df:.0f} df")
    if deff > 1:
        notes.append(f"design effect {deff:g}: outcomes of one entity are correlated")
    return Design(
        metric=spec.metric.name, kind="rate", mode=spec.mode, method=spec.method,
        spending=spec.spending if spec.method == "gsd" else None, alpha=spec.alpha, power=spec.power,
        baseline=spec.metric.baseline, target=spec.target, effect=spec.effect, split=spec.challenger_share,
        paired=spec.paired, fixed_total=fixed, required_total=required, budget_total=budget,
        budget_per_arm=_per_arm(spec, budget), power_at_budget=eff.power,
        expected_total_effect=eff.expected_fraction(ts) * budget, expected_total_null=null.expected_fraction(ts) * budget,
        looks=len(ts), final_z=final_z, tau=tau, df=df, variance_ratio=rho, h=h, notes=tuple(notes))


def design_table(rows: list[dict[str, Any]], base: dict[str, Any]) -> list[Design]:
    """Designs of ``base`` updated by each row (for the documentation's table)."""
    from kindml.experiments.spec import parse_spec

    out = []
    for row in rows:
        merged = {**base, **{k: v for k, v in row.items() if k != "metric"}}
        merged["metric"] = {**base.get("metric", {}), **row.get("metric", {})}
        out.append(design(parse_spec(merged)))
    return out
