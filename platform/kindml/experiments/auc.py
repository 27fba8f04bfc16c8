"""ROC AUC on labelled outcomes: bounded score histograms, DeLong's variance, and an honest fixed-horizon test.

What is (and is not) claimed
    AUC is compared **once**, when both arms reach the design's horizon, with
    DeLong's test at level α (two-sided). It is *not* a sequential test:
    between start and horizon the running AUCs are shown for information
    only, and no decision is taken on them (peeking at them and stopping
    would inflate the false-positive rate exactly as for a rate). Guardrails
    still roll back early. A group-sequential AUC test is possible in
    principle (the Mann-Whitney statistic has asymptotically independent
    increments) but is not implemented or validated here.

Bounded, mergeable state
    Scores are counted, never stored: per arm and label, a histogram over
    ``score_bins`` bins evenly spaced in logit(score) on [-14, 14] (scores are
    probabilities; 0 and 1 land in the end bins). Logit spacing keeps
    resolution where imbalanced-class scores crowd (near 0). AUC and the
    DeLong variance are computed from the histograms treating scores in one
    bin as ties (counted 1/2); with the default 400 bins (width 0.07 in
    logit) this moves AUC by well under 0.001 in the unit tests.

DeLong from histograms (DeLong, DeLong & Clarke-Pearson 1988)
    For a positive in bin ``i``: ``V10 = (negatives below i + ½ negatives in
    i) / N``; for a negative in bin ``j``: ``V01 = (positives above j + ½
    positives in j) / P``. ``AUC = mean V10``, ``Var = S10/P + S01/N`` with
    ``S10``, ``S01`` the sample variances of the components. Two arms are
    independent samples (ab, canary): ``Var(ΔAUC) = Var0 + Var1``. In shadow
    both models score the same requests; the paired covariance would need
    per-request pairs, which a bounded histogram does not keep, so the same
    unpaired variance is used -- conservative when the two models' errors
    are positively correlated, as they usually are.

Design (Hanley & McNeil 1982)
    ``Var(AUC) ≈ [A(1-A) + (P-1)(Q1-A²) + (N-1)(Q2-A²)] / (P·N)`` with
    ``Q1 = A/(2-A)``, ``Q2 = 2A²/(1+A)``; the horizon is the smallest total
    ``n`` with ``z_{1-α/2}·sd_H0 + z_power·sd_H1 <= MDE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from kindml.experiments.design import Design
from kindml.experiments.errors import ExperimentError
from kindml.experiments.sequential import Decision
from kindml.experiments.spec import ExperimentSpec

LOGIT_RANGE = 14.0


def score_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Bin indices of probability scores (logit-spaced bins on [-14, 14])."""
    x = np.asarray(scores, dtype=float)
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0):
        raise ExperimentError("AUC scores must be probabilities in [0, 1] (got NaN or a value outside)",
                              "Record the model's positive-class probability, not a logit or a label.")
    with np.errstate(divide="ignore"):
        lg = np.log(x) - np.log1p(-x)
    pos = (np.clip(lg, -LOGIT_RANGE, LOGIT_RANGE) + LOGIT_RANGE) / (2 * LOGIT_RANGE) * bins
    return np.clip(pos.astype(np.int64), 0, bins - 1)


@dataclass(frozen=True)
class AucStat:
    auc: float
    var: float
    positives: int
    negatives: int


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> AucStat:
    """AUC and DeLong variance from histograms of positives' and negatives' scores (same bins, ascending)."""
    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    P, N = pos.sum(), neg.sum()
    if P < 2 or N < 2:
        return AucStat(float("nan"), float("nan"), int(P), int(N))
    neg_below = np.cumsum(neg) - neg
    pos_above = P - np.cumsum(pos)
    v10 = (neg_below + 0.5 * neg) / N
    v01 = (pos_above + 0.5 * pos) / P
    auc = float(pos @ v10 / P)
    s10 = float(pos @ (v10 - auc) ** 2 / (P - 1))
    s01 = float(neg @ (v01 - auc) ** 2 / (N - 1))
    return AucStat(auc, s10 / P + s01 / N, int(P), int(N))


def hanley_mcneil(a: float, positives: float, negatives: float) -> float:
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)


def _arm_shares(spec: ExperimentSpec) -> tuple[float, float]:
    return (1.0, 1.0) if spec.paired else (1 - spec.challenger_share, spec.challenger_share)


def _sd(spec: ExperimentSpec, n: float, a0: float, a1: float) -> float:
    pi = spec.metric.prevalence or 0.0
    v = 0.0
    for share, a in zip(_arm_shares(spec), (a0, a1), strict=True):
        m = share * n
        v += hanley_mcneil(a, max(pi * m, 2.0), max((1 - pi) * m, 2.0))
    return math.sqrt(v * spec.design_effect)


