"""Fixtures shared by the local tier.

The fraud capstone's two reference runs (one stopped by validation, one full run with quarantine, serving and
monitoring) are made once per session and read by several modules (the capstone, report and serving tests):
each full run costs minutes on a 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SMALL = ["--rows", "12000", "--days", "50", "--epochs", "3", "--tune-trials", "2"]


def run_kindml(args: list[str], home: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINDML_")}
    env |= {"KINDML_HOME": str(home), "KINDML_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def fraud_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One workspace with run ``corrupt`` (5 % damaged rows, no quarantine: stops at validate, exit 4) and run ``good``
    (the same damage quarantined, INT8 chooser on, served, monitored with drift and a concept shift); the predictor the
    run left running is stopped. Tests that change the workspace must not break what later modules read."""
    home = tmp_path_factory.mktemp("fraud-runs")
    corrupt = run_kindml(["capstone", *SMALL, "--corrupt", "0.05", "--run-id", "corrupt"], home)
    try:
        good = run_kindml(["capstone", *SMALL, "--corrupt", "0.05", "--quarantine", "--quantize", "--run-id", "good", "-o", "json"], home)
    finally:
        run_kindml(["serve", "stop"], home)
    return {"home": home, "corrupt": corrupt, "good": good}
