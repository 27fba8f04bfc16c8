"""Which folder a predictor's metrics live in: the caller's choice, never a folder Feast made in a parent process.

Importing Feast sets ``PROMETHEUS_MULTIPROCESS_DIR`` and ``PROMETHEUS_MULTIPROC_DIR`` to a temporary folder of its own
(``feast/metrics.py``); every child inherits both. A one-worker predictor started from such a process once summed the
files of every other server in that folder into its ``/metrics`` (20,643 requests reported for 600 served)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kindml.monitoring.metrics import (
    METRICS_DIR_ENV,
    PROMETHEUS_DIR_ENVS,
    multiprocess_dir,
    take_caller_metrics_dir,
)
from kindml.serving.server import shared_state_dir


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROMETHEUS_DIR_ENVS, METRICS_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("env", "taken"), [
    ({}, None),
    ({"PROMETHEUS_MULTIPROC_DIR": "/srv/metrics"}, "/srv/metrics"),                     # the caller's folder
    ({"prometheus_multiproc_dir": "/srv/legacy"}, "/srv/legacy"),                       # prometheus_client's old name
    ({"PROMETHEUS_MULTIPROC_DIR": "/tmp/feast_metrics_x", "PROMETHEUS_MULTIPROCESS_DIR": "/tmp/feast_metrics_x"}, None),  # Feast's
    ({"PROMETHEUS_MULTIPROC_DIR": "/srv/metrics", "PROMETHEUS_MULTIPROCESS_DIR": "/tmp/feast_metrics_x"}, "/srv/metrics"),
    ({METRICS_DIR_ENV: "/tmp/kindml-workers-old"}, None),                               # a parent server's, not ours
])
def test_the_callers_folder_is_taken_and_every_inherited_variable_cleared(clean_env: pytest.MonkeyPatch, env: dict[str, str],
                                                                          taken: str | None) -> None:
    for k, v in env.items():
        clean_env.setenv(k, v)
    assert take_caller_metrics_dir() == taken
    assert not [k for k in (*PROMETHEUS_DIR_ENVS, METRICS_DIR_ENV) if k in os.environ]
    assert multiprocess_dir() is None


def test_one_worker_is_never_in_multiprocess_mode_even_when_feast_set_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/feast_metrics_y")  # what `import feast` does in this process
    with shared_state_dir(1) as shared:
        assert shared is None and multiprocess_dir() is None


def test_workers_share_a_private_folder_that_is_removed_after(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROMETHEUS_MULTIPROCESS_DIR", "/tmp/feast_metrics_z")
    with shared_state_dir(2) as shared:
        assert shared is not None and Path(shared).is_dir()
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == os.environ[METRICS_DIR_ENV] == shared == multiprocess_dir()
        assert "PROMETHEUS_MULTIPROCESS_DIR" not in os.environ  # the workers' Feast makes (and removes) its own
    assert not Path(shared).exists() and multiprocess_dir() is None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_a_given_folder_is_emptied_of_stale_files_and_kept(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "counter_4242.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("mine")
    with shared_state_dir(2, str(tmp_path)) as shared:
        assert shared == str(tmp_path) == multiprocess_dir()
        assert not list(tmp_path.glob("*.db"))
    assert (tmp_path / "notes.txt").exists() and multiprocess_dir() is None
