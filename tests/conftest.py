"""Shared fixtures. Tiers: unit (default), local (real stages/servers), cluster (docker + kind), benchmark (opt-in)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a test without a tier marker is a unit test
    tiers = {"unit", "local", "cluster", "benchmark"}
    for item in items:
        if not tiers & {m.name for m in item.iter_markers()}:
            item.add_marker(pytest.mark.unit)
    if not config.getoption("-m") and not os.environ.get("KINDML_RUN_BENCHMARKS"):
        skip = pytest.mark.skip(reason="benchmark tier is opt-in: run `pytest -m benchmark` or set KINDML_RUN_BENCHMARKS=1")
        for item in items:
            if "benchmark" in {m.name for m in item.iter_markers()}:
                item.add_marker(skip)


@pytest.fixture
def kindml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private workspace for one test."""
    home = tmp_path / "ws"
    monkeypatch.setenv("KINDML_HOME", str(home))
    monkeypatch.delenv("KINDML_CONFIG", raising=False)
    return home


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env["KINDML_HOME"] = str(tmp_path / "ws")
    env["KINDML_NO_PROGRESS"] = "1"
    return env
