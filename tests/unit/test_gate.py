"""The promotion gate: a floor for higher-is-better metrics, a ceiling for lower-is-better ones, never worse than the champion."""

from __future__ import annotations

import pytest

from kindml.config import EvaluateConfig
from kindml.errors import ConfigError
from kindml.model.gate import gate


def test_higher_is_better_floor_and_champion() -> None:
    cfg = EvaluateConfig(min_score=0.8, max_regression=0.01)
    assert gate("roc_auc", 0.85, cfg).promote
    assert not gate("roc_auc", 0.79, cfg).promote
    assert gate("roc_auc", 0.85, cfg, champion=0.855, champion_version="3").promote  # within the allowed drop
    d = gate("roc_auc", 0.85, cfg, champion=0.87, champion_version="3")
    assert not d.promote and "worse than champion v3" in d.reasons[1]
    assert not gate("macro_f1", float("nan"), cfg).promote


def test_lower_is_better_ceiling_and_champion() -> None:
    cfg = EvaluateConfig(max_score=0.30, max_regression=0.01)
    assert gate("wape", 0.20, cfg).promote
    d = gate("wape", 0.35, cfg)
    assert not d.promote and "above the ceiling 0.3000" in d.reasons[0]
    assert gate("wape", 0.205, cfg, champion=0.20, champion_version="2").promote
    d = gate("wape", 0.25, cfg, champion=0.20, champion_version="2")
    assert not d.promote and "worse than champion v2 (0.2500 > 0.2000 + 0.01)" in d.reasons[1]
    with pytest.raises(ConfigError, match="evaluate.max_score"):
        gate("wape", 0.2, EvaluateConfig())
