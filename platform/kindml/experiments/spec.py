"""The one typed description of an experiment: who gets which model, what is measured, how it is decided.

An :class:`ExperimentSpec` is plain data (pydantic, unknown keys refused). It
is all that the assignment, the design, the outcome counters and the decision
rule need, and every process that holds the same spec computes the same
assignment and the same design. :func:`parse_spec` turns a mapping (a YAML or
JSON document, a config section) into a spec or raises
:class:`~kindml.experiments.errors.ExperimentError` naming each bad field.

Modes (``mode``)
    - ``ab``: each entity is assigned to the champion or the challenger
      (``split`` = the challenger's share, default 0.5); the assigned model
      answers, and the outcome of that answer counts for its arm.
    - ``canary``: statistically the same as ``ab`` with a small challenger
      share (``split`` <= 0.5, default 0.05): a rollout that guards against a
      broken challenger while most traffic stays on the champion. Raising
      ``split`` later keeps every entity already on the challenger there.
    - ``shadow``: the champion answers every request; for the entities in the
      shadow share (``split``, default 1.0 = every request) the challenger also
      scores the request and its answer is only recorded. Both models are
      judged on the *same* labelled requests (a paired comparison), so the
      metric must be computable from a model's answer and the label (a catch
      rate, an accuracy, AUC) -- not from the user's reaction to an answer
      the user never saw (a conversion).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kindml.experiments.errors import ExperimentError

Mode = Literal["ab", "shadow", "canary"]
DEFAULT_SPLIT: dict[str, float] = {"ab": 0.5, "canary": 0.05, "shadow": 1.0}
CANARY_MAX_SPLIT = 0.5
_SLUG = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


def _slug(v: str) -> str:
    if not _SLUG.match(v):
        raise ValueError("must be 1-63 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(_Strict):
    """The primary metric the decision is taken on."""

    name: str = Field("rate", description="Label in reports, e.g. catch_rate, conversion, auc.")
    kind: Literal["rate", "auc"] = Field(
        "rate", description="rate: successes out of labelled outcomes per arm (sequential test); "
                            "auc: ROC AUC on labelled scores (one DeLong test at the horizon).")
    direction: Literal["increase", "decrease"] = Field(
        "increase", description="Which way is better for the challenger (a catch rate: increase; an error rate: decrease).")
    baseline: float = Field(..., gt=0.0, lt=1.0, description="The champion's expected rate (or AUC): the design's starting point.")
    prevalence: float | None = Field(None, gt=0.0, lt=1.0, description="auc only: the share of positive labels.")
    score_bins: int = Field(400, ge=50, le=4000, description="auc only: logit-spaced score bins of the outcome histograms.")

    _name = field_validator("name")(_slug)

    @model_validator(mode="after")
    def _kind_fields(self) -> MetricSpec:
        if self.kind == "auc":
            if self.prevalence is None:
                raise ValueError("metric.kind 'auc' needs metric.prevalence (the share of positive labels)")
            if self.direction != "increase":
                raise ValueError("metric.kind 'auc' is always 'increase' (a higher AUC is better)")
            if self.baseline <= 0.5:
                raise ValueError(f"metric.baseline {self.baseline} is an AUC at or below chance (0.5)")
        elif self.prevalence is not None:
            raise ValueError("metric.prevalence only applies to metric.kind 'auc'")
        return self


class GuardrailSpec(_Strict):
    """A bad-event rate (errors, timeouts, SLO misses) that rolls the challenger back when it is significantly higher.

    Tested with an always-valid one-sided mixture SPRT (no horizon needed):
    ``rollback`` as soon as the challenger's rate is higher than the
    champion's at level ``alpha``.
    """

    name: str
    min_increase: float = Field(..., gt=0.0, lt=1.0,
                                description="Absolute increase of the bad-event rate worth catching (the mixture's scale τ).")
    alpha: float = Field(0.01, gt=0.0, le=0.2)

    _name = field_validator("name")(_slug)


class ExperimentSpec(_Strict):
    """An A/B, canary or shadow experiment between a champion and a challenger model."""

    name: str = Field(..., description="Unique name (lower case, digits, . _ -).")
    salt: str = Field(..., min_length=8, max_length=256,
                      description="Secret-ish random string; a fresh one per experiment keeps assignments independent.")
    mode: Mode = "ab"
    split: float | None = Field(None, gt=0.0, le=1.0,
                                description="The challenger's share of entities (default: ab 0.5, canary 0.05, shadow 1.0).")
    champion: str | None = Field(None, description="The champion model (informational, e.g. NAME@champion).")
    challenger: str | None = Field(None, description="The challenger model (informational, e.g. NAME/7).")
    metric: MetricSpec
    mde: float = Field(..., gt=0.0, description="Minimum detectable effect: the smallest improvement worth detecting.")
    mde_kind: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(0.05, ge=0.001, le=0.2, description="Two-sided false-positive rate (promote or rollback under A = A).")
    power: float = Field(0.8, ge=0.5, le=0.99, description="Probability of promoting at the minimum detectable effect.")
    method: Literal["gsd", "msprt"] = Field(
        "gsd", description="gsd: group-sequential alpha spending (exact level at the horizon); msprt: always-valid mixture SPRT.")
    spending: Literal["obrien_fleming", "pocock"] = "obrien_fleming"
    variance: Literal["cluster", "binomial"] = Field(
        "cluster", description="cluster: variance from entity buckets (valid when an entity gives several outcomes); "
                               "binomial: every outcome independent.")
    buckets: int = Field(64, ge=16, le=1024, description="Entity buckets of the cluster variance.")
    look_every: float = Field(0.01, ge=0.0025, le=0.5,
                              description="Information between two formal looks (bounds the looks to 1/look_every).")
    min_samples: int = Field(200, ge=30, description="Labelled outcomes each arm needs before the first formal look.")
    max_samples: int | None = Field(None, ge=100,
                                    description="Budget of labelled outcomes over both arms (default: the design's).")
    agreement: float = Field(0.0, ge=0.0, lt=1.0,
                             description="shadow only: expected correlation of the two models' outcomes on one request "
                                         "(0 = the independence bound, conservative); sizes the paired design.")
    design_effect: float = Field(1.0, ge=1.0, le=50.0,
                                 description="Sample-size multiplier for outcomes correlated within an entity: 1 + (m - 1)·ICC.")
    guardrails: list[GuardrailSpec] = Field(default_factory=list, max_length=8)

    _name = field_validator("name")(_slug)

    @field_validator("salt")
    @classmethod
    def _salt(cls, v: str) -> str:
        if v != v.strip():
            raise ValueError("must not start or end with whitespace (it would silently change every assignment)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        split = DEFAULT_SPLIT[self.mode] if self.split is None else self.split
        if self.mode == "ab" and split >= 1.0:
            raise ValueError("mode 'ab' needs 0 < split < 1 (split 1 sends nobody to the champion; use mode 'shadow' to score both)")
        if self.mode == "canary" and split > CANARY_MAX_SPLIT:
            raise ValueError(f"mode 'canary' is a small rollout: split must be <= {CANARY_MAX_SPLIT} (got {split}); use mode 'ab'")
        object.__setattr__(self, "split", split)
        target = self.target
        upper = 1.0
        if not 0.0 < target < upper:
            raise ValueError(f"baseline {self.metric.baseline} with mde {self.mde} ({self.mde_kind}) gives the challenger "
                             f"{target:.6g}, outside (0, 1): choose a smaller mde")
        if self.agreement and self.mode != "shadow":
            raise ValueError("agreement only applies to mode 'shadow' (both models judged on the same requests)")
        if self.agreement and self.metric.kind == "rate":
            p0, p1 = self.metric.baseline, target
            p11 = p0 * p1 + self.agreement * math.sqrt(p0 * (1 - p0) * p1 * (1 - p1))
            if p11 > min(p0, p1) + 1e-12:
                raise ValueError(f"agreement {self.agreement} is impossible for rates {p0:.4g} and {p1:.4g} "
                                 f"(at most {(min(p0, p1) - p0 * p1) / math.sqrt(p0 * (1 - p0) * p1 * (1 - p1)):.3f})")
        if self.metric.kind == "auc" and self.method == "msprt":
            raise ValueError("method 'msprt' applies to metric.kind 'rate'; an AUC is tested once at the horizon")
        if self.max_samples is not None and self.max_samples < 2 * self.min_samples:
            raise ValueError(f"max_samples {self.max_samples} is below twice min_samples ({self.min_samples})")
        names = [g.name for g in self.guardrails]
        if len(set(names)) != len(names):
            raise ValueError(f"guardrail names must be unique, got {names}")
        return self

    @property
    def challenger_share(self) -> float:
        """The share of entities assigned to the challenger (in shadow: that the challenger also scores)."""
        assert self.split is not None  # filled by the validator
        return self.split

    @property
    def paired(self) -> bool:
        """Shadow mode compares both models on the same requests."""
        return self.mode == "shadow"

    @property
    def target(self) -> float:
        """The challenger's rate (or AUC) at the minimum detectable effect, in the better direction."""
        b = self.metric.baseline
        step = self.mde * b if self.mde_kind == "relative" else self.mde
        return b + step if self.metric.direction == "increase" else b - step

    @property
    def effect(self) -> float:
        """The minimum detectable effect as a signed absolute difference (challenger - champion)."""
        return self.target - self.metric.baseline


def parse_spec(data: Mapping[str, Any] | ExperimentSpec, source: str = "experiment spec") -> ExperimentSpec:
    """Validate a mapping into an :class:`ExperimentSpec`; every problem is named with its field."""
    if isinstance(data, ExperimentSpec):
        return data
    if not isinstance(data, Mapping):
        raise ExperimentError(f"{source} must be a mapping of fields, got {type(data).__name__}",
                              "Write the experiment as a YAML/JSON object: name, salt, mode, metric, mde, ...")
    try:
        return ExperimentSpec.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(spec)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field is missing"
            msg = re.sub(r"^Value error, ", "", msg)
            got = err.get("input")
            shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, Mapping) else f" (got {got!r})"
            lines.append(f"{field}: {msg}{shown}")
        raise ExperimentError(f"invalid {source}:\n  " + "\n  ".join(lines),
                              "Fix the field(s) above; docs/experiments.md lists every field and its default.") from None
