"""Outcomes merge exactly across workers; the experiment state is JSON, bounded, resumable; guardrails; AUC; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kindml.experiments.assignment import assign_many
from kindml.experiments.auc import auc_from_histograms, score_bins
from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import parse_spec
from kindml.experiments.state import Experiment, Outcomes, merge_outcomes

pytestmark = pytest.mark.unit

SALT = "state-test-salt"
RATE = {"name": "exp", "salt": SALT, "metric": {"baseline": 0.1, "name": "catch_rate"}, "mde": 0.2,
        "guardrails": [{"name": "errors", "min_increase": 0.01, "alpha": 0.05}]}


def spec_of(**over):
    return parse_spec({**RATE, **over})


def traffic(rng, n: int, start: int, p=(0.1, 0.1), split=0.5):
    ids = list(range(start, start + n))
    arm = assign_many(ids, SALT, split).astype(int)
    ok = rng.random(n) < np.where(arm == 1, p[1], p[0])
    return ids, arm, ok


def test_outcomes_from_several_workers_add_up_exactly_in_any_order():
    spec = spec_of()
    rng = np.random.default_rng(1)
    ids, arm, ok = traffic(rng, 6000, 0)
    bad = rng.random(6000) < 0.01
    whole = Outcomes.empty(spec)
    whole.record_many(arm, ok, ids)
    whole.record_guardrails("errors", arm, bad, ids)
    worker = rng.integers(0, 3, size=6000)
    parts = []
    for w in range(3):
        m = worker == w
        o = Outcomes.empty(spec)
        sel = np.flatnonzero(m)
        # one at a time and in batches: the same counters
        for i in sel[:50]:
            o.record(["champion", "challenger"][arm[i]], bool(ok[i]), ids[i])
            o.record_guardrail("errors", int(arm[i]), bool(bad[i]), ids[i])
        rest = sel[50:]
        o.record_many(arm[rest], ok[rest], [ids[i] for i in rest])
        o.record_guardrails("errors", arm[rest], bad[rest], [ids[i] for i in rest])
        parts.append(Outcomes.from_dict(json.loads(json.dumps(o.to_dict())), spec))  # shipped as JSON
    assert merge_outcomes(parts) == whole
    assert merge_outcomes(parts[::-1]) == whole
    assert parts[0] + parts[1] + parts[2] == whole
    assert sum(whole.per_arm) == 6000


def test_paired_outcomes_count_discordant_pairs():
    spec = spec_of(mode="shadow")
    o = Outcomes.empty(spec)
    o.record_pairs([True, True, False, False, True], [True, False, True, False, True], ["a", "b", "c", "d", "e"])
    assert o.per_arm == (5, 5)
    assert o.s.sum(axis=1).tolist() == [3, 3] and int(o.d.sum()) == 2
    with pytest.raises(ExperimentError, match="pairs"):
        o.record("champion", True, "x")
    with pytest.raises(ExperimentError, match="per arm"):
        Outcomes.empty(spec_of()).record_pair(True, False, "x")


def test_recording_refuses_bad_input():
    o = Outcomes.empty(spec_of())
    with pytest.raises(ExperimentError, match="unknown arm"):
        o.record("baseline", True, "x")
    with pytest.raises(ExperimentError, match="booleans"):
        o.record_many(["champion"], [0.5], ["x"])
    with pytest.raises(ExperimentError, match="different lengths"):
        o.record_many(["champion", "challenger"], [True], ["x", "y"])
    with pytest.raises(ExperimentError, match="no guardrail 'latency'"):
        o.record_guardrail("latency", "champion", True, "x")
    with pytest.raises(ExperimentError, match="cannot be assigned"):
        o.record("champion", True, 1.5)
    with pytest.raises(ExperimentError, match="measures 'rate'"):
        o.record_score("champion", True, 0.3)
    assert sum(o.per_arm) == 0  # nothing half-recorded


def test_outcomes_of_another_experiment_or_a_damaged_document_are_refused():
    mine, other = Outcomes.empty(spec_of()), Outcomes.empty(spec_of(salt="another-salt-1"))
    with pytest.raises(ExperimentError, match="cannot be merged"):
        mine += other
    with pytest.raises(ExperimentError, match="do not belong"):
        Outcomes.from_dict(other.to_dict(), spec_of())
    # a different alpha or power does not change the counters: still mergeable
    Outcomes.from_dict(Outcomes.empty(spec_of(alpha=0.01)).to_dict(), spec_of())
    good = mine.to_dict()
    for broken, words in (
        ({**good, "kind": "x"}, "not a kindml"),
        ({**good, "version": 9}, "version"),
        ({**good, "counts": {**good["counts"], "n": [[1, 2]]}}, "shape"),
        ({**good, "counts": {**good["counts"], "n": "many"}}, "not integers"),
        ({**good, "counts": {k: v for k, v in good["counts"].items() if k != "s"}}, "missing"),
        ({**good, "counts": {**good["counts"], "extra": [1]}}, "unknown counts"),
        ({**good, "counts": {**good["counts"], "s": (np.array(good["counts"]["n"]) + 1).tolist()}}, "exceed"),
    ):
        with pytest.raises(ExperimentError, match=words):
            Outcomes.from_dict(broken, spec_of())


def run_to_the_end(exp: Experiment, rng, p, batch: int = 1500, start: int = 0, stop_after: int | None = None) -> int:
    uid, looks = start, 0
    while not (exp.decision and exp.decision.final):
        w = Outcomes.empty(exp.spec)
        ids, arm, ok = traffic(rng, batch, uid, p)
        w.record_many(arm, ok, ids)
        w.record_guardrails("errors", arm, np.zeros(batch, dtype=bool), ids)
        exp.add(w.to_dict())
        uid += batch
        looks += exp.look(now=float(looks)).formal
        if stop_after is not None and uid >= stop_after:
            break
    return uid


def test_state_is_bounded_json_and_resumes_to_the_same_path():
    spec = spec_of(mde=0.1)
    a = Experiment.start(spec)
    end = run_to_the_end(a, np.random.default_rng(5), (0.1, 0.1))
    assert a.decision.final and len(a.looks) <= 101
    text = a.to_json()
    assert len(text) < 64_000  # counters are fixed-size; the path is at most 1/look_every + 1 looks
    json.loads(text)
    # interrupt after a third, save, load, continue: the same looks and the same decision
    b = Experiment.start(spec)
    rng = np.random.default_rng(5)
    uid = run_to_the_end(b, rng, (0.1, 0.1), stop_after=end // 3)
    b = Experiment.from_json(b.to_json())
    assert b._recursion is None  # rebuilt from the stored path at the next look
    run_to_the_end(b, rng, (0.1, 0.1), start=uid)
    assert b.decision == a.decision
    assert [lk["spending_z"] for lk in b.looks] == [lk["spending_z"] for lk in a.looks]
    assert [lk["z"] for lk in b.looks] == [lk["z"] for lk in a.looks]
    # the counters' size does not grow with traffic
    small = Outcomes.empty(spec)
    ids, arm, ok = traffic(np.random.default_rng(0), 100, 0)
    small.record_many(arm, ok, ids)
    assert abs(len(json.dumps(small.to_dict())) - len(json.dumps(a.outcomes.to_dict()))) < 2_000


def test_extreme_early_boundaries_stay_finite_and_json_safe():
    # look_every 0.0025: the first O'Brien-Fleming boundary's tail underflows float64
    exp = Experiment.start(spec_of(mde=0.1, look_every=0.0025, min_samples=30))
    rng = np.random.default_rng(6)
    uid = 0
    while not exp.looks:
        w = Outcomes.empty(exp.spec)
        ids, arm, ok = traffic(rng, 100, uid)
        uid += 100
        w.record_many(arm, ok, ids)
        exp.add(w)
        exp.look()
    assert np.isfinite(exp.looks[0]["boundary"]) and exp.looks[0]["boundary"] >= 40
    Experiment.from_json(exp.to_json())


def test_a_final_decision_is_final_and_the_path_is_reported():
    exp = Experiment.start(spec_of(mde=0.3))
    run_to_the_end(exp, np.random.default_rng(9), (0.1, 0.16))
    assert exp.decision.action == "promote" and exp.decision.serve == "challenger"
    n = sum(exp.outcomes.per_arm)
    w = Outcomes.empty(exp.spec)
    ids, arm, ok = traffic(np.random.default_rng(1), 3000, 10**7, (0.5, 0.0))  # the challenger now looks terrible
    w.record_many(arm, ok, ids)
    exp.add(w)
    assert exp.look().action == "promote"  # no second decision
    rep = exp.report()
    json.dumps(rep, allow_nan=False)
    assert rep["decision"]["action"] == "promote" and rep["path"][-1]["action"] == "promote"
    assert rep["outcomes_per_arm"]["champion"] + rep["outcomes_per_arm"]["challenger"] == n + 3000
    last = rep["path"][-1]
    assert last["ci"][0] > 0  # the repeated confidence interval excludes 0 when the boundary is crossed
    assert "challenger better" in exp.decision.reason
    assert rep["design_text"].startswith("catch_rate (rate)")


def test_nothing_is_decided_before_min_samples_or_between_formal_looks():
    exp = Experiment.start(spec_of())
    st = exp.look()
    assert st.action == "keep_running" and "waiting" in st.decision.reason and not st.formal
    w = Outcomes.empty(exp.spec)
    ids, arm, ok = traffic(np.random.default_rng(2), 600, 0, (0.0, 1.0))  # the challenger always succeeds; ~300 per arm
    w.record_many(arm, ok, ids)
    exp.add(w)
    exp2 = Experiment.start(spec_of(min_samples=400))
    exp2.add(w)
    assert exp2.look().action == "keep_running"  # min_samples not reached
    st = exp.look()
    assert st.action == "promote" and st.formal  # rates of exactly 0 and 1: no residuals, still overwhelming


def test_merging_experiments_keeps_the_one_history():
    spec = spec_of()
    evaluator, worker = Experiment.start(spec), Experiment.start(spec)
    run_to_the_end(evaluator, np.random.default_rng(3), (0.1, 0.1), stop_after=9000)
    assert evaluator.looks
    w = Outcomes.empty(spec)
    ids, arm, ok = traffic(np.random.default_rng(4), 1000, 10**6)
    w.record_many(arm, ok, ids)
    worker.add(w)
    before = sum(evaluator.outcomes.per_arm)
    worker.merge(evaluator)  # the worker's copy takes over the evaluator's history
    assert sum(worker.outcomes.per_arm) == before + 1000 and worker.looks == evaluator.looks
    with pytest.raises(ExperimentError, match="both copies"):
        worker.merge(evaluator)


def test_a_broken_challenger_is_rolled_back_by_the_guardrail():
    spec = spec_of()
    exp = Experiment.start(spec)
    rng = np.random.default_rng(11)
    for k in range(40):
        w = Outcomes.empty(spec)
        ids = list(range(k * 1000, (k + 1) * 1000))
        arm = assign_many(ids, SALT, 0.5).astype(int)
        w.record_guardrails("errors", arm, rng.random(1000) < np.where(arm == 1, 0.04, 0.01), ids)
        exp.add(w)
        if exp.look().decision.final:
            break
    assert exp.decision.action == "rollback" and exp.decision.reason.startswith("guardrail errors")
    assert k < 10  # caught within a few thousand requests


def test_guardrail_false_alarm_rate_is_below_its_alpha():
    # 300 A = A experiments, the guardrail checked after each of 30 batches: always valid, so <= alpha (0.05)
    spec = spec_of()
    rng = np.random.default_rng(12)
    alarms = 0
    sims = 300
    for _ in range(sims):
        exp = Experiment.start(spec)
        for _k in range(30):
            gn = rng.multinomial(200, np.full(64, 1 / 64), size=2)
            exp.outcomes.guardrails["errors"][0][...] += gn
            exp.outcomes.guardrails["errors"][1][...] += rng.binomial(gn, 0.02)
            if exp._guardrails() is not None:
                alarms += 1
                break
    assert alarms / sims <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / sims)


def exact_delong(pos_scores: np.ndarray, neg_scores: np.ndarray) -> tuple[float, float]:
    gt = (pos_scores[:, None] > neg_scores[None, :]) + 0.5 * (pos_scores[:, None] == neg_scores[None, :])
    v10, v01 = gt.mean(1), gt.mean(0)
    auc = float(v10.mean())
    return auc, float(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01))


def test_binned_auc_and_delong_variance_match_the_exact_ones():
    rng = np.random.default_rng(13)
    y = rng.random(6000) < 0.05
    s = 1 / (1 + np.exp(-(-4 + 2.2 * y + rng.normal(0, 1, y.size))))
    b = score_bins(s, 400)
    st = auc_from_histograms(np.bincount(b[y], minlength=400), np.bincount(b[~y], minlength=400))
    auc, var = exact_delong(s[y], s[~y])
    assert st.auc == pytest.approx(auc, abs=5e-4)
    assert st.var == pytest.approx(var, rel=0.02)
    with pytest.raises(ExperimentError, match="probabilities"):
        score_bins(np.array([0.2, 1.5]), 400)


def test_auc_is_decided_once_at_the_horizon():
    spec = parse_spec({"name": "auc-exp", "salt": SALT, "mode": "shadow",
                       "metric": {"kind": "auc", "name": "auc", "baseline": 0.8, "prevalence": 0.2},
                       "mde": 0.05, "mde_kind": "absolute"})
    exp = Experiment.start(spec)
    horizon = exp.design.budget_total
    rng = np.random.default_rng(14)
    seen, formal = 0, 0
    while not exp.decision or not exp.decision.final:
        m = 500
        y = rng.random(m) < 0.2
        champ = 1 / (1 + np.exp(-(-1.5 + 1.2 * y + rng.normal(0, 1, m))))
        chall = 1 / (1 + np.exp(-(-1.5 + 2.4 * y + rng.normal(0, 1, m))))  # clearly better from the start
        w = Outcomes.empty(spec)
        w.record_score_pairs(y, champ, chall)
        exp.add(w)
        seen += m
        st = exp.look()
        formal += st.formal
        if seen < horizon:
            assert st.action == "keep_running"  # no early decision on an AUC
    assert seen >= horizon and exp.decision.action == "promote"
    assert exp.looks[-1]["boundary"] == pytest.approx(1.959964, abs=1e-5)
    assert all(lk.get("informational") for lk in exp.looks[:-1])
    assert len(exp.looks) <= 101
    json.dumps(exp.report(), allow_nan=False)
    with pytest.raises(ExperimentError, match="outcomes are pairs") as err:
        Outcomes.empty(spec).record_score("champion", True, 0.4)
    assert "record_score_pair" in err.value.hint
