"""LocalPrometheus without starting a server: configuration, prerequisites, port conflicts, state handling."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from kindml.errors import MonitoringError, PrerequisiteMissing
from kindml.monitoring import prometheus as lp

pytestmark = pytest.mark.unit


def test_config_has_one_file_sd_job_and_the_rule_file(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    p = lp.LocalPrometheus(tmp_path / "prom", ["127.0.0.1:8080"], rules, scrape_interval="2s", evaluation_interval="3s")
    cfg = yaml.safe_load(p.write_config().read_text())
    assert cfg["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "3s"}
    assert cfg["rule_files"] == [str(rules.resolve())]
    (job,) = cfg["scrape_configs"]
    assert job["job_name"] == lp.JOB == "kindml-predictor"
    assert job["file_sd_configs"][0]["files"] == [str(p.targets_path.resolve())]
    assert json.loads(p.targets_path.read_text()) == [{"targets": ["127.0.0.1:8080"], "labels": {}}]
    p.set_targets(["127.0.0.1:9000", "127.0.0.1:9001"])
    assert json.loads(p.targets_path.read_text())[0]["targets"] == ["127.0.0.1:9000", "127.0.0.1:9001"]


def test_missing_binary_is_a_prerequisite_error_with_the_apt_hint(tmp_path, monkeypatch):
    with pytest.raises(PrerequisiteMissing) as exc:
        lp.find_binary("kindml-no-such-prometheus")
    assert "apt-get install -y prometheus" in exc.value.hint

    def missing(name: str = "prometheus") -> str:
        raise PrerequisiteMissing(f"the `{name}` binary is not installed", lp.INSTALL_HINT)

    monkeypatch.setattr(lp, "find_binary", missing)
    with pytest.raises(PrerequisiteMissing, match="prometheus"):
        lp.LocalPrometheus(tmp_path, ["127.0.0.1:1"]).start()


def test_taken_port_is_a_clear_error_naming_it(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = lp.LocalPrometheus(tmp_path, ["127.0.0.1:1"], port=port, binary="/bin/false")
        with pytest.raises(MonitoringError, match=f"port {port} on 127.0.0.1 is already in use"):
            p.start()
    assert p.proc is None and not p.state_path.exists()


def test_bad_targets_are_rejected(tmp_path):
    with pytest.raises(MonitoringError, match="host:port"):
        lp.LocalPrometheus(tmp_path, ["localhost"])


def test_a_server_that_dies_at_start_up_reports_its_log(tmp_path):
    p = lp.LocalPrometheus(tmp_path, ["127.0.0.1:1"], binary="/bin/false", ready_timeout=5)
    with pytest.raises(MonitoringError, match="exited during start-up"):
        p.start()
    assert not p.state_path.exists() and not p.status()["running"]


def test_stale_state_of_a_foreign_process_is_never_killed(tmp_path):
    import os

    p = lp.LocalPrometheus(tmp_path, ["127.0.0.1:1"])
    tmp_path.mkdir(exist_ok=True)
    p.state_path.write_text(json.dumps({"pid": os.getpid(), "port": 1, "url": "http://127.0.0.1:1"}))
    assert p.status()["running"] is False  # our own pid is not a prometheus with this config
    assert p.stop() is False  # ... so stop() leaves it alone (we are still alive)
    assert not p.state_path.exists()
