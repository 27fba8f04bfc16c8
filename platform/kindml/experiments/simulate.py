"""Monte Carlo check of the sequential test: false-positive rate under A = A, power at the design effect.

Thousands of experiments run side by side as numpy arrays. Each one receives
its outcomes in batches, and after every batch the *same* functions the live
:class:`~kindml.experiments.state.Experiment` uses decide whether a formal look
is due (:func:`~kindml.experiments.sequential.formal_look_due`), compute the
statistic (:func:`~kindml.experiments.sequential.unpaired_stat` /
:func:`~kindml.experiments.sequential.paired_stat`) and the boundary
(:func:`~kindml.experiments.boundaries.spending_boundaries` on the looks
actually taken, moved to the t scale by
:func:`~kindml.experiments.design.t_boundary`). (The recursion is advanced look by
look here instead of replayed; the unit tests check that an ``Experiment`` fed
the same batches takes exactly the same decisions.)

Data generators (all seeded):

- :func:`independent_batches`: every outcome independent, ``Bernoulli(p_arm)``,
  spread over the entity buckets at random (multinomial);
- :func:`clustered_batches`: entities with ``per_entity`` outcomes each and an
  entity-level rate ``~ Beta`` around ``p_arm`` (intra-class correlation
  ``icc``) -- what happens when one card or user gives many labelled
  transactions;
- :func:`paired_batches`: shadow mode, both models judged on the same
  requests, with a chosen agreement between them.

``python -m kindml.experiments.simulate`` prints the tables of
``docs/experiments.md`` (the false-positive rates and power figures, and the
design table).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from kindml.experiments.boundaries import Recursion, spent
from kindml.experiments.design import Design, design, t_boundary
from kindml.experiments.sequential import (
    formal_look_due,
    information,
    log_msprt,
    paired_stat,
    unpaired_stat,
)
from kindml.experiments.spec import ExperimentSpec, parse_spec

Batch = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # n, s, d (paired only)


@dataclass(frozen=True)
class SimResult:
    """Outcome of ``sims`` simulated experiments."""

    actions: np.ndarray  # per experiment: promote | rollback | stop_for_futility | keep_running
    stop_total: np.ndarray  # labelled outcomes (both arms) when the experiment stopped
    looks: int  # formal looks taken by an experiment that never stops
    naive_rejections: np.ndarray | None = None  # per experiment: a repeated fixed-horizon z-test would have stopped

    @property
    def sims(self) -> int:
        return int(self.actions.size)

    def rate(self, *actions: str) -> float:
        return float(np.isin(self.actions, actions).mean())

    @property
    def false_positive_rate(self) -> float:
        """Share that promoted or rolled back (under A = A every such decision is a false positive)."""
        return self.rate("promote", "rollback")

    @property
    def power(self) -> float:
        return self.rate("promote")

    @property
    def naive_rate(self) -> float:
        assert self.naive_rejections is not None
        return float(self.naive_rejections.mean())

    def ci(self, p: float) -> tuple[float, float]:
        """95 % Wilson interval of a simulated proportion."""
        n, z = self.sims, 1.959963984540054
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half


def batch_sizes(design: Design, spec: ExperimentSpec) -> tuple[np.ndarray, int]:
    """Per-arm outcomes per batch (one batch = ``look_every`` of the horizon) and the number of batches."""
    per = np.ceil(np.asarray(design.budget_per_arm, dtype=float) * spec.look_every).astype(np.int64)
    return per, math.ceil(1.0 / spec.look_every - 1e-9)


def _bucket_sums(sims: int, buckets: int, idx: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-experiment bucket totals of ``(sims, m)`` bucket indices (optionally weighted)."""
    flat = (np.arange(sims)[:, None] * buckets + idx).ravel()
    w = None if weights is None else weights.ravel()
    return np.bincount(flat, weights=w, minlength=sims * buckets).reshape(sims, buckets).astype(np.int64)


def independent_batches(rng: np.random.Generator, sims: int, batches: int, per_arm: np.ndarray, p: tuple[float, float],
                        buckets: int) -> Iterator[Batch]:
    """Independent Bernoulli outcomes, each in a uniformly random bucket; ``(sims, 2, buckets)`` per batch."""
    for _ in range(batches):
        n = np.empty((sims, 2, buckets), dtype=np.int64)
        s = np.empty((sims, 2, buckets), dtype=np.int64)
        for a in (0, 1):
            m = int(per_arm[a])
            idx = rng.integers(0, buckets, size=(sims, m))
            n[:, a] = _bucket_sums(sims, buckets, idx)
            s[:, a] = _bucket_sums(sims, buckets, idx, rng.random((sims, m)) < p[a])
        yield n, s, None


