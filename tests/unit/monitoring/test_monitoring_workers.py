"""Drift and request metrics of a predictor served by several worker processes equal those of one process.

The drift window is shared through a mapped file (``DriftMonitor(shared=...)``);
counters and histograms use prometheus_client's multiprocess mode, which is
chosen when prometheus_client is imported, so those checks run in fresh
interpreter processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from kindml.errors import MonitoringError
from kindml.monitoring.drift import DriftMonitor
from kindml.monitoring.profile import build_profile

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 20_000
    return build_profile({"log_amount": rng.normal(size=n), "is_night": (rng.random(n) < 0.1).astype(float)},
                         {"channel": rng.choice(["pos", "online", "atm"], n)}, rng.random(n))


def traffic(n: int, seed: int, shift: float = 0.7) -> list[tuple[dict, dict, np.ndarray]]:
    """Requests of 1..5 rows (mostly single rows, as the predictor sees them)."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(len(s) for *_, s in out) < n:
        k = int(rng.choice([1, 1, 1, 2, 5]))
        out.append(({"log_amount": rng.normal(shift, 1, k), "is_night": (rng.random(k) < 0.3).astype(float)},
                    {"channel": rng.choice(["pos", "online", "atm", "crypto"], k)}, rng.random(k) ** 2))
    return out


def test_two_monitors_on_one_file_keep_the_window_one_monitor_keeps(profile, tmp_path: Path) -> None:
    """Alternating requests between two attached monitors, past the window's capacity (so rows age out)."""
    shared = tmp_path / "window.bin"
    a = DriftMonitor(profile, "m", "1", window=1000, min_samples=50, shared=shared)
    b = DriftMonitor(profile, "m", "1", window=1000, min_samples=50, shared=shared)
    one = DriftMonitor(profile, "m", "1", window=1000, min_samples=50)
    for i, (num, cat, s) in enumerate(traffic(3500, seed=3)):
        (a if i % 2 else b).observe(num, cat, s)
        one.observe(num, cat, s)
    assert one.samples_seen >= 3500 and a.samples_seen == b.samples_seen == one.samples_seen
    assert a.window_counts()[1] == b.window_counts()[1] == one.window_counts()[1] < one.samples_seen  # aged out
    assert np.array_equal(a.window_counts()[0], one.window_counts()[0])
    assert a.report() == b.report() == one.report()
    assert one.report().features["log_amount"]["psi"] > 0.1  # there is drift to agree on


