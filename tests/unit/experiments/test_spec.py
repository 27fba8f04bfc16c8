"""ExperimentSpec: defaults per mode, and a clear error naming the field for every kind of bad input."""

from __future__ import annotations

import pytest

from kindml.errors import KindmlError
from kindml.experiments.errors import ExperimentError
from kindml.experiments.spec import ExperimentSpec, parse_spec

pytestmark = pytest.mark.unit

GOOD = {"name": "fraud-v7-vs-v6", "salt": "8f2c1e9a77", "metric": {"name": "catch_rate", "baseline": 0.7}, "mde": 0.05}


def spec(**over):
    return parse_spec({**GOOD, **over})


def test_defaults_and_derived_values():
    s = spec()
    assert (s.mode, s.split, s.method, s.spending, s.variance, s.alpha, s.power) == ("ab", 0.5, "gsd", "obrien_fleming",
                                                                                     "cluster", 0.05, 0.8)
    assert s.target == pytest.approx(0.735) and s.effect == pytest.approx(0.035)
    assert spec(mode="canary").split == 0.05 and spec(mode="shadow").split == 1.0
    assert spec(mode="shadow").paired and not s.paired
    down = spec(metric={"baseline": 0.02, "direction": "decrease"}, mde=0.004, mde_kind="absolute")
    assert down.target == pytest.approx(0.016) and down.effect == pytest.approx(-0.004)
    assert parse_spec(s) is s
    assert isinstance(ExperimentError("x"), KindmlError)


def error_of(data) -> ExperimentError:
    with pytest.raises(ExperimentError) as err:
        parse_spec(data)
    assert err.value.hint  # every error says how to fix it
    return err.value


@pytest.mark.parametrize(("over", "field", "words"), [
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"salt": "short"}, "salt", "at least 8"),
    ({"salt": " padded-salt "}, "salt", "whitespace"),
    ({"name": "Fraud Test"}, "name", "lower-case"),
    ({"mode": "bandit"}, "mode", "'ab', 'shadow' or 'canary'"),
    ({"split": 0.0}, "split", "greater than 0"),
    ({"split": 1.0}, "(spec)", "mode 'ab' needs 0 < split < 1"),
    ({"mode": "canary", "split": 0.7}, "(spec)", "split must be <= 0.5"),
    ({"mde": 0}, "mde", "greater than 0"),
    ({"mde": 0.5}, "(spec)", "outside (0, 1)"),
    ({"alpha": 0.5}, "alpha", "less than or equal to 0.2"),
    ({"power": 0.3}, "power", "greater than or equal to 0.5"),
    ({"metric": {"baseline": 0}}, "metric.baseline", "greater than 0"),
    ({"metric": {"baseline": 0.1, "prevalence": 0.1}}, "metric", "only applies to metric.kind 'auc'"),
    ({"metric": {"kind": "auc", "baseline": 0.9}}, "metric", "needs metric.prevalence"),
    ({"metric": {"kind": "auc", "baseline": 0.9, "prevalence": 0.01, "direction": "decrease"}}, "metric", "always 'increase'"),
    ({"metric": {"kind": "auc", "baseline": 0.4, "prevalence": 0.01}}, "metric", "at or below chance"),
    ({"metric": {"kind": "auc", "baseline": 0.9, "prevalence": 0.01}, "method": "msprt", "mde": 0.01}, "(spec)",
     "applies to metric.kind 'rate'"),
    ({"max_samples": 300, "min_samples": 200}, "(spec)", "below twice min_samples"),
    ({"look_every": 0.001}, "look_every", "greater than or equal to 0.0025"),
    ({"guardrails": [{"name": "errors", "min_increase": 0.01}, {"name": "errors", "min_increase": 0.02}]}, "(spec)",
     "unique"),
    ({"guardrails": [{"name": "errors"}]}, "guardrails.0.min_increase", "required field is missing"),
    ({"agreement": 0.5}, "(spec)", "only applies to mode 'shadow'"),
    ({"mode": "shadow", "agreement": 0.99}, "(spec)", "impossible for rates"),
])
def test_bad_input_names_the_field(over, field, words):
    err = error_of({**GOOD, **over})
    assert f"{field}: " in err.message and words in err.message, err.message


def test_missing_fields_are_listed_together():
    err = error_of({"name": "x1"})
    for field in ("salt", "metric", "mde"):
        assert f"{field}: required field is missing" in err.message


def test_not_a_mapping():
    assert "must be a mapping" in error_of(["name", "x"]).message


def test_spec_is_immutable_and_serialisable():
    s = spec(guardrails=[{"name": "errors", "min_increase": 0.005}])
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        s.alpha = 0.1  # type: ignore[misc]
    again = ExperimentSpec.model_validate(s.model_dump(mode="json"))
    assert again == s