def clustered_batches(rng: np.random.Generator, sims: int, batches: int, per_arm: np.ndarray, p: tuple[float, float],
                      buckets: int, per_entity: int, icc: float) -> Iterator[Batch]:
    """Entities with ``per_entity`` outcomes and an entity rate ``~ Beta`` with intra-class correlation ``icc``."""
    ents = np.maximum(1, np.ceil(per_arm / per_entity).astype(np.int64))
    conc = (1.0 - icc) / icc  # Beta(a, b) with a + b = conc has ICC 1 / (1 + conc)
    for _ in range(batches):
        n = np.zeros((sims, 2, buckets), dtype=np.int64)
        s = np.zeros((sims, 2, buckets), dtype=np.int64)
        for a in (0, 1):
            e = int(ents[a])
            rate = rng.beta(p[a] * conc, (1 - p[a]) * conc, size=(sims, e))
            succ = rng.binomial(per_entity, rate)
            bk = rng.integers(0, buckets, size=(sims, e))
            n[:, a] = _bucket_sums(sims, buckets, bk) * per_entity
            s[:, a] = _bucket_sums(sims, buckets, bk, succ)
        yield n, s, None


def paired_batches(rng: np.random.Generator, sims: int, batches: int, per_batch: int, p: tuple[float, float],
                   agreement: float, buckets: int) -> Iterator[Batch]:
    """Shadow: each request judged for both models; ``agreement`` is the correlation of their two outcomes."""
    p0, p1 = p
    cov = agreement * math.sqrt(p0 * (1 - p0) * p1 * (1 - p1))
    p11 = p0 * p1 + cov
    cells = np.array([1 - p0 - p1 + p11, p1 - p11, p0 - p11, p11])  # (00, 01, 10, 11): champion, challenger
    if np.any(cells < 0):
        raise ValueError("that agreement is impossible for these rates")
    edges = np.cumsum(cells)[:-1]
    for _ in range(batches):
        idx = rng.integers(0, buckets, size=(sims, per_batch))
        cell = np.searchsorted(edges, rng.random((sims, per_batch)), side="right")  # 0..3
        champ, chall = cell >= 2, (cell % 2) == 1
        n = _bucket_sums(sims, buckets, idx)
        s = np.stack([_bucket_sums(sims, buckets, idx, champ), _bucket_sums(sims, buckets, idx, chall)], axis=1)
        yield n, s, _bucket_sums(sims, buckets, idx, champ != chall)


def run(spec: ExperimentSpec, data: Iterator[Batch], sims: int, naive: bool = False) -> SimResult:
    """Watch ``sims`` experiments through the batches of ``data`` with the spec's test."""
    d = design(spec)
    actions = np.full(sims, "keep_running", dtype=object)
    stop_total = np.zeros(sims)
    alive = np.ones(sims, dtype=bool)
    naive_hit = np.zeros(sims, dtype=bool)
    z_naive = float(ndtri(1 - spec.alpha / 2))
    looks: list[dict[str, Any]] = []
    min_p = np.ones(sims)
    cum: list[np.ndarray] | None = None
    rec = Recursion(d.h)  # advanced look by look: the same numbers as next_boundary's replay
    better_sign = 1.0 if spec.metric.direction == "increase" else -1.0
    for batch in data:
        parts = [x for x in batch if x is not None]
        cum = [a.astype(np.int64).copy() for a in parts] if cum is None else [c + a for c, a in zip(cum, parts, strict=True)]
        stat = paired_stat(*cum, spec.variance) if spec.paired else unpaired_stat(cum[0], cum[1], spec.variance)
        n_arm = np.asarray(stat.n)[0]
        t = float(np.asarray(information(d, n_arm)))
        if formal_look_due(spec, n_arm, t, looks) is not None:
            continue
        t = min(1.0, t)
        z = np.asarray(stat.z)
        if spec.method == "gsd":
            before = spent(spec.spending, spec.alpha, looks[-1]["info"]) if looks else 0.0
            raw = rec.solve(t, float(spent(spec.spending, spec.alpha, t)) - float(before))
            c = np.asarray(t_boundary(raw, np.asarray(stat.df)), dtype=float)
            crossed = np.abs(z) >= c
            looks.append({"info": t, "spending_z": raw})
        else:
            assert d.tau is not None
            lam = log_msprt(stat.diff, stat.var, d.tau)
            min_p = np.minimum(min_p, np.where(lam > 0, np.exp(-lam), 1.0))
            crossed = min_p <= spec.alpha
            looks.append({"info": t})
        if naive:
            naive_hit |= np.abs(unpaired_z_binomial(stat)) >= z_naive
        now = alive & crossed
        total = float(np.asarray(stat.n).sum(-1)[0]) if not spec.paired else float(np.asarray(stat.n)[0, 0])
        actions[now] = np.where(better_sign * np.asarray(stat.diff)[now] > 0, "promote", "rollback")
        stop_total[now] = total
        alive &= ~crossed
        if t >= 1.0:
            actions[alive] = "stop_for_futility"
            stop_total[alive] = total
            alive[:] = False
            break
    return SimResult(actions=actions.astype(str), stop_total=stop_total, looks=len(looks),
                     naive_rejections=naive_hit if naive else None)


