"""The state of a running experiment: mergeable outcome counts, and the one evaluator's looks and decision.

Two objects, two roles:

:class:`Outcomes` -- what every predictor worker keeps and ships
    Integer counters only, of a size fixed by the spec (never per request):

    ===================  =====================================================
    rate, ab / canary    ``n[arm, bucket]``, ``s[arm, bucket]`` (outcomes, successes)
    rate, shadow         ``n[bucket]``, ``s[arm, bucket]``, ``d[bucket]`` (discordant pairs)
    auc                  ``hist[arm, label, bin]`` (score histograms)
    each guardrail       ``n[arm, bucket]``, ``s[arm, bucket]`` (requests, bad events)
    ===================  =====================================================

    ``a + b`` adds counters, so outcomes from several workers or processes
    merge *exactly* and in any order (addition of integers is associative
    and commutative). A worker typically records for a while, ships
    ``to_dict()`` (JSON) and starts from ``Outcomes.empty(spec)`` again.
    Counters carry the experiment's name and a fingerprint of its spec, so
    outcomes of another experiment (or another salt, split, metric...) are
    refused instead of silently mixed.

:class:`Experiment` -- what the single evaluator keeps
    The spec, its :class:`~kindml.experiments.design.Design`, the accumulated
    :class:`Outcomes`, the history of *formal looks* (the sequential test's
    path, for the report: at most ``ceil(1 / look_every) + 1`` entries) and
    the decision. Looks must be taken by one evaluator (the alpha spent at a
    look depends on the looks before it): merge workers' outcomes into it,
    never two histories. JSON round trip: :meth:`Experiment.to_dict` /
    :meth:`Experiment.from_dict`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kindml.experiments.assignment import ARMS, buckets_of
from kindml.experiments.auc import auc_look, score_bins
from kindml.experiments.boundaries import Recursion, spent
from kindml.experiments.design import Design, design
from kindml.experiments.errors import ExperimentError
from kindml.experiments.sequential import (
    Decision,
    formal_look_due,
    guardrail_check,
    paired_stat,
    rate_look,
    stat_record,
    unpaired_stat,
)
from kindml.experiments.spec import ExperimentSpec, parse_spec

OUTCOMES_KIND = "kindml.experiment.outcomes"
EXPERIMENT_KIND = "kindml.experiment"
VERSION = 1

Ids = Sequence[str | bytes | int] | np.ndarray


def fingerprint(spec: ExperimentSpec) -> str:
    """Short digest of everything that makes two experiments' counters comparable."""
    keyed = spec.model_dump(mode="json", exclude={"champion", "challenger", "guardrails", "max_samples", "min_samples",
                                                   "look_every", "alpha", "power", "method", "spending", "mde",
                                                   "mde_kind", "design_effect"})
    keyed["guardrails"] = sorted(g.name for g in spec.guardrails)
    return hashlib.blake2b(json.dumps(keyed, sort_keys=True).encode(), digest_size=8).hexdigest()


def _arm_index(arms: Any, size: int | None = None) -> np.ndarray:
    a = np.asarray(arms)
    if a.dtype.kind in "US":
        idx = np.where(a == "challenger", 1, np.where(a == "champion", 0, -1))
    elif a.dtype.kind in "biu":
        idx = a.astype(np.int64)
    else:
        idx = np.array([1 if x == "challenger" else 0 if x == "champion" else -1 for x in np.ravel(a)]).reshape(a.shape)
    if idx.size and (idx.min() < 0 or idx.max() > 1):
        raise ExperimentError(f"unknown arm in {np.unique(a)[:5].tolist()}", "An arm is 'champion' or 'challenger' (or 0 / 1).")
    if size is not None and idx.ndim == 0:
        idx = np.full(size, int(idx))
    return idx


def _flags(values: Any, what: str) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype == bool:
        return v
    if v.dtype.kind in "iuf" and np.all(np.isin(v, (0, 1))):
        return v.astype(bool)
    raise ExperimentError(f"{what} must be booleans (or 0/1)", f"Record {what} as True/False per labelled outcome.")


