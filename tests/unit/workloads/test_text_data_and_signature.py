"""The text capstone's generator (seeded, drift knobs, exact defect manifest) and its request contract (only 4xx-able errors)."""

from __future__ import annotations

import contextlib
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kindml.data.load import content_hash
from kindml.pipelines.text.data import (
    CORRUPTION_KINDS,
    INTENTS,
    MAX_TEXT_CHARS,
    build_world,
    corrupt,
    generate_history,
    generate_live,
)
from kindml.pipelines.text.serving import MAX_BATCH, NO_CUSTOMER, TextSignature
from kindml.serving.signature import RequestError


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(3, 300, 30, date(2026, 1, 31))


def test_seeded_reproducible_and_complete(world) -> None:  # type: ignore[no-untyped-def]
    a = generate_history(world, 3_000)
    assert content_hash(a) == content_hash(generate_history(build_world(3, 300, 30, date(2026, 1, 31)), 3_000))
    assert content_hash(a) != content_hash(generate_history(build_world(4, 300, 30, date(2026, 1, 31)), 3_000))
    assert set(a["intent"]) == set(INTENTS) and len(INTENTS) >= 6
    assert a["ticket_id"].is_unique and not a.duplicated(["customer_id", "text"]).any()  # clean data passes the duplicate check
    assert a["event_timestamp"].min() >= world.start and a["event_timestamp"].max() < world.end
    assert a["text"].str.len().between(1, MAX_TEXT_CHARS).all()


def test_drift_moves_vocabulary_topic_and_label_mix(world) -> None:  # type: ignore[no-untyped-def]
    clean, drifted = generate_live(world, 4_000, 0.0, stream=3), generate_live(world, 4_000, 1.0, stream=4)
    mix = (drifted["intent"].value_counts(normalize=True) - clean["intent"].value_counts(normalize=True)).abs().sum()
    assert mix > 0.3
    new_words = drifted["text"].str.contains("reimbursement|parcel|sign on|membership tier", case=False).mean()
    assert new_words > 0.05 and clean["text"].str.contains("reimbursement|parcel|sign on|membership tier", case=False).mean() == 0
    assert drifted["text"].str.contains("smart|thermostat|doorbell", case=False).mean() > 0.1  # a topic the history never had
    assert clean["text"].str.contains("smart|thermostat|doorbell", case=False).mean() == 0


def test_corruption_manifest_is_exact(world) -> None:  # type: ignore[no-untyped-def]
    df = generate_history(world, 2_000)
    bad, m = corrupt(df, 0.05, 1)
    assert m["rows"] == 100 and sum(m["counts"].values()) == 100 and set(m["counts"]) == set(CORRUPTION_KINDS)
    assert len(bad) == len(df) + m["counts"]["duplicate"]  # duplicates are added copies; nothing is dropped
    assert (bad["text"].str.strip() == "").sum() == m["counts"]["empty"]
    assert (bad["text"].str.len() > MAX_TEXT_CHARS).sum() == m["counts"]["too_long"]
    assert (~bad["intent"].isin(INTENTS)).sum() == m["counts"]["unknown_label"]
    assert (~bad["text"].str.contains("[A-Za-z]", regex=True)).sum() == m["counts"]["empty"] + m["counts"]["non_text"]  # no letters at all
    copies = bad[bad["ticket_id"].str.startswith("dup-")]
    assert len(copies) == m["counts"]["duplicate"]
    originals = bad[~bad["ticket_id"].str.startswith("dup-")].merge(copies[["customer_id", "text"]], on=["customer_id", "text"])
    assert len(originals) == len(copies)  # every copy repeats exactly one original ticket of the same customer


SIG = TextSignature(kit=None)


@pytest.mark.parametrize("instances,needle", [
    ([], "empty"),
    ("nope", "list"),
    ([{"text": ""}], "empty"),
    ([{"text": "   "}], "empty"),
    ([{"text": "x" * (MAX_TEXT_CHARS + 1)}], "limit"),
    ([{"text": 42}], "string"),
    ([{"text": None}], "string"),
    ([{"customer_id": 3}], "missing field(s): text"),
    ([{"text": "hi", "customer_id": "abc"}], "customer_id"),
    ([{"text": "hi", "customer_id": -4}], "customer_id"),
    ([{"text": "hi", "channel": "fax"}], "channel"),
    ([{"text": "hi", "lang": "en"}], "unknown field"),
    ([{"text": "hi"}] * (MAX_BATCH + 1), "limit"),
    ([1], "object"),
])
def test_bad_requests_name_the_problem(instances: object, needle: str) -> None:
    with pytest.raises(RequestError) as e:
        SIG.parse_v1(instances)
    assert needle in str(e.value)


def test_valid_requests_and_optional_fields() -> None:
    p = SIG.parse_v1([{"text": "Where is my parcel?"}, {"text": "refund please", "customer_id": 5_010, "channel": "chat", "ticket_id": "t1"}])
    assert p.n == 2 and p.lookup
    assert p.columns["customer_id"].tolist() == [NO_CUSTOMER, 5_010] and p.columns["channel"].tolist() == ["unknown", "chat"]


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.lists(st.dictionaries(st.sampled_from(["text", "customer_id", "channel", "ticket_id", "x"]), json_values,
                                                       max_size=5), max_size=4)))
def test_fuzz_only_client_errors(instances: object) -> None:
    try:
        p = SIG.parse_v1(instances)
    except RequestError as exc:
        assert str(exc)
        return
    assert all(len(v) == p.n for v in p.columns.values())
    assert all(isinstance(t, str) and t.strip() for t in p.columns["text"])


class _In:
    def __init__(self, name: object, shape: object, data: object) -> None:
        self.name, self.shape, self.data = name, shape, data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(_In, st.one_of(st.sampled_from(["text", "customer_id", "channel"]), st.text(max_size=6)),
                          st.one_of(st.lists(st.integers(-2, 4), max_size=2), st.none()), json_values), max_size=4))
def test_fuzz_v2_only_client_errors(inputs: list[_In]) -> None:
    with contextlib.suppress(RequestError):
        SIG.parse_v2(inputs)


def test_v2_text_tensor() -> None:
    p = SIG.parse_v2([_In("text", [2], [b"my card was charged twice", "cannot log in"]), _In("customer_id", [2], [5_001, 5_002])])
    assert p.n == 2 and p.columns["text"].tolist() == ["my card was charged twice", "cannot log in"]
    assert np.array_equal(p.columns["customer_id"], [5_001, 5_002])
