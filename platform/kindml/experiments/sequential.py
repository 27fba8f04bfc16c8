"""The sequential test of a rate: the statistic after each batch of outcomes, its boundary, and the decision.

The statistic
    ``θ̂ = p̂1 - p̂0`` (challenger minus champion rate of successes among
    labelled outcomes) and ``Z = θ̂ / sqrt(V̂)``. The variance ``V̂``:

    - ``binomial``: unpaired, the pooled null variance ``p̄q̄(1/n0 + 1/n1)``;
      paired (shadow), McNemar's ``(n01 + n10) / n²``. Exact when every
      outcome is independent -- not when one entity gives several outcomes.
    - ``cluster`` (default): every outcome is counted in its entity's bucket
      (:func:`kindml.experiments.assignment.bucket`, ``buckets`` of them,
      independent of the arm), and ``V̂`` is the cluster-robust (delta-method)
      variance over buckets: per arm ``G/(G-1)·Σ_b (s_b - p̂·n_b)² / n²``
      (paired: ``Σ_b (d_b - θ̂·n_b)²`` with ``d_b`` the bucket's success
      difference), with Satterthwaite degrees of freedom. An arm whose rate is
      exactly 0 or 1 has no residuals; it contributes ``p̃(1-p̃)/n`` with
      ``p̃ = (s + ½)/(n + 1)`` instead (paired: McNemar's variance), so an
      overwhelming difference is not mistaken for no information. Buckets are
      independent groups of whole entities, so outcomes correlated within an
      entity are accounted for; boundaries move to Student's t at the
      current degrees of freedom (Jennison & Turnbull 2000, §3.8).

Information
    ``t = h(n0, n1) / h(N0, N1)`` with ``h(a, b) = ab/(a+b)`` (unpaired) or
    ``t = n / N`` (paired), against the planned per-arm horizon ``(N0, N1)``
    of the design: the fraction of the final precision reached so far.

The rule (``method: gsd``, the default)
    A *formal look* happens when each arm has ``min_samples`` outcomes and the
    information grew by at least ``look_every`` since the previous formal
    look, or reached 1. At a formal look ``k`` the boundary ``c_k`` spends
    ``α(t_k) - α(t_{k-1})`` given the boundaries used before
    (:func:`kindml.experiments.boundaries.next_boundary`), so the looks need
    not be planned. ``|Z| >= c_k`` stops: ``promote`` when the difference is
    in the better ``direction``, ``rollback`` when it is in the worse one. At
    ``t >= 1`` without a crossing: ``stop_for_futility`` -- the budget is
    spent, no effect of the designed size was found, and the **champion
    stays**. Two-sided: under A = A, P(promote or rollback) = α.

``method: msprt``
    The mixture SPRT of Johari, Pekelis & Walsh with a ``N(0, τ²)`` mixing
    distribution on the difference: ``Λ = sqrt(V̂/(V̂+τ²))·exp(τ²θ̂² /
    (2V̂(V̂+τ²)))``, the always-valid p-value ``p = min(1, min over looks of
    1/Λ)``, stop when ``p <= α``. Valid at *any* stopping time, at the price of
    more samples and a false-positive rate well below α over a finite budget
    (the design reports both).

Reported at every formal look: the rates, ``θ̂``, ``Z``, the boundary, its
nominal level, and the *repeated confidence interval* ``θ̂ ± c_k·se``
(unpooled se; simultaneous coverage 1 - α over all looks).

Guardrails
    Each guardrail is a bad-event rate (errors, timeouts) compared with a
    one-sided always-valid mSPRT (``τ = min_increase``): ``rollback`` as soon
    as the challenger's rate is higher at the guardrail's ``alpha``. Checked
    at every :meth:`~kindml.experiments.state.Experiment.look`, before the
    primary metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from kindml.experiments.boundaries import next_boundary
from kindml.experiments.design import Design, satterthwaite, t_boundary
from kindml.experiments.spec import ExperimentSpec

ACTIONS = ("promote", "rollback", "keep_running", "stop_for_futility")


@dataclass(frozen=True)
class Decision:
    """What to do now. ``final`` decisions end the experiment; ``serve`` says which model answers afterwards."""

    action: str
    reason: str

    @property
    def final(self) -> bool:
        return self.action != "keep_running"

    @property
    def serve(self) -> str:
        """The model that should answer every request once the experiment is over."""
        return "challenger" if self.action == "promote" else "champion"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "final": self.final, "serve": self.serve}


@dataclass(frozen=True)
class RateStat:
    """The running statistic of a rate comparison (arrays broadcast over leading simulation axes)."""

    n: np.ndarray  # (..., 2) outcomes per arm: champion, challenger
    successes: np.ndarray  # (..., 2)
    diff: np.ndarray  # challenger - champion
    var: np.ndarray  # the test's variance estimate of diff
    var_ci: np.ndarray  # unpooled variance estimate (confidence intervals)
    df: np.ndarray  # degrees of freedom of var (inf: known-variance normal)

    @property
    def rate(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, self.successes / np.maximum(self.n, 1), np.nan)

    @property
    def z(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.var > 0, self.diff / np.sqrt(np.where(self.var > 0, self.var, 1.0)), 0.0)


def unpaired_stat(n: np.ndarray, s: np.ndarray, variance: str) -> RateStat:
    """Statistic from per-arm, per-bucket counts ``n``, ``s`` of shape ``(..., 2, buckets)``."""
    n = np.asarray(n, dtype=float)
    s = np.asarray(s, dtype=float)
    N = n.sum(-1)
    S = s.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(N > 0, S / np.maximum(N, 1), 0.0)
        diff = p[..., 1] - p[..., 0]
        inv = np.where(N > 0, 1.0 / np.maximum(N, 1), 0.0)
        var_ci = np.sum(p * (1 - p) * inv, axis=-1)
        if variance == "binomial":
            pbar = np.where(N.sum(-1) > 0, S.sum(-1) / np.maximum(N.sum(-1), 1), 0.0)
            var = pbar * (1 - pbar) * inv.sum(-1)
            df = np.full(np.shape(diff), np.inf)
        else:
            g = np.count_nonzero(n > 0, axis=-1).astype(float)  # non-empty buckets per arm
            resid = s - p[..., None] * n
            comp = np.where(g > 1, g / np.maximum(g - 1, 1) * np.sum(resid**2, axis=-1) * inv**2, 0.0)
            # an arm with rate exactly 0 or 1 has no residuals at all: use a smoothed binomial term there
            smooth = (S + 0.5) / (N + 1.0)
            comp = np.where((N > 0) & ((S == 0) | (S == N)), smooth * (1 - smooth) * inv, comp)
            var = comp.sum(-1)
            var_ci = var
            df = satterthwaite(comp, g)
    return RateStat(n=N, successes=S, diff=diff, var=var, var_ci=var_ci, df=df)


def paired_stat(n: np.ndarray, s: np.ndarray, disc: np.ndarray, variance: str) -> RateStat:
    """Statistic of paired outcomes: per-bucket ``n (..., B)``, successes ``s (..., 2, B)``, discordant ``disc (..., B)``."""
    n = np.asarray(n, dtype=float)
    s = np.asarray(s, dtype=float)
    disc = np.asarray(disc, dtype=float)
    N = n.sum(-1)
    S = s.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.maximum(N, 1)
        diff = np.where(N > 0, (S[..., 1] - S[..., 0]) / safe, 0.0)
        D = disc.sum(-1)
        var_ci = np.where(N > 0, np.maximum(D / safe - diff**2, 0.0) / safe, 0.0)
        if variance == "binomial":
            var = np.where(N > 0, D / safe**2, 0.0)
            df = np.full(np.shape(diff), np.inf)
        else:
            g = np.count_nonzero(n > 0, axis=-1).astype(float)
            d_b = s[..., 1, :] - s[..., 0, :]
            resid = d_b - diff[..., None] * n
            var = np.where(g > 1, g / np.maximum(g - 1, 1) * np.sum(resid**2, axis=-1) / safe**2, 0.0)
            # every pair discordant the same way leaves no residuals: fall back to McNemar's variance
            var = np.where((var <= 0) & (D > 0), D / safe**2, var)
            var_ci = var
            df = np.where(g > 1, g - 1, np.inf)
    return RateStat(n=np.stack([N, N], axis=-1), successes=S, diff=diff, var=var, var_ci=var_ci, df=df)


def information(design: Design, n: np.ndarray) -> np.ndarray:
    """Information fraction reached with ``n (..., 2)`` outcomes per arm, against the design's horizon."""
    n = np.asarray(n, dtype=float)
    plan = np.asarray(design.budget_per_arm, dtype=float)
    if design.paired:
        return n[..., 0] / plan[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(n.min(-1) > 0, n[..., 0] * n[..., 1] / np.maximum(n.sum(-1), 1), 0.0)
    return h / (plan[0] * plan[1] / plan.sum())


def log_msprt(diff: np.ndarray, var: np.ndarray, tau: float) -> np.ndarray:
    """log Λ of the normal-mixture SPRT for a difference ``diff`` with variance ``var``."""
    diff = np.asarray(diff, dtype=float)
    var = np.asarray(var, dtype=float)
    t2 = tau * tau
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * np.log(var / (var + t2)) + t2 * diff**2 / (2 * var * (var + t2))
    return np.where(var > 0, out, 0.0)


def _f(x: Any) -> float:
    return float(np.asarray(x))


def stat_record(stat: RateStat, t: float) -> dict[str, Any]:
    """A JSON-ready snapshot of a (scalar) statistic."""
    rate = stat.rate
    return {"info": float(t), "n": [int(v) for v in np.asarray(stat.n)],
            "rate": [None if not math.isfinite(_f(r)) else _f(r) for r in np.asarray(rate)],
            "diff": _f(stat.diff), "z": _f(stat.z), "df": None if not math.isfinite(_f(stat.df)) else _f(stat.df)}


def formal_look_due(spec: ExperimentSpec, n: np.ndarray, t: float, looks: list[dict[str, Any]]) -> str | None:
    """Why no formal look is due now (None when one is)."""
    n = np.asarray(n)
    if n.min() < spec.min_samples:
        return f"waiting for {spec.min_samples} labelled outcomes in each arm (have {int(n[0])} and {int(n[1])})"
    last = looks[-1]["info"] if looks else 0.0
    if last >= 1.0:
        return "the horizon was already analysed"
    if t >= 1.0 or t - last >= spec.look_every - 1e-12:
        return None
    return f"next formal look at information {min(1.0, last + spec.look_every):.3f} (now {t:.3f})"


def rate_look(spec: ExperimentSpec, design: Design, stat: RateStat, looks: list[dict[str, Any]],
              min_p: float, spending_z: Callable[[float], float] | None = None) -> tuple[dict[str, Any], Decision, float]:
    """One formal look: the record for the history, the decision, the updated always-valid p-value (msprt).

    ``spending_z(t)`` returns the spending boundary of a new look at ``t``; by
    default it is recomputed from the looks' history
    (:func:`~kindml.experiments.boundaries.next_boundary`).
    """
    t_raw = float(np.asarray(information(design, stat.n)))
    t = min(1.0, t_raw)
    rec = stat_record(stat, t)
    rec["look"] = len(looks) + 1
    z = _f(stat.z)
    diff = _f(stat.diff)
    df = _f(stat.df)
    se_ci = math.sqrt(max(_f(stat.var_ci), 0.0))
    if spec.method == "gsd":
        if spending_z is None:
            raw = next_boundary([lk["info"] for lk in looks], [lk["spending_z"] for lk in looks], t, spec.alpha,
                                spec.spending, design.h)
        else:
            raw = spending_z(t)
        c = _f(t_boundary(raw, df if math.isfinite(df) else None))
        crossed = abs(z) >= c
        rec |= {"spending_z": raw, "boundary": c, "nominal_alpha": 2 * float(ndtr(-raw)),
                "p_nominal": 2 * float(ndtr(-abs(z)))}
    else:
        assert design.tau is not None
        lam = _f(log_msprt(diff, _f(stat.var), design.tau))
        min_p = min(min_p, math.exp(-lam) if lam > 0 else 1.0)
        crossed = min_p <= spec.alpha
        c = _f(np.sqrt((1 + _f(stat.var) / design.tau**2) * (2 * math.log(1 / spec.alpha)
                                                             + math.log1p(design.tau**2 / max(_f(stat.var), 1e-300)))))
        rec |= {"boundary": c, "p_always_valid": min_p}
    rec["ci"] = [diff - c * se_ci, diff + c * se_ci]
    better = diff > 0 if spec.metric.direction == "increase" else diff < 0
    name = spec.metric.name
    if crossed:
        what = "better" if better else "worse"
        action = "promote" if better else "rollback"
        reason = (f"{name}: challenger {what} at look {rec['look']} (information {t:.2f}): "
                  f"{rec['rate'][1]:.4g} vs {rec['rate'][0]:.4g}, Z = {z:+.2f} beyond ±{c:.2f}")
    elif t >= 1.0:
        action = "stop_for_futility"
        reason = (f"{name}: budget spent (information {t:.2f}) without a significant difference "
                  f"(Z = {z:+.2f}, boundary ±{c:.2f}); the champion stays")
    else:
        action = "keep_running"
        reason = f"{name}: Z = {z:+.2f} inside ±{c:.2f} at information {t:.2f}"
    rec["action"] = action
    return rec, Decision(action, reason), min_p


def guardrail_check(stat: RateStat, tau: float, alpha: float, min_p: float) -> tuple[float, bool]:
    """One-sided always-valid check that the challenger's bad-event rate is higher: (updated p, alarm)."""
    diff = _f(stat.diff)
    if diff > 0:
        lam = _f(log_msprt(diff, _f(stat.var), tau))
        min_p = min(min_p, math.exp(-lam) if lam > 0 else 1.0)
    return min_p, min_p <= alpha