def _same_length(*arrays: np.ndarray) -> int:
    sizes = {np.size(a) for a in arrays}
    if len(sizes) != 1:
        raise ExperimentError(f"batch columns have different lengths: {sorted(sizes)}", "Pass one value per outcome in every column.")
    return sizes.pop()


class Outcomes:
    """Mergeable counters of one experiment's outcomes (see the module docstring for the layout)."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        b = spec.buckets
        self.kind = spec.metric.kind
        self.paired = spec.paired
        if self.kind == "auc":
            self.hist = np.zeros((2, 2, spec.metric.score_bins), dtype=np.int64)
        elif self.paired:
            self.n = np.zeros(b, dtype=np.int64)
            self.s = np.zeros((2, b), dtype=np.int64)
            self.d = np.zeros(b, dtype=np.int64)
        else:
            self.n = np.zeros((2, b), dtype=np.int64)
            self.s = np.zeros((2, b), dtype=np.int64)
        self.guardrails = {g.name: (np.zeros((2, b), dtype=np.int64), np.zeros((2, b), dtype=np.int64))
                           for g in spec.guardrails}

    @classmethod
    def empty(cls, spec: ExperimentSpec | Mapping[str, Any]) -> Outcomes:
        return cls(parse_spec(spec))

    # ---- recording -------------------------------------------------------------------------

    def _need(self, kind: str, paired: bool | None) -> None:
        if self.kind != kind:
            raise ExperimentError(f"experiment {self.spec.name!r} measures {self.kind!r}, not {kind!r}",
                                  "Use record/record_pair for a rate, record_score/record_score_pair for an AUC.")
        if paired is not None and paired != self.paired:
            raise ExperimentError(
                f"experiment {self.spec.name!r} is in mode {self.spec.mode!r}: outcomes are "
                + ("pairs (both models on the same request)" if self.paired else "per arm"),
                "In shadow use record_pair / record_score_pair; in ab and canary use record / record_score.")

    def record(self, arm: str | int, success: bool, entity_id: str | bytes | int) -> None:
        """One labelled outcome of ``arm`` (ab, canary): ``success`` is the metric's event (converted, caught)."""
        self.record_many([arm], [success], [entity_id])

    def record_many(self, arms: Any, successes: Any, entity_ids: Ids) -> None:
        """A batch of labelled outcomes (vectorised)."""
        self._need("rate", False)
        n = _same_length(np.asarray(arms), np.asarray(successes), np.asarray(entity_ids, dtype=object))
        a = _arm_index(arms, n)
        ok = _flags(successes, "successes")
        bk = buckets_of(entity_ids, self.spec.salt, self.spec.buckets)
        np.add.at(self.n, (a, bk), 1)
        np.add.at(self.s, (a, bk), ok.astype(np.int64))

    def record_pair(self, champion_success: bool, challenger_success: bool, entity_id: str | bytes | int) -> None:
        """One labelled request scored by both models (shadow)."""
        self.record_pairs([champion_success], [challenger_success], [entity_id])

    def record_pairs(self, champion_successes: Any, challenger_successes: Any, entity_ids: Ids) -> None:
        self._need("rate", True)
        _same_length(np.asarray(champion_successes), np.asarray(challenger_successes), np.asarray(entity_ids, dtype=object))
        a = _flags(champion_successes, "champion_successes")
        b = _flags(challenger_successes, "challenger_successes")
        bk = buckets_of(entity_ids, self.spec.salt, self.spec.buckets)
        np.add.at(self.n, bk, 1)
        np.add.at(self.s[0], bk, a.astype(np.int64))
        np.add.at(self.s[1], bk, b.astype(np.int64))
        np.add.at(self.d, bk, (a != b).astype(np.int64))

    def record_score(self, arm: str | int, label: bool, score: float) -> None:
        """One labelled score of ``arm`` (AUC; ab, canary)."""
        self.record_scores([arm], [label], [score])

    def record_scores(self, arms: Any, labels: Any, scores: Any) -> None:
        self._need("auc", False)
        n = _same_length(np.asarray(arms), np.asarray(labels), np.asarray(scores))
        a = _arm_index(arms, n)
        y = _flags(labels, "labels").astype(np.int64)
        np.add.at(self.hist, (a, y, score_bins(scores, self.hist.shape[-1])), 1)

    def record_score_pair(self, label: bool, champion_score: float, challenger_score: float) -> None:
        """One labelled request scored by both models (AUC; shadow)."""
        self.record_score_pairs([label], [champion_score], [challenger_score])

    def record_score_pairs(self, labels: Any, champion_scores: Any, challenger_scores: Any) -> None:
        self._need("auc", True)
        _same_length(np.asarray(labels), np.asarray(champion_scores), np.asarray(challenger_scores))
        y = _flags(labels, "labels").astype(np.int64)
        bins = self.hist.shape[-1]
        np.add.at(self.hist, (0, y, score_bins(champion_scores, bins)), 1)
        np.add.at(self.hist, (1, y, score_bins(challenger_scores, bins)), 1)

    def record_guardrail(self, name: str, arm: str | int, bad: bool, entity_id: str | bytes | int) -> None:
        """One request of ``arm`` for guardrail ``name``: ``bad`` = the bad event happened (error, timeout)."""
        self.record_guardrails(name, [arm], [bad], [entity_id])

    def record_guardrails(self, name: str, arms: Any, bad: Any, entity_ids: Ids) -> None:
        if name not in self.guardrails:
            raise ExperimentError(f"experiment {self.spec.name!r} has no guardrail {name!r}",
                                  f"Declare it under guardrails; known: {', '.join(self.guardrails) or 'none'}.")
        n = _same_length(np.asarray(arms), np.asarray(bad), np.asarray(entity_ids, dtype=object))
        a = _arm_index(arms, n)
        flags = _flags(bad, "bad")
        bk = buckets_of(entity_ids, self.spec.salt, self.spec.buckets)
        gn, gs = self.guardrails[name]
        np.add.at(gn, (a, bk), 1)
        np.add.at(gs, (a, bk), flags.astype(np.int64))

    # ---- merging ---------------------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.kind == "auc":
            out = {"hist": self.hist}
        elif self.paired:
            out = {"n": self.n, "s": self.s, "d": self.d}
        else:
            out = {"n": self.n, "s": self.s}
        for name, (gn, gs) in self.guardrails.items():
            out[f"guardrail.{name}.n"] = gn
            out[f"guardrail.{name}.s"] = gs
        return out

    def _check_compatible(self, other: Outcomes) -> None:
        if fingerprint(self.spec) != fingerprint(other.spec) or self.spec.name != other.spec.name:
            raise ExperimentError(f"outcomes of experiment {other.spec.name!r} cannot be merged into {self.spec.name!r}: "
                                  "their specs differ (name, salt, mode, split, metric, buckets or guardrails)",
                                  "Merge only outcomes recorded under the same experiment spec.")

    def __iadd__(self, other: Outcomes) -> Outcomes:
        self._check_compatible(other)
        mine, theirs = self._arrays(), other._arrays()
        for key, arr in mine.items():
            arr += theirs[key]
        return self

    def __add__(self, other: Outcomes) -> Outcomes:
        out = self.copy()
        out += other
        return out

    def copy(self) -> Outcomes:
        out = Outcomes(self.spec)
        for key, arr in out._arrays().items():
            arr[...] = self._arrays()[key]
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcomes):
            return NotImplemented
        a, b = self._arrays(), other._arrays()
        return fingerprint(self.spec) == fingerprint(other.spec) and a.keys() == b.keys() and \
            all(np.array_equal(a[k], b[k]) for k in a)

    @property
    def per_arm(self) -> tuple[int, int]:
        """Labelled outcomes counted for (champion, challenger)."""
        if self.kind == "auc":
            c = self.hist.sum(axis=(1, 2))
            return int(c[0]), int(c[1])
        if self.paired:
            return int(self.n.sum()), int(self.n.sum())
        c = self.n.sum(axis=1)
        return int(c[0]), int(c[1])

    # ---- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"kind": OUTCOMES_KIND, "version": VERSION, "experiment": self.spec.name,
                "fingerprint": fingerprint(self.spec),
                "counts": {k: v.tolist() for k, v in self._arrays().items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], spec: ExperimentSpec | Mapping[str, Any]) -> Outcomes:
        """Outcomes shipped by a worker, checked against the evaluator's ``spec``."""
        spec = parse_spec(spec)
        if not isinstance(data, Mapping) or data.get("kind") != OUTCOMES_KIND:
            raise ExperimentError("not a kindml experiment outcomes document", "Ship Outcomes.to_dict() as it is.")
        if data.get("version") != VERSION:
            raise ExperimentError(f"outcomes version {data.get('version')!r} is not {VERSION}", "Upgrade the sender or the reader.")
        if data.get("experiment") != spec.name or data.get("fingerprint") != fingerprint(spec):
            raise ExperimentError(f"outcomes of experiment {data.get('experiment')!r} (fingerprint {data.get('fingerprint')}) "
                                  f"do not belong to {spec.name!r} ({fingerprint(spec)})",
                                  "Merge only outcomes recorded under the same experiment spec.")
        out = cls(spec)
        counts = data.get("counts")
        if not isinstance(counts, Mapping):
            raise ExperimentError("outcomes document has no counts", "Ship Outcomes.to_dict() as it is.")
        for key, arr in out._arrays().items():
            try:
                got = np.asarray(counts[key], dtype=np.int64)
            except (KeyError, TypeError, ValueError, OverflowError):
                raise ExperimentError(f"outcomes counts {key!r} missing or not integers", "Ship Outcomes.to_dict() as it is.") from None
            if got.shape != arr.shape or (got.size and got.min() < 0):
                raise ExperimentError(f"outcomes counts {key!r} have shape {got.shape} (want {arr.shape}) or negative values",
                                      "Ship Outcomes.to_dict() as it is.")
            arr[...] = got
        if set(counts) - set(out._arrays()):
            raise ExperimentError(f"unknown counts in outcomes: {sorted(set(counts) - set(out._arrays()))}",
                                  "Ship Outcomes.to_dict() as it is.")
        out._check_consistent()
        return out

    def _check_consistent(self) -> None:
        bad = []
        if self.kind == "rate":
            n = self.n if not self.paired else np.stack([self.n, self.n])
            if np.any(self.s > n):
                bad.append("successes exceed outcomes")
            if self.paired and np.any(self.d > self.n):
                bad.append("discordant pairs exceed pairs")
        for name, (gn, gs) in self.guardrails.items():
            if np.any(gs > gn):
                bad.append(f"guardrail {name}: bad events exceed requests")
        if bad:
            raise ExperimentError("inconsistent outcome counts: " + "; ".join(bad), "Ship Outcomes.to_dict() as it is.")


