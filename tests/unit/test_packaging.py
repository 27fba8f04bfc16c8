"""platform/ is a source root, never a package; editable install, wheel and `python -m kindml` all work."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_platform_is_not_a_package() -> None:
    assert not (REPO / "platform" / "__init__.py").exists()


def test_stdlib_platform_from_repo_root() -> None:
    out = subprocess.run([sys.executable, "-c", "import platform; print(platform.system()); print(platform.__file__)"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    system, path = out.stdout.split()
    assert system == "Linux"
    assert "/platform/" not in path.replace(str(REPO), "")  # the stdlib module, not our folder


def test_python_m_kindml_from_repo_root() -> None:
    out = subprocess.run([sys.executable, "-m", "kindml", "--version"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("kindml ")
    # and numpy still imports with the repo root first on sys.path (the shadowing failure mode)
    subprocess.run([sys.executable, "-c", "import numpy, sys; assert sys.path[0] == ''"], cwd=REPO, check=True)


def test_editable_install_maps_components_and_pipelines() -> None:
    # (kindml.components re-exports each component function under its folder's name, so import the module with from-import)
    code = "from kindml.components.ingest import component as c; import kindml.pipelines.fraud.pipeline as p; print(c.__file__); print(p.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    comp, pipe = out.stdout.split()
    assert comp == str(REPO / "components" / "ingest" / "component.py")
    assert pipe == str(REPO / "pipelines" / "fraud" / "pipeline.py")


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for root, prefix in ((REPO / "platform" / "kindml", "kindml"), (REPO / "components", "kindml.components"), (REPO / "pipelines", "kindml.pipelines")):
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([prefix, *rel.parts]) if rel.parts else prefix)
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.mark.local
def test_wheel_contains_mapped_packages_and_imports_from_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(REPO)],
                   check=True, capture_output=True, text=True)
    wheel = next((tmp_path / "dist").glob("kindml-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "kindml/components/ingest/component.py" in names
    assert "kindml/pipelines/fraud/pipeline.py" in names
    assert not any(n.startswith("platform/") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # the extracted wheel comes first on sys.path, ahead of the editable install
    code = "import kindml, kindml.pipelines.fraud.pipeline, kindml.cli.main; print(kindml.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(site))
