from __future__ import annotations

from pathlib import Path

import pytest

from kindml.config import KindmlConfig, load_config
from kindml.errors import ConfigError


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(environ={}, cwd=tmp_path)
    assert cfg == load_config(environ={}, cwd=tmp_path)
    assert cfg.home == (tmp_path / ".kindml").resolve()
    assert cfg.train.workers == 2 and cfg.data.rows == 60_000


def test_file_env_and_override_precedence(tmp_path: Path) -> None:
    (tmp_path / "kindml.yaml").write_text("train:\n  workers: 3\n  epochs: 9\n")
    cfg = load_config(environ={"KINDML_TRAIN__EPOCHS": "4"}, overrides={"train.tune_trials": 2}, cwd=tmp_path)
    assert (cfg.train.workers, cfg.train.epochs, cfg.train.tune_trials) == (3, 4, 2)


def test_unknown_field_names_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "kindml.yaml"
    f.write_text("train:\n  wrokers: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(environ={}, cwd=tmp_path)
    assert str(f) in e.value.message and "train.wrokers" in e.value.message and "unknown field" in e.value.message
    assert "kindml config show" in e.value.hint


def test_bad_value_names_env_var(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(environ={"KINDML_TRAIN__WORKERS": "lots"}, cwd=tmp_path)
    assert "environment variable KINDML_TRAIN__WORKERS" in e.value.message and "train.workers" in e.value.message


def test_bad_yaml_and_wrong_top_level(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f, environ={}, cwd=tmp_path)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f, environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", environ={}, cwd=tmp_path)


def test_override_out_of_range_names_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(environ={}, overrides={"data.rows": 5}, cwd=tmp_path)
    assert "command line: data.rows" in e.value.message


def test_file_source_needs_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.path is not set"):
        load_config(environ={}, overrides={"data.source": "file"}, cwd=tmp_path)


def test_drift_severity() -> None:
    from kindml.pipelines.fraud.data import DriftSpec

    assert DriftSpec.from_severity(0).is_zero
    strong = DriftSpec.from_severity(1.0)
    assert strong.amount_shift > 0 and strong.category_shift > 0 and strong.new_merchant_rate > 0
    with pytest.raises(ConfigError):
        DriftSpec.from_severity(5)


def test_models_forbid_extra() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as e:
        KindmlConfig.model_validate({"nope": 1})
    assert e.value.errors()[0]["type"] == "extra_forbidden"


def test_explicit_null_override(tmp_path: Path) -> None:
    from kindml.cli.common import parse_set_options

    over = parse_set_options(["validation.freshness_days=null", "train.workers=3"])
    cfg = load_config(environ={}, overrides={**over, "data.rows": None}, cwd=tmp_path)
    assert cfg.validation.freshness_days is None and cfg.train.workers == 3 and cfg.data.rows == 60_000
    assert KindmlConfig().with_overrides(over).validation.freshness_days is None


def test_workload_defaults_sit_under_file_env_and_flags(tmp_path: Path) -> None:
    """A workload's defaults (model name, experiment, its own train settings) apply unless the user sets the field."""
    (tmp_path / "kindml.yaml").write_text("train:\n  epochs: 9\n")
    defaults = {"train.epochs": 3, "train.batch_size": 64, "registry.model_name": "text-intents"}
    cfg = load_config(environ={"KINDML_TRAIN__WORKERS": "3"}, cwd=tmp_path, defaults=defaults)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.workers) == (9, 64, 3)
    assert cfg.registry.model == "text-intents"
    assert load_config(environ={}, cwd=tmp_path, defaults=defaults, overrides={"train.batch_size": 8}).train.batch_size == 8


def test_workload_options_are_validated_by_the_workload(tmp_path: Path) -> None:
    from kindml.pipelines.fraud.workload import FraudWorkload

    ok = FraudWorkload(load_config(environ={}, cwd=tmp_path, overrides={"workloads": {"fraud": {"accounts": 80}}}))
    assert ok.options.accounts == 80
    (tmp_path / "kindml.yaml").write_text("workloads:\n  fraud:\n    acounts: 80\n")
    with pytest.raises(ConfigError) as e:
        FraudWorkload(load_config(environ={}, cwd=tmp_path))
    assert "workloads.fraud.acounts" in e.value.message and "unknown field" in e.value.message
    assert "accounts" in e.value.hint


def test_unknown_corruption_kind_is_refused_by_the_workload(tmp_path: Path) -> None:
    from kindml.pipelines.fraud.workload import FraudWorkload

    with pytest.raises(ConfigError, match="not offered by workload 'fraud'"):
        FraudWorkload(load_config(environ={}, cwd=tmp_path, overrides={"data.corruption.kinds": ["null", "typo"]}))
