"""Bad input everywhere a user touches the kit: bring-your-own data files, pipeline parameters, predictor
request parsing (property-based: only RequestError or success, never another exception)."""

from __future__ import annotations

import contextlib
import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kindml.errors import ConfigError, DataError
from kindml.pipelines.fraud.serving import FraudSignature, parse_instances
from kindml.serving.signature import MAX_BATCH, RequestError

FRAUD = "kindml.pipelines.fraud.workload"


def load_folder(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bring-your-own data as the ingest stage reads it: the workload's tables, coerced and checked."""
    from kindml.config import KindmlConfig
    from kindml.pipelines.fraud.workload import FraudWorkload

    wl = FraudWorkload(KindmlConfig())
    tables = wl.load(folder)
    wl.check_loaded(tables)
    return tables["transactions"], tables["accounts"]


def v2_to_instances(inputs: list) -> list:  # the fraud signature's v2 parsing, as the predictor calls it
    return FraudSignature([], 0.5).parse_v2(inputs)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kindml.pipelines.fraud.data import build_world, generate_history

    world = build_world(1, 60, 25, 14, date(2026, 1, 31))
    folder = tmp_path_factory.mktemp("byo")
    generate_history(world, 500).to_csv(folder / "transactions.csv", index=False)
    world.accounts.to_parquet(folder / "accounts.parquet", index=False)
    return folder


def _copy(good: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in good.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_good_folder_loads(good: Path) -> None:
    tx, acc = load_folder(good)
    assert len(tx) == 500 and acc["account_id"].is_unique


@pytest.mark.parametrize("case,needle", [
    ("missing_file", "has no transactions"),
    ("empty", "is empty"),
    ("not_utf8", "not UTF-8"),
    ("bad_csv", "not valid CSV"),
    ("missing_column", "missing column(s) amount"),
    ("wrong_type", "column 'amount' cannot be read as float64"),
    ("bad_timestamp", "event_timestamp"),
    ("damaged_parquet", "cannot be read as parquet"),
    ("duplicate_accounts", "duplicated account_id"),
    ("header_only", "has no rows"),
])
def test_byo_data_errors_name_the_problem(good: Path, tmp_path: Path, case: str, needle: str) -> None:
    f = _copy(good, tmp_path / case)
    tx = f / "transactions.csv"
    if case == "missing_file":
        tx.unlink()
    elif case == "empty":
        tx.write_bytes(b"")
    elif case == "not_utf8":
        tx.write_bytes("transaction_id,amount\n1,\xe9\n".encode("latin-1") + b"\xff\xfe")
    elif case == "bad_csv":
        tx.write_text('a,b\n1,"2\n')
    elif case == "missing_column":
        pd.read_csv(tx).drop(columns=["amount"]).to_csv(tx, index=False)
    elif case == "wrong_type":
        df = pd.read_csv(tx)
        df["amount"] = df["amount"].astype(object)
        df.loc[3, "amount"] = "twelve"
        df.to_csv(tx, index=False)
    elif case == "bad_timestamp":
        df = pd.read_csv(tx)
        df.loc[0, "event_timestamp"] = "yesterday-ish"
        df.to_csv(tx, index=False)
    elif case == "damaged_parquet":
        (f / "accounts.parquet").write_bytes(b"PAR1 this is not parquet")
    elif case == "duplicate_accounts":
        acc = pd.read_parquet(f / "accounts.parquet")
        pd.concat([acc, acc.head(2)]).to_parquet(f / "accounts.parquet", index=False)
    elif case == "header_only":
        tx.write_text(",".join(pd.read_csv(tx, nrows=1).columns) + "\n")
    with pytest.raises(DataError) as e:
        load_folder(f)
    assert needle in e.value.message and e.value.hint


def test_pipeline_parameters_are_validated_and_named() -> None:
    from kindml.stages.context import load

    with pytest.raises(ConfigError) as e:
        load(FRAUD, "{}", data__rows=-5)
    assert "pipeline parameter: data.rows" in e.value.message
    with pytest.raises(ConfigError) as e:
        load(FRAUD, '{"train": {"wrokers": 2}}')
    assert "train.wrokers" in e.value.message
    with pytest.raises(ConfigError) as e:
        load(FRAUD, '{"workloads": {"fraud": {"merchants": 1}}}')
    assert "workloads.fraud.merchants" in e.value.message


def test_workload_references_are_checked() -> None:
    from kindml.errors import UsageError
    from kindml.workload.loader import load_workload

    for ref, needle in (("", "empty"), ("no.such.module", "cannot import"), ("kindml.config", "has no WORKLOAD"),
                        ("kindml.config:KindmlConfig", "not a kindml Workload"), ("/nope/w.py", "does not exist"), ("a b", "not a workload reference")):
        with pytest.raises(UsageError) as e:
            load_workload(ref)
        assert needle in e.value.message and e.value.hint, ref


VALID = {"account_id": 1, "merchant_id": 2, "amount": 12.5, "merchant_category": "grocery", "channel": "pos", "country": "US"}
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=10)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.lists(st.dictionaries(st.sampled_from([*VALID, "hour", "event_timestamp", "txn_count_30d", "x"]), json_values, max_size=9), max_size=5)))
def test_fuzz_v1_instances_only_client_errors(instances: object) -> None:
    try:
        cols, _ = parse_instances(instances)
    except RequestError as exc:
        assert str(exc)  # a message for the client
        return
    assert all(len(v) == len(cols["amount"]) for v in cols.values())
    assert all(math.isfinite(a) for a in cols["amount"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({k: json_values for k in VALID}, optional={"hour": json_values, "event_timestamp": json_values}), min_size=1, max_size=3))
def test_fuzz_mutated_fields_only_client_errors(instances: list[dict]) -> None:
    with contextlib.suppress(RequestError):
        parse_instances(instances)


class _In:
    def __init__(self, name: object, shape: object, data: object) -> None:
        self.name, self.shape, self.data = name, shape, data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(_In, st.one_of(st.sampled_from([*VALID, "hour"]), st.text(max_size=8), st.none()),
                          st.one_of(st.lists(st.integers(-3, 5), max_size=3), st.none()), json_values), max_size=6))
def test_fuzz_v2_inputs_only_client_errors(inputs: list[_In]) -> None:
    with contextlib.suppress(RequestError):
        v2_to_instances(inputs)


def test_batch_limit() -> None:
    with pytest.raises(RequestError, match="limit"):
        parse_instances([VALID] * (MAX_BATCH + 1))
    cols, with_features = parse_instances([VALID] * 3)
    assert len(cols["amount"]) == 3 and not with_features
