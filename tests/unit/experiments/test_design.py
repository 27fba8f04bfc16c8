"""The design shown up front: textbook fixed-horizon sizes, the sequential horizon's power, budgets, AUC."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import norm

from kindml.experiments.auc import hanley_mcneil
from kindml.experiments.design import design, schedule
from kindml.experiments.spec import parse_spec

pytestmark = pytest.mark.unit

BASE = {"name": "d", "salt": "design-salt", "metric": {"baseline": 0.1}, "mde": 0.1}


def d_of(**over):
    metric = {**BASE["metric"], **over.pop("metric", {})}
    return design(parse_spec({**BASE, "metric": metric, **over}))


def test_fixed_horizon_is_the_textbook_two_proportion_size():
    p0, p1 = 0.1, 0.11
    pbar = (p0 + p1) / 2
    za, zb = norm.isf(0.025), norm.isf(0.2)
    per_arm = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))) ** 2 / (p1 - p0) ** 2
    d = d_of(variance="binomial")
    assert d.fixed_total == math.ceil(2 * per_arm)  # 14,751 per arm (Fleiss, no continuity correction)
    assert round(per_arm) == 14751


def test_the_horizon_has_the_designed_power_and_costs_a_few_percent_more():
    for over in ({}, {"variance": "binomial"}, {"spending": "pocock"}, {"mode": "canary"}, {"mode": "shadow"},
                 {"metric": {"baseline": 0.02, "direction": "decrease"}, "mde": 0.2}):
        d = d_of(**over)
        assert d.power_at_budget == pytest.approx(0.8, abs=0.002), over
        assert d.required_total == d.budget_total and d.required_total > d.fixed_total
        assert d.expected_total_effect < 0.85 * d.budget_total  # stops early under the effect
        assert d.expected_total_null > 0.97 * d.budget_total  # rarely stops without one
    obf, pocock = d_of(), d_of(spending="pocock")
    assert obf.required_total < 1.1 * obf.fixed_total
    assert pocock.required_total > obf.required_total and pocock.expected_total_effect < 1.05 * obf.expected_total_effect
    assert len(schedule(0.01)) == obf.looks == 100


def test_allocation_and_mode_change_the_size_as_they_should():
    ab, canary, shadow = d_of(), d_of(mode="canary"), d_of(mode="shadow")
    assert canary.required_total > 5 * ab.required_total  # a 5 % arm is expensive
    assert canary.budget_per_arm[1] == pytest.approx(0.05 * canary.budget_total, abs=1)
    assert shadow.paired and shadow.budget_per_arm == (shadow.budget_total, shadow.budget_total)
    assert shadow.required_total == pytest.approx(ab.required_total / 2, rel=0.03)  # both models on every request
    assert d_of(design_effect=2.0).required_total == pytest.approx(2 * ab.required_total, rel=1e-3)


def test_a_smaller_budget_reports_its_lower_power():
    full = d_of()
    half = d_of(max_samples=full.required_total // 2)
    assert half.budget_total == full.required_total // 2 and half.required_total == full.required_total
    assert 0.45 < half.power_at_budget < 0.6
    assert any("below the" in n for n in half.notes)
    more = d_of(max_samples=2 * full.required_total)
    assert more.power_at_budget > 0.97


def test_msprt_needs_more_samples_and_is_conservative_at_a_finite_horizon():
    gsd, msprt = d_of(variance="binomial"), d_of(variance="binomial", method="msprt")
    assert msprt.required_total > 1.3 * gsd.required_total
    assert msprt.tau is not None and 0 < msprt.tau < 0.1
    assert msprt.power_at_budget == pytest.approx(0.8, abs=0.002)
    fpr = float(next(n for n in msprt.notes if "false-positive" in n).split(" is ")[1].split("%")[0]) / 100
    assert 0.005 < fpr < 0.04


def test_design_is_deterministic_json_ready_and_described():
    d = d_of()
    assert d_of() is d  # same spec, same numbers (memoised)
    json.dumps(d.to_dict())
    text = d.describe()
    assert f"{d.required_total:,}" in text and f"{d.fixed_total:,}" in text and "power" in text
    assert "0.1 -> challenger 0.11" in text


def test_auc_design_is_the_hanley_mcneil_fixed_horizon():
    spec = parse_spec({**BASE, "metric": {"kind": "auc", "name": "auc", "baseline": 0.9, "prevalence": 0.05},
                       "mde": 0.02, "mde_kind": "absolute"})
    d = design(spec)
    assert d.method == "fixed" and d.target == pytest.approx(0.92)
    n = d.required_total / 2
    sd0 = math.sqrt(2 * hanley_mcneil(0.9, 0.05 * n, 0.95 * n))
    sd1 = math.sqrt(hanley_mcneil(0.9, 0.05 * n, 0.95 * n) + hanley_mcneil(0.92, 0.05 * n, 0.95 * n))
    assert norm.isf(0.025) * sd0 + norm.isf(0.2) * sd1 == pytest.approx(0.02, rel=1e-3)
    assert d.power_at_budget == pytest.approx(0.8, abs=0.002)
    assert "not sequential" in d.describe()
