from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from kindml.monitoring.drift import DriftMonitor, js, ks, psi
from kindml.monitoring.profile import build_profile
from kindml.monitoring.rules import render_local, render_prometheusrule

REPO = Path(__file__).resolve().parents[2]


def test_statistics_on_known_vectors() -> None:
    a = np.array([50.0, 50.0])
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12) and js(a, a) == pytest.approx(0.0, abs=1e-12) and ks(a, a) == 0.0
    b = np.array([90.0, 10.0])
    # PSI = (0.1-0.5)ln(0.1/0.5) + (0.9-0.5)ln(0.9/0.5), up to the epsilon smoothing
    assert psi(a, b) == pytest.approx(0.4 * np.log(5) + 0.4 * np.log(1.8), rel=1e-3)
    assert ks(a, b) == pytest.approx(0.4)
    assert 0 < js(a, b) < 1
    assert np.isfinite(psi(np.array([100.0, 0.0]), np.array([0.0, 100.0])))  # empty bins are smoothed


def _profile(rng: np.random.Generator) -> dict:
    x = rng.normal(size=20_000)
    return build_profile({"x": x, "const": np.ones(20_000)}, {"c": rng.choice(["a", "b"], 20_000)}, rng.uniform(size=20_000))


def test_monitor_detects_shift_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    prof = _profile(rng)
    same = DriftMonitor(prof, "m", "1", window=5000)
    shifted = DriftMonitor(prof, "m", "1", window=5000)
    for _ in range(10):
        same.observe({"x": rng.normal(size=500), "const": np.ones(500)}, {"c": rng.choice(["a", "b"], 500)}, rng.uniform(size=500))
        shifted.observe({"x": rng.normal(1.0, 1.0, 500), "const": np.ones(500)}, {"c": rng.choice(["a", "z"], 500)}, rng.uniform(size=500) ** 3)
    s, d = same.snapshot(), shifted.snapshot()
    assert s["samples"] == d["samples"] == 5000
    assert s["features"]["x"]["psi"] < 0.02 and d["features"]["x"]["psi"] > 0.5
    assert d["features"]["c"]["psi"] > 0.5  # the unseen category lands in __other__
    assert d["prediction"]["psi"] > 0.2 and s["prediction"]["psi"] < 0.02
    assert s["features"]["const"]["psi"] == pytest.approx(0.0, abs=1e-9)


def test_window_ages_out_old_data() -> None:
    rng = np.random.default_rng(1)
    prof = _profile(rng)
    mon = DriftMonitor(prof, "m", "1", window=2000, buckets=10)
    mon.observe({"x": rng.normal(3.0, 1.0, 2000)}, {}, rng.uniform(size=2000))
    assert mon.snapshot()["features"]["x"]["psi"] > 1.0
    for _ in range(5):
        mon.observe({"x": rng.normal(size=500)}, {}, rng.uniform(size=500))
    assert mon.window_samples() <= 2000
    assert mon.snapshot()["features"]["x"]["psi"] < 0.05


def test_no_values_before_min_samples_and_thread_safety() -> None:
    rng = np.random.default_rng(2)
    mon = DriftMonitor(_profile(rng), "m", "1", window=5000, min_samples=500)
    assert mon.snapshot()["features"] == {}

    def feed() -> None:
        r = np.random.default_rng()
        for _ in range(50):
            mon.observe({"x": r.normal(size=10)}, {"c": np.array(["a"] * 10)}, r.uniform(size=10))

    ts = [threading.Thread(target=feed) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert mon.samples_seen == 2000 and mon.window_samples() == 2000


def test_committed_prometheusrule_is_rendered_from_the_one_source() -> None:
    committed = (REPO / "manifests" / "base" / "monitoring" / "prometheusrule.yaml").read_text()
    assert committed == render_prometheusrule(), "run: python -c 'from kindml.monitoring.rules import *; ...' (see rules.py) to re-render"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render_local())
    shutil.copy(REPO / "tests" / "promtool" / "rules_test.yml", tmp_path / "rules_test.yml")
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    res = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    alerts = {line.split("alert:")[1].strip() for line in render_local().splitlines() if "alert:" in line}
    tested = (REPO / "tests" / "promtool" / "rules_test.yml").read_text()
    assert all(f"alertname: {a}" in tested for a in alerts)  # every alert has a promtool test