def unpaired_z_binomial(stat: Any) -> np.ndarray:
    """The textbook fixed-horizon z (pooled binomial variance) of a statistic's counts, for the naive peeker."""
    n = np.asarray(stat.n, dtype=float)
    s = np.asarray(stat.successes, dtype=float)
    pbar = s.sum(-1) / np.maximum(n.sum(-1), 1)
    var = pbar * (1 - pbar) * (1 / np.maximum(n[..., 0], 1) + 1 / np.maximum(n[..., 1], 1))
    diff = s[..., 1] / np.maximum(n[..., 1], 1) - s[..., 0] / np.maximum(n[..., 0], 1)
    return np.where(var > 0, diff / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)


def simulate(spec: ExperimentSpec | dict[str, Any], effect: bool, sims: int, seed: int, naive: bool = False,
             cluster: tuple[int, float] | None = None, agreement: float | None = None) -> SimResult:
    """``sims`` experiments of ``spec`` under A = A (``effect=False``) or at the design's effect (``effect=True``).

    ``cluster=(outcomes per entity, ICC)`` draws correlated outcomes per entity;
    ``agreement`` is the correlation of the two models' outcomes in shadow mode
    (default: the spec's ``agreement``).
    """
    spec = parse_spec(spec)
    d = design(spec)
    rng = np.random.default_rng(seed)
    p = (spec.metric.baseline, spec.target if effect else spec.metric.baseline)
    per_arm, batches = batch_sizes(d, spec)
    batches += 1  # ceil() of the per-batch size can leave the horizon a hair short of 1
    if spec.paired:
        rho = spec.agreement if agreement is None else agreement
        data = paired_batches(rng, sims, batches, int(per_arm[0]), p, rho, spec.buckets)
    elif cluster is not None:
        data = clustered_batches(rng, sims, batches, per_arm, p, spec.buckets, cluster[0], cluster[1])
    else:
        data = independent_batches(rng, sims, batches, per_arm, p, spec.buckets)
    return run(spec, data, sims, naive=naive)


# ---- the documentation's tables --------------------------------------------------------------------

BASE: dict[str, Any] = {"name": "sim", "salt": "simulation-salt", "metric": {"baseline": 0.1, "name": "catch_rate"},
                        "mde": 0.1}

SCENARIOS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # label, spec overrides, simulate() keywords
    ("gsd, O'Brien-Fleming, cluster variance (default)", {}, {}),
    ("gsd, O'Brien-Fleming, binomial variance", {"variance": "binomial"}, {}),
    ("gsd, Pocock spending", {"spending": "pocock"}, {}),
    ("msprt (always valid), binomial variance", {"method": "msprt", "variance": "binomial"}, {}),
    ("canary 5 %, gsd", {"mode": "canary"}, {}),
    ("shadow (paired), agreement 0.6 (designed with it)", {"mode": "shadow", "agreement": 0.6}, {}),
    ("shadow (paired), agreement 0.6, designed with the default 0", {"mode": "shadow"}, {"agreement": 0.6}),
    ("clustered outcomes (10/entity, ICC 0.05), binomial variance", {"variance": "binomial", "design_effect": 1.45},
     {"cluster": (10, 0.05)}),
    ("clustered outcomes (10/entity, ICC 0.05), cluster variance", {"design_effect": 1.45}, {"cluster": (10, 0.05)}),
]

