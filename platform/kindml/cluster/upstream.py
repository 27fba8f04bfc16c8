"""The pinned upstream components (``manifests/upstream.yaml``), typed.

The file is the one place where upstream versions live; :func:`pin_problems`
is the lint that every URL is pinned to exactly that version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kindml.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    url: str
    mode: Literal["file", "kustomize"]

    def apply_argv(self) -> list[str]:
        flag = "-f" if self.mode == "file" else "-k"
        return ["kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager=kindml", flag, self.url]

    def render_argv(self) -> list[str]:
        if self.mode == "kustomize":
            return ["kubectl", "kustomize", self.url]
        return ["kubectl", "create", "--dry-run=client", "-o", "yaml", "-f", self.url]


class Request(_Strict):
    workload: str
    cpu: str
    memory: str
    basis: Literal["read", "estimate"]
    note: str = ""


class Component(_Strict):
    name: str
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="GitHub owner/name whose git history the audit reads.")
    version: str = Field(min_length=1)
    sdk: str | None = Field(None, description="Version of the matching Python SDK (pyproject) when it differs from the cluster pin.")
    why: str
    namespace: str
    create_namespace: bool = Field(False, description="The install source does not create its namespace: `up` creates it first.")
    addon: Literal["keda"] | None = Field(None, description="Installed only when `kindml up` is asked for this add-on.")
    crds: list[Source] = Field(default_factory=list)
    install: list[Source]
    config: str | None = None
    crd_names: list[str] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)
    daemonsets: list[str] = Field(default_factory=list)
    stage: Literal["cert-manager", "controllers"]
    timeout_s: int = Field(gt=0, le=3600)
    arm64: bool
    gpu: bool = False
    requests: list[Request] = Field(default_factory=list)

    @property
    def sources(self) -> list[Source]:
        return [*self.crds, *self.install]


class KindPin(_Strict):
    repo: str = "kubernetes-sigs/kind"
    version: str
    node_image: str


class Upstream(_Strict):
    kind: KindPin
    components: list[Component]

    def selected(self, gpu: bool = False, addons: frozenset[str] | set[str] = frozenset()) -> list[Component]:
        return [c for c in self.components if (gpu or not c.gpu) and (c.addon is None or c.addon in addons)]

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)


def load_upstream(path: Path | None = None) -> Upstream:
    if path is None:
        from kindml.cluster.paths import manifests_dir

        path = manifests_dir() / "upstream.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Upstream.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist", "Restore manifests/upstream.yaml from the repository.") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path} is invalid: {exc}", "Fix the file; see the comment at its top for the expected layout.") from None


_FLOATING = re.compile(r"(?i)(^|[/=@:?])(master|main|head|latest|nightly|stable)($|[/&.?])")
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")


def pin_problems(up: Upstream) -> list[str]:
    """Every way an upstream reference is not pinned to one exact release."""
    problems: list[str] = []
    if not _EXACT_VERSION.match(up.kind.version):
        problems.append(f"kind version {up.kind.version!r} is not an exact release")
    if not re.search(r":v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$", up.kind.node_image):
        problems.append(f"kind node image {up.kind.node_image!r} is not pinned to a release tag")
    for c in up.components:
        if not _EXACT_VERSION.match(c.version):
            problems.append(f"{c.name}: version {c.version!r} is not an exact release (x.y.z)")
        for s in c.sources:
            if c.version not in s.url:
                problems.append(f"{c.name}: {s.url} does not contain the pinned version {c.version}")
            if _FLOATING.search(s.url):
                problems.append(f"{c.name}: {s.url} names a floating ref (master/main/latest/...)")
            if s.mode == "kustomize" and not re.search(r"[?&]ref=" + re.escape(c.version) + r"($|&)", s.url):
                problems.append(f"{c.name}: remote kustomization {s.url} is not pinned with ?ref={c.version}")
            if s.mode == "file" and not s.url.startswith("https://"):
                problems.append(f"{c.name}: release manifest {s.url} is not an https URL")
    return problems
