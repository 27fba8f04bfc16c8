"""The statistics under simulation: false-positive rate at α under A = A with a look after every batch, power at the
design effect, why peeking needs a sequential test, clustered outcomes -- and the live Experiment takes the same decisions.

Every simulation is seeded, vectorised over experiments, and sized to run in a few seconds on one core.
Tolerances come from the binomial standard error of the simulated rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kindml.experiments.design import design
from kindml.experiments.simulate import (
    BASE,
    batch_sizes,
    independent_batches,
    paired_batches,
    run,
    simulate,
)
from kindml.experiments.spec import parse_spec
from kindml.experiments.state import Experiment

pytestmark = pytest.mark.unit

ALPHA = 0.05


def spec_of(**over):
    return parse_spec({**BASE, **over})


def se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize(("label", "over", "sims", "kw"), [
    ("default: gsd, O'Brien-Fleming, cluster variance", {}, 2000, {}),
    ("binomial variance", {"variance": "binomial"}, 2000, {}),
    ("Pocock spending", {"spending": "pocock"}, 2000, {}),
    ("canary 5 %", {"mode": "canary"}, 1000, {}),
    ("shadow, paired, agreement 0.6", {"mode": "shadow", "agreement": 0.6}, 2000, {}),
])
def test_false_positive_rate_under_a_equals_a_is_at_the_nominal_level(label, over, sims, kw):
    spec = spec_of(**over)
    r = simulate(spec, effect=False, sims=sims, seed=101, **kw)
    assert r.looks >= 95  # a formal look after every batch (1 % of the horizon each)
    assert 0.03 <= r.false_positive_rate <= 0.07, (label, r.false_positive_rate)
    assert abs(r.false_positive_rate - ALPHA) < 3.5 * se(ALPHA, sims), (label, r.false_positive_rate)
    # promote and rollback are symmetric under A = A
    assert abs(r.rate("promote") - r.rate("rollback")) < 4 * se(ALPHA / 2, sims) * math.sqrt(2)
    assert set(np.unique(r.actions)) <= {"promote", "rollback", "stop_for_futility"}  # nothing left running


def test_naive_repeated_fixed_horizon_z_tests_peek_their_way_to_false_positives():
    r = simulate(spec_of(variance="binomial"), effect=False, sims=2000, seed=202, naive=True)
    assert r.naive_rate > 0.25  # ~35 % with 100 peeks at |z| >= 1.96, on the same data
    assert r.false_positive_rate <= 0.07  # the sequential test on the same data


@pytest.mark.parametrize(("over", "sims"), [({}, 2000), ({"variance": "binomial"}, 2000), ({"mode": "canary"}, 800),
                                            ({"mode": "shadow", "agreement": 0.6}, 2000)])
def test_power_at_the_design_effect_within_the_designed_horizon(over, sims):
    spec = spec_of(**over)
    d = design(spec)
    r = simulate(spec, effect=True, sims=sims, seed=303)
    # the design promises 80 %; the simulated power must agree within Monte Carlo error
    assert d.power_at_budget == pytest.approx(0.8, abs=0.002)
    assert r.power >= 0.8 - 2.5 * se(0.8, sims), r.power
    assert abs(r.power - d.power_at_budget) < 3 * se(0.8, sims)
    assert r.rate("rollback") < 0.001  # never the wrong way at the MDE
    per_arm, _ = batch_sizes(d, spec)
    assert r.stop_total.max() <= d.budget_total + per_arm.sum()  # within the horizon (plus the last batch)
    assert abs(r.stop_total.mean() - d.expected_total_effect) < 0.03 * d.budget_total  # the designed E[n]


def test_a_shadow_design_without_the_agreement_is_conservative():
    spec = spec_of(mode="shadow")  # agreement 0: sized as if the two models' outcomes were independent
    r = simulate(spec, effect=True, sims=1000, seed=350, agreement=0.6)
    assert r.power > 0.95
    assert design(spec).budget_total > 2 * design(spec_of(mode="shadow", agreement=0.6)).budget_total


def test_msprt_is_always_valid_but_conservative_at_a_finite_horizon():
    spec = spec_of(method="msprt", variance="binomial")
    d = design(spec)
    r = simulate(spec, effect=False, sims=2000, seed=404)
    assert r.false_positive_rate <= ALPHA
    designed = float(next(n for n in d.notes if "false-positive" in n).split(" is ")[1].split("%")[0]) / 100
    assert abs(r.false_positive_rate - designed) < 4 * se(designed, 2000)
    power = simulate(spec, effect=True, sims=1000, seed=405).power
    assert power >= 0.8 - 2.5 * se(0.8, 1000)


def test_clustered_outcomes_need_the_cluster_variance():
    # 10 outcomes per entity with intra-class correlation 0.05: design effect 1 + 9 * 0.05 = 1.45
    kw = {"cluster": (10, 0.05)}
    naive = simulate(spec_of(variance="binomial", design_effect=1.45), effect=False, sims=1000, seed=505, **kw)
    robust = simulate(spec_of(design_effect=1.45), effect=False, sims=2000, seed=506, **kw)
    assert naive.false_positive_rate > 0.09  # the binomial variance is too small by the design effect
    assert 0.03 <= robust.false_positive_rate <= 0.07
    power = simulate(spec_of(design_effect=1.45), effect=True, sims=800, seed=507, **kw).power
    assert power >= 0.8 - 2.5 * se(0.8, 800)


def _feed(spec, batches, i: int) -> Experiment:
    exp = Experiment.start(spec)
    for n, s, dd in batches:
        o = exp.outcomes
        if spec.paired:
            o.n += n[i]
            o.s += s[i]
            o.d += dd[i]
        else:
            o.n += n[i]
            o.s += s[i]
        if exp.look(now=0.0).decision.final:
            break
    return exp


@pytest.mark.parametrize("over", [{}, {"variance": "binomial"}, {"method": "msprt", "variance": "binomial"},
                                  {"mode": "shadow", "agreement": 0.6}])
def test_the_live_experiment_takes_the_simulators_decisions(over):
    spec = spec_of(**over)
    d = design(spec)
    sims = 25
    rng = np.random.default_rng(606)
    per_arm, k = batch_sizes(d, spec)
    p = (spec.metric.baseline, spec.metric.baseline + 0.8 * spec.effect)  # some promote early, some run out
    if spec.paired:
        batches = list(paired_batches(rng, sims, k + 1, int(per_arm[0]), p, 0.6, spec.buckets))
    else:
        batches = list(independent_batches(rng, sims, k + 1, per_arm, p, spec.buckets))
    sim = run(spec, iter(batches), sims)
    assert len(set(sim.actions)) >= 2
    for i in range(sims):
        exp = _feed(spec, batches, i)
        assert exp.decision.action == sim.actions[i], i
        assert (sum(exp.outcomes.per_arm) if not spec.paired else exp.outcomes.per_arm[0]) == sim.stop_total[i]
        assert len(exp.looks) <= math.ceil(1 / spec.look_every) + 1