@dataclass(frozen=True)
class Status:
    """The answer of :meth:`Experiment.look`."""

    decision: Decision
    formal: bool  # this call took a formal look (appended to the path)
    current: dict[str, Any] | None  # the statistic now (also between formal looks)

    @property
    def action(self) -> str:
        return self.decision.action

    def to_dict(self) -> dict[str, Any]:
        return {**self.decision.to_dict(), "formal": self.formal, "current": self.current}


class Experiment:
    """The evaluator's view of one experiment: outcomes, the path of formal looks, the decision."""

    def __init__(self, spec: ExperimentSpec, outcomes: Outcomes | None = None, looks: list[dict[str, Any]] | None = None,
                 decision: Decision | None = None, min_p: float = 1.0, guardrail_p: dict[str, float] | None = None) -> None:
        self.spec = spec
        self.design: Design = design(spec)
        self.outcomes = outcomes if outcomes is not None else Outcomes(spec)
        self.looks: list[dict[str, Any]] = list(looks or [])
        self.decision = decision
        self.min_p = float(min_p)
        self.guardrail_p = {g.name: 1.0 for g in spec.guardrails} | dict(guardrail_p or {})
        self._recursion: Recursion | None = None  # in memory only: the spending recursion through self.looks
        self._recursion_looks = -1

    @classmethod
    def start(cls, spec: ExperimentSpec | Mapping[str, Any]) -> Experiment:
        return cls(parse_spec(spec))

    def add(self, outcomes: Outcomes | Mapping[str, Any]) -> None:
        """Merge a worker's outcomes (an :class:`Outcomes` or its ``to_dict()``)."""
        if not isinstance(outcomes, Outcomes):
            outcomes = Outcomes.from_dict(outcomes, self.spec)
        self.outcomes += outcomes

    def merge(self, other: Experiment) -> None:
        """Add another copy's outcomes; only one of the two may have taken looks (one evaluator)."""
        if other.looks and self.looks:
            raise ExperimentError(f"both copies of experiment {self.spec.name!r} have taken formal looks",
                                  "Only one evaluator may look; let workers ship Outcomes instead.")
        self.outcomes += other.outcomes
        if other.looks:
            self.looks, self.decision, self.min_p = list(other.looks), other.decision, other.min_p
            self.guardrail_p = dict(other.guardrail_p)
            self._recursion = None

    # ---- the statistic -----------------------------------------------------------------------

    def _spending_z(self, t: float) -> float:
        """The spending boundary of a new formal look at ``t`` (advances the recursion through it)."""
        spec = self.spec
        if self._recursion is None or self._recursion_looks != len(self.looks):
            # rebuild from the history (after loading from JSON): exactly what next_boundary replays
            self._recursion = Recursion(self.design.h)
            for lk in self.looks:
                self._recursion.step(float(lk["info"]), float(lk["spending_z"]))
        before = float(spent(spec.spending, spec.alpha, self.looks[-1]["info"])) if self.looks else 0.0
        c = self._recursion.solve(t, float(spent(spec.spending, spec.alpha, t)) - before)
        self._recursion_looks = len(self.looks) + 1  # the look about to be appended
        return c

    def _rate_stat(self, n: np.ndarray, s: np.ndarray, d: np.ndarray | None = None) -> Any:
        if self.spec.paired and d is not None:
            return paired_stat(n, s, d, self.spec.variance)
        return unpaired_stat(n, s, self.spec.variance)

    def current(self) -> dict[str, Any] | None:
        """The primary statistic now (between formal looks too); None before any outcome."""
        o = self.outcomes
        if min(o.per_arm) == 0:
            return None
        if o.kind == "auc":
            from kindml.experiments.auc import auc_from_histograms

            arms = [auc_from_histograms(o.hist[a, 1], o.hist[a, 0]) for a in (0, 1)]
            return {"n": list(o.per_arm), "auc": [a.auc for a in arms]}
        from kindml.experiments.sequential import information

        stat = self._rate_stat(o.n, o.s, o.d if o.paired else None)
        return stat_record(stat, float(np.asarray(information(self.design, stat.n))))

    def _guardrails(self) -> Decision | None:
        for g in self.spec.guardrails:
            gn, gs = self.outcomes.guardrails[g.name]
            if gn.sum(axis=1).min() < self.spec.min_samples:
                continue
            stat = unpaired_stat(gn, gs, self.spec.variance)
            p, alarm = guardrail_check(stat, g.min_increase, g.alpha, self.guardrail_p[g.name])
            self.guardrail_p[g.name] = p
            if alarm:
                r = stat.rate
                return Decision("rollback", f"guardrail {g.name}: challenger {float(r[1]):.4g} vs champion "
                                            f"{float(r[0]):.4g}, always-valid p = {p:.3g} <= {g.alpha:g}")
        return None

    def look(self, now: float | None = None) -> Status:
        """Evaluate after a batch of outcomes: guardrails, then (when due) a formal look of the primary metric."""
        if self.decision is not None and self.decision.final:
            return Status(self.decision, False, self.current())
        at = time.time() if now is None else float(now)
        alarm = self._guardrails()
        if alarm is not None:
            self.decision = alarm
            return Status(alarm, False, self.current())
        o = self.outcomes
        if o.kind == "auc":
            rec, decision = auc_look(self.spec, self.design, o.hist, self.looks)
        else:
            stat = self._rate_stat(o.n, o.s, o.d if o.paired else None)
            from kindml.experiments.sequential import information

            t = float(np.asarray(information(self.design, stat.n)))
            why_not = formal_look_due(self.spec, np.asarray(stat.n), t, self.looks)
            if why_not is not None:
                decision = Decision("keep_running", f"{self.spec.metric.name}: {why_not}")
                self.decision = decision
                return Status(decision, False, stat_record(stat, t) if min(o.per_arm) else None)
            rec, decision, self.min_p = rate_look(self.spec, self.design, stat, self.looks, self.min_p, self._spending_z)
        formal = rec is not None
        if rec is not None:
            rec["at"] = at
            self.looks.append(rec)
        self.decision = decision
        return Status(decision, formal, self.current())

    # ---- report and JSON -----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Everything a report shows: the design up front, the path of formal looks, the decision."""
        return {"experiment": self.spec.name, "mode": self.spec.mode, "metric": self.spec.metric.name,
                "design": self.design.to_dict(), "design_text": self.design.describe(),
                "path": list(self.looks), "current": self.current(),
                "outcomes_per_arm": dict(zip(ARMS, self.outcomes.per_arm, strict=True)),
                "guardrails": {g.name: {"p_always_valid": self.guardrail_p[g.name], "alpha": g.alpha}
                               for g in self.spec.guardrails},
                "decision": self.decision.to_dict() if self.decision else None}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": EXPERIMENT_KIND, "version": VERSION, "spec": self.spec.model_dump(mode="json"),
                "outcomes": self.outcomes.to_dict(), "looks": self.looks, "min_p": self.min_p,
                "guardrail_p": self.guardrail_p,
                "decision": {"action": self.decision.action, "reason": self.decision.reason} if self.decision else None,
                "design": self.design.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        if not isinstance(data, Mapping) or data.get("kind") != EXPERIMENT_KIND:
            raise ExperimentError("not a kindml experiment state", "Load what Experiment.to_dict() wrote.")
        if data.get("version") != VERSION:
            raise ExperimentError(f"experiment state version {data.get('version')!r} is not {VERSION}",
                                  "Upgrade the reader or restart the experiment.")
        spec = parse_spec(data.get("spec") or {}, source="stored experiment spec")
        outcomes = Outcomes.from_dict(data.get("outcomes") or {}, spec)
        looks = data.get("looks") or []
        if not isinstance(looks, list) or len(looks) > math.ceil(1 / spec.look_every) + 1:
            raise ExperimentError("experiment state has an invalid path of looks", "Load what Experiment.to_dict() wrote.")
        infos = [lk.get("info") if isinstance(lk, Mapping) else None for lk in looks]
        if not all(isinstance(i, int | float) for i in infos) or any(b <= a for a, b in zip(infos, infos[1:], strict=False)):
            raise ExperimentError("experiment state's looks are not in increasing information", "Load what Experiment.to_dict() wrote.")
        dec = data.get("decision")
        decision = None
        if dec is not None:
            if not isinstance(dec, Mapping) or dec.get("action") not in ("promote", "rollback", "keep_running", "stop_for_futility"):
                raise ExperimentError(f"experiment state has an invalid decision {dec!r}", "Load what Experiment.to_dict() wrote.")
            decision = Decision(dec["action"], str(dec.get("reason", "")))
        return cls(spec, outcomes, [dict(lk) for lk in looks], decision, float(data.get("min_p", 1.0)),
                   {k: float(v) for k, v in (data.get("guardrail_p") or {}).items()})

    @classmethod
    def from_json(cls, text: str) -> Experiment:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ExperimentError(f"experiment state is not JSON: {exc}", "Load what Experiment.to_json() wrote.") from None
        return cls.from_dict(data)


def merge_outcomes(parts: Iterable[Outcomes]) -> Outcomes:
    """Sum of several workers' outcomes (all of the same experiment)."""
    parts = list(parts)
    if not parts:
        raise ExperimentError("nothing to merge", "Pass at least one Outcomes.")
    total = parts[0].copy()
    for p in parts[1:]:
        total += p
    return total