def _observe_in_child(profile: dict, shared: str, seed: int, threads: int, n: int) -> None:
    mon = DriftMonitor(profile, "m", "1", window=100_000, min_samples=1, shared=shared)
    reqs = traffic(n, seed)

    def go(part: list) -> None:
        for num, cat, s in part:
            mon.observe(num, cat, s)

    ts = [threading.Thread(target=go, args=(reqs[t::threads],)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_processes_and_threads_lose_no_update(profile, tmp_path: Path) -> None:
    """2 processes x 3 threads observing at once into one file: every row lands once (the flock + thread lock)."""
    shared = str(tmp_path / "window.bin")
    parent = DriftMonitor(profile, "m", "1", window=100_000, min_samples=1, shared=shared)  # creates the file
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_observe_in_child, args=(profile, shared, seed, 3, 3000)) for seed in (11, 12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    one = DriftMonitor(profile, "m", "1", window=100_000, min_samples=1)
    for seed in (11, 12):
        for num, cat, s in traffic(3000, seed):
            one.observe(num, cat, s)
    counts, rows = parent.window_counts()
    assert rows == one.window_samples() == parent.samples_seen
    assert np.array_equal(counts, one.window_counts()[0])  # below capacity the window does not depend on arrival order
    assert parent.report() == one.report()


def test_a_file_of_another_layout_or_profile_is_refused(profile, tmp_path: Path) -> None:
    shared = tmp_path / "window.bin"
    DriftMonitor(profile, "m", "1", window=1000, shared=shared)
    with pytest.raises(MonitoringError, match="another model version or window layout"):
        DriftMonitor(profile, "m", "1", window=2000, shared=shared)
    other = build_profile({"log_amount": np.arange(100.0), "is_night": np.zeros(100)}, {"channel": np.array(["pos"] * 100)}, np.linspace(0, 1, 100))
    with pytest.raises(MonitoringError, match="another model version or window layout"):
        DriftMonitor(other, "m", "1", window=1000, shared=shared)
    with pytest.raises(MonitoringError, match="another model version or window layout .* bytes"):
        DriftMonitor(profile, "m", "1", window=1000, buckets=5, shared=shared)


WORKER = textwrap.dedent('''
    import sys
    import numpy as np
    from kindml.monitoring import metrics as mm
    from kindml.monitoring.drift import DriftMonitor
    from kindml.monitoring.profile import load_profile
    profile, shared, scrape, jobs = load_profile(sys.argv[1]), sys.argv[2], sys.argv[3] == "scrape", sys.argv[4:]
    mon = DriftMonitor(profile, "fraud", "4", window=5000, min_samples=10, shared=shared or None)
    mm.register_monitor(mon)
    for job in jobs:  # "seed:requests"
        seed, n = map(int, job.split(":"))
        rng = np.random.default_rng(seed)
        for i in range(n):
            code = 400 if i % 7 == 0 else 200
            mm.record_request("fraud", "4", code, 0.001 * (1 + i % 5))
            if code == 200:
                mon.observe({"log_amount": rng.normal(0.5, 1, 1), "is_night": [0.0]}, {"channel": ["pos"]}, [rng.random()])
        mm.count_unknown_entities("fraud", "4", "account_id", seed)
    if scrape:  # what /metrics serves in this process
        from prometheus_client import generate_latest
        sys.stdout.write(generate_latest(mm.exposition_registry()).decode())
''')


def _run(args: list[str], env: dict[str, str]) -> str:
    res = subprocess.run([sys.executable, "-c", WORKER, *args], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _values(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith("kindml_") and not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_exposition_over_worker_processes_equals_one_process(profile, tmp_path: Path) -> None:
    """Three worker processes in multiprocess mode (the last one answers the scrape) vs one process doing all of their work."""
    import json

    prof = tmp_path / "profile.json"
    prof.write_text(json.dumps(profile), encoding="utf-8")
    from kindml.monitoring.metrics import METRICS_DIR_ENV, PROMETHEUS_DIR_ENVS

    base = {k: v for k, v in os.environ.items() if k not in (*PROMETHEUS_DIR_ENVS, METRICS_DIR_ENV)}
    multi = tmp_path / "multiproc"
    multi.mkdir()
    env = base | {"PROMETHEUS_MULTIPROC_DIR": str(multi), METRICS_DIR_ENV: str(multi)}  # as shared_state_dir sets them
    shared = str(multi / "window.bin")
    _run([str(prof), shared, "no", "1:300"], env)
    _run([str(prof), shared, "no", "2:250"], env)
    scraped = _values(_run([str(prof), shared, "scrape", "3:200"], env))
    assert len(list(multi.glob("counter_*.db"))) == 3
    single = _values(_run([str(prof), "", "scrape", "1:300", "2:250", "3:200"], base))
    ok = ("kindml_requests_total", (("code", "200"), ("model", "fraud"), ("version", "4")))
    assert scraped[ok] == single[ok] == sum(n - len(range(0, n, 7)) for n in (300, 250, 200))
    assert scraped[("kindml_window_samples", (("model", "fraud"), ("version", "4")))] == single[ok]
    assert scraped[("kindml_unknown_entities_total", (("entity", "account_id"), ("model", "fraud"), ("version", "4")))] == 6
    assert any(k[0] == "kindml_feature_drift" for k in single) and set(scraped) == set(single)
    for k, v in single.items():
        assert scraped[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