TABLE_ROWS: list[dict[str, Any]] = [
    {"metric": {"baseline": b}, "mde": m} for b in (0.01, 0.05, 0.1, 0.5) for m in (0.05, 0.1, 0.2)
]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def simulation_table(sims: int, seed: int) -> str:
    lines = ["| scenario | A = A: false-positive rate (95 % CI) | naive peeking FPR | at the MDE: power (95 % CI) "
             "| mean stop at MDE / horizon |",
             "|---|---|---|---|---|"]
    for i, (label, over, kw) in enumerate(SCENARIOS):
        spec = parse_spec({**BASE, **over})
        null = simulate(spec, effect=False, sims=sims, seed=seed + 2 * i, naive=not spec.paired, **kw)
        alt = simulate(spec, effect=True, sims=sims, seed=seed + 2 * i + 1, **kw)
        lo, hi = null.ci(null.false_positive_rate)
        plo, phi = alt.ci(alt.power)
        naive = _pct(null.naive_rate) if null.naive_rejections is not None else "-"
        d = design(spec)
        lines.append(f"| {label} | {_pct(null.false_positive_rate)} ({_pct(lo)}-{_pct(hi)}) | {naive} | "
                     f"{_pct(alt.power)} ({_pct(plo)}-{_pct(phi)}) | "
                     f"{alt.stop_total.mean():,.0f} / {d.budget_total:,} |")
    return "\n".join(lines)


def design_markdown() -> str:
    lines = ["| baseline | MDE (relative) | challenger | fixed-horizon n | GSD horizon n (per arm) | E[n] at MDE "
             "| E[n] if no effect | mSPRT n for the same power |",
             "|---|---|---|---|---|---|---|---|"]
    for row in TABLE_ROWS:
        spec = parse_spec({**BASE, "metric": {**BASE["metric"], **row["metric"]}, "mde": row["mde"]})
        d = design(spec)
        m = design(parse_spec({**spec.model_dump(), "method": "msprt"}))
        lines.append(f"| {spec.metric.baseline:g} | {spec.mde:.0%} | {spec.target:.4g} | {d.fixed_total:,} | "
                     f"{d.budget_total:,} ({d.budget_per_arm[1]:,}) | {d.expected_total_effect:,.0f} | "
                     f"{d.expected_total_null:,.0f} | {m.required_total:,} |")
    return "\n".join(lines)


OTHER_DESIGNS: list[tuple[str, dict[str, Any]]] = [
    ("ab 50/50, gsd O'Brien-Fleming (default)", {}),
    ("ab, gsd Pocock", {"spending": "pocock"}),
    ("ab, mSPRT", {"method": "msprt"}),
    ("ab, binomial variance", {"variance": "binomial"}),
    ("canary 5 %", {"mode": "canary"}),
    ("canary 5 %, max_samples 50,000", {"mode": "canary", "max_samples": 50_000}),
    ("shadow (paired), agreement 0 (the conservative default)", {"mode": "shadow"}),
    ("shadow (paired), agreement 0.6", {"mode": "shadow", "agreement": 0.6}),
    ("ab, 10 outcomes/entity, ICC 0.05 (design_effect 1.45)", {"design_effect": 1.45}),
    ("AUC 0.90 -> 0.91, prevalence 1 %, ab", {"metric": {"kind": "auc", "name": "auc", "baseline": 0.9, "prevalence": 0.01},
                                              "mde": 0.01, "mde_kind": "absolute"}),
    ("AUC 0.90 -> 0.91, prevalence 1 %, shadow", {"mode": "shadow", "mde": 0.01, "mde_kind": "absolute",
                                                  "metric": {"kind": "auc", "name": "auc", "baseline": 0.9,
                                                             "prevalence": 0.01}}),
]


def other_designs_markdown() -> str:
    lines = ["| design (baseline 0.1, MDE +10 % unless stated) | horizon n | champion / challenger | power there "
             "| E[n] at MDE | E[n] if no effect |",
             "|---|---|---|---|---|---|"]
    for label, over in OTHER_DESIGNS:
        d = design(parse_spec({**BASE, **over}))
        arms = "paired" if d.paired else f"{d.budget_per_arm[0]:,} / {d.budget_per_arm[1]:,}"
        lines.append(f"| {label} | {d.budget_total:,} | {arms} | {_pct(d.power_at_budget)} | "
                     f"{d.expected_total_effect:,.0f} | {d.expected_total_null:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kindml.experiments.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=4000, help="experiments per scenario (default 4000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--design-only", action="store_true", help="print only the design table")
    args = parser.parse_args(argv)
    print("## Design (alpha 5 % two-sided, power 80 %, split 50/50, look every 1 % of the horizon; n = labelled "
          "outcomes over both arms)\n")
    print(design_markdown())
    print()
    print(other_designs_markdown())
    if not args.design_only:
        print(f"\n## Simulation ({args.sims} experiments per cell, seed {args.seed}; baseline 0.1, MDE +10 % relative)\n")
        print(simulation_table(args.sims, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