def design_auc(spec: ExperimentSpec) -> Design:
    """Fixed-horizon design of an AUC comparison."""
    a0, a1 = spec.metric.baseline, spec.target
    delta = abs(a1 - a0)
    z_a, z_b = float(ndtri(1 - spec.alpha / 2)), float(ndtri(spec.power))

    def gap(log_n: float) -> float:
        n = math.exp(log_n)
        return z_a * _sd(spec, n, a0, a0) + z_b * _sd(spec, n, a0, a1) - delta

    required = math.ceil(math.exp(brentq(gap, math.log(10.0), math.log(1e12))))
    budget = spec.max_samples or required
    power = float(ndtr((delta - z_a * _sd(spec, budget, a0, a0)) / _sd(spec, budget, a0, a1)))
    if spec.paired:
        per_arm = (budget, budget)
    else:
        b = max(1, round(spec.challenger_share * budget))
        per_arm = (budget - b, b)
    notes = ["AUC is tested once at the horizon (DeLong); running AUCs before it are for information only"]
    if spec.paired:
        notes.append("shadow: both models score the same requests; the unpaired DeLong variance is used (conservative)")
    if spec.max_samples is not None and budget < required:
        notes.append(f"max_samples {budget:,} is below the {required:,} this MDE needs: power {power:.1%}")
    return Design(
        metric=spec.metric.name, kind="auc", mode=spec.mode, method="fixed", spending=None, alpha=spec.alpha,
        power=spec.power, baseline=a0, target=a1, effect=a1 - a0, split=spec.challenger_share, paired=spec.paired,
        fixed_total=required, required_total=required, budget_total=budget, budget_per_arm=per_arm,
        power_at_budget=power, expected_total_effect=float(budget), expected_total_null=float(budget), looks=1,
        final_z=z_a, notes=tuple(notes))


def auc_look(spec: ExperimentSpec, design: Design, hist: np.ndarray, looks: list[dict[str, Any]]
             ) -> tuple[dict[str, Any] | None, Decision]:
    """Information snapshot (every ``look_every`` of the horizon) and, at the horizon, DeLong's test.

    ``hist`` has shape ``(2 arms, 2 labels (negative, positive), bins)``.
    """
    arms = [auc_from_histograms(hist[a, 1], hist[a, 0]) for a in (0, 1)]
    n = np.array([a.positives + a.negatives for a in arms], dtype=float)
    plan = np.asarray(design.budget_per_arm, dtype=float)
    t = float(min(1.0, (n / plan).min()))
    name = spec.metric.name
    if n.min() < spec.min_samples or not all(math.isfinite(a.auc) for a in arms):
        return None, Decision("keep_running", f"{name}: waiting for {spec.min_samples} labelled outcomes with both "
                                              f"labels in each arm (have {int(n[0])} and {int(n[1])})")
    diff = arms[1].auc - arms[0].auc
    se = math.sqrt(arms[0].var + arms[1].var)
    z = diff / se if se > 0 else 0.0
    last = looks[-1]["info"] if looks else 0.0
    due = t >= 1.0 or t - last >= spec.look_every - 1e-12
    rec = {"look": len(looks) + 1, "info": t, "n": [int(v) for v in n], "auc": [arms[0].auc, arms[1].auc],
           "positives": [arms[0].positives, arms[1].positives], "diff": diff, "z": z}
    if t < 1.0:
        rec |= {"action": "keep_running", "informational": True}
        return (rec if due else None), Decision(
            "keep_running", f"{name}: AUC {arms[1].auc:.4f} vs {arms[0].auc:.4f} at {t:.0%} of the horizon "
                            f"(information only; DeLong's test runs at the horizon)")
    c = design.final_z
    rec |= {"boundary": c, "ci": [diff - c * se, diff + c * se], "p_value": 2 * float(ndtr(-abs(z)))}
    if abs(z) >= c:
        action = "promote" if diff > 0 else "rollback"
        reason = (f"{name}: DeLong at the horizon: challenger AUC {arms[1].auc:.4f} vs {arms[0].auc:.4f}, "
                  f"Z = {z:+.2f} beyond ±{c:.2f}")
    else:
        action = "stop_for_futility"
        reason = (f"{name}: DeLong at the horizon: AUC {arms[1].auc:.4f} vs {arms[0].auc:.4f}, Z = {z:+.2f} inside "
                  f"±{c:.2f}; the champion stays")
    rec["action"] = action
    return rec, Decision(action, reason)
