"""Security checks that need no network: no secrets in the repository or in anything we render, and where the predictor binds.

See docs/security.md. The manifest scan (checkov) and the dependency audit
(pip-audit) run in their own tool venv: `make security`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

# Patterns of values that must never be committed or rendered.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "URL with credentials": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:[^\s/@'\"$]{3,}@[\w.-]+"),
}
# `password: <literal>` (and friends) in configuration-like files; references and placeholders are fine.
CONFIG_SUFFIXES = {".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties"}
CONFIG_NAMES = {"Dockerfile", ".env"}
LITERAL_SECRET = re.compile(
    r"""(?ix)["']?\b(?:password|passwd|pwd|secret|secret[_-]?key|api[_-]?key|access[_-]?key|auth[_-]?token|token)\b["']?
        [ \t]*[:=][ \t]*["']?(?P<value>[^\s"',}\]#]+)""")
PLACEHOLDER = re.compile(r"""(?ix)^(?:|null|none|true|false|~|\$.*|\{\{.*|<.*|.*\$\{.*|changeme|example|xxx+|\*+|redacted|
                               secretkeyref|valuefrom|\||>|-|\[\]|\{\})$""")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, timeout=60, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked-file scan needs `git ls-files`")
    return [REPO / p for p in out.decode().split("\0") if p]


def text_of(path: Path, limit: int = 2_000_000) -> str | None:
    try:
        raw = path.read_bytes()[:limit]
    except OSError:
        return None
    if b"\0" in raw[:8192]:
        return None  # binary
    return raw.decode("utf-8", errors="replace")


def findings(text: str, where: str, config_like: bool) -> list[str]:
    out = [f"{where}: {name}" for name, rx in SECRET_PATTERNS.items() if rx.search(text)]
    if config_like:
        for m in LITERAL_SECRET.finditer(text):
            if not PLACEHOLDER.match(m.group("value")):
                line = text.count("\n", 0, m.start()) + 1
                out.append(f"{where}:{line}: literal secret value for {m.group(0).split(':')[0].split('=')[0].strip()!r}")
    return out


def secret_objects_with_data(docs: list[Any], where: str) -> list[str]:
    return [f"{where}: Secret {d.get('metadata', {}).get('namespace', '')}/{d.get('metadata', {}).get('name')} carries data"
            for d in docs if isinstance(d, dict) and d.get("kind") == "Secret" and (d.get("data") or d.get("stringData"))]


def rendered_objects() -> dict[str, list[dict[str, Any]]]:
    """Everything kindml renders for a cluster: both overlays and the per-run templates."""
    from kindml.cluster import lifecycle, templates

    champ = templates.ModelVersion(version="3", model_uri="models:/fraud-detector/3")
    chall = templates.ModelVersion(version="4", model_uri="models:/fraud-detector/4")
    return {
        "overlay kind": lifecycle.platform_objects(gpu=False),
        "overlay kind-gpu": lifecycle.platform_objects(gpu=True),
        "InferenceService": [templates.render_inferenceservice(champ, chall, 10)],
        "RayJob": [templates.render_rayjob(templates.RayJobParams(run_id="r1", entrypoint="python -m kindml.model.train", workers=2))],
        "RayJob gpu": [templates.render_rayjob(templates.RayJobParams(run_id="r1", entrypoint="python -m kindml.model.train", workers=2,
                                                                      gpus_per_worker=1))],
    }


def test_scanner_catches_what_it_should() -> None:
    fake_key = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE\n"
    assert findings(fake_key, "x", False)
    assert findings("id: AKIA" + "ABCDEFGHIJKLMNOP", "x", False)
    assert findings("password: hunter2hunter2", "x.yaml", True)
    assert findings('"api_key": "abc123def"', "x.json", True)
    assert findings("redis://user:s3cr3tpw@redis:6379", "x", False)
    for ok in ("password: ${GRAFANA_PASSWORD}", "password: {{ .Values.pw }}", "secretKeyRef: {name: grafana-admin, key: admin-password}",
               "password:", "password: null", "token: <your token>", "admin-password: $(GF_PW)"):
        assert findings(ok, "x.yaml", True) == [], ok
    assert secret_objects_with_data([{"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}], "x")
    assert secret_objects_with_data([{"kind": "Secret", "metadata": {"name": "s"}}], "x") == []


def test_no_secrets_in_tracked_files() -> None:
    problems: list[str] = []
    files = tracked_files()
    assert len(files) > 50
    for path in files:
        if path.name == "test_security.py" and path.parent.name == "unit":
            continue  # this file spells the patterns
        text = text_of(path)
        if text is None:
            continue
        rel = str(path.relative_to(REPO))
        config_like = path.suffix in CONFIG_SUFFIXES or path.name in CONFIG_NAMES
        problems += findings(text, rel, config_like)
        if path.suffix in (".yaml", ".yml"):
            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError:
                continue  # templated YAML (e.g. KFP placeholders); the text scan above still covered it
            problems += secret_objects_with_data(docs, rel)
    assert problems == []


def test_generated_secrets_are_not_committable() -> None:
    # the workspace (where `kindml up` keeps secrets.json) and build outputs are ignored by git
    ignored = subprocess.run(["git", "check-ignore", "-q", ".kindml/cluster/secrets.json"], cwd=REPO, timeout=30)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, ".kindml/ must be in .gitignore"
    assert not [p for p in tracked_files() if p.name == "secrets.json" or p.suffix in (".pem", ".key", ".p12", ".pfx")]


def test_no_secrets_in_rendered_manifests() -> None:
    problems: list[str] = []
    for what, objs in rendered_objects().items():
        assert objs, what
        problems += secret_objects_with_data(objs, what)
        problems += findings(yaml.safe_dump_all(objs, sort_keys=False), what, True)
        for o in objs:  # credentials reach pods only as secretKeyRef / secretRef or Secret files (<VAR>__FILE), never as env literals
            for env in _walk_env(o):
                name = str(env.get("name", "")).upper()
                if name.endswith("__FILE") and str(env.get("value", "")).startswith("/"):
                    continue
                if any(k in name for k in ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "ACCESS_KEY")) and "value" in env:
                    problems.append(f"{what}: {o['kind']}/{o['metadata']['name']} sets {name} as a literal env value")
    assert problems == []


def _walk_env(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("env"), list):
            found += [e for e in node["env"] if isinstance(e, dict)]
        for v in node.values():
            found += _walk_env(v)
    elif isinstance(node, list):
        for v in node:
            found += _walk_env(v)
    return found


def test_generated_secrets_stay_out_of_manifests(tmp_path: Path) -> None:
    from kindml.cluster import secrets

    values = secrets.load_or_create(tmp_path)
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert secrets.load_or_create(tmp_path) == values  # kept across `up` runs
    rendered = "\n".join(yaml.safe_dump_all(objs) for objs in rendered_objects().values())
    for v in values.values():
        assert len(v) >= 24 and v not in rendered
    for path in tracked_files():
        text = text_of(path)
        assert text is None or all(v not in text for v in values.values())


# ---------------------------------------------------------------- bind address
def test_kserve_default_is_all_interfaces_and_kindml_binds_the_configured_host() -> None:
    """KServe's RESTServer hard-codes 0.0.0.0; kindml's subclass sets the host it is given (127.0.0.1 by default)."""
    import kserve.model_server as ms
    from kserve.protocol.rest.server import RESTServer

    from kindml.serving.server import bound_rest_server

    base = RESTServer("kindml.nowhere:app", None, None, http_port=0)
    assert base.config.host == "0.0.0.0"  # the upstream default docs/security.md describes
    for host in ("127.0.0.1", "::1", "0.0.0.0"):
        cls = bound_rest_server(host)
        assert issubclass(cls, RESTServer) and cls.bind_host == host
        srv = cls("kindml.nowhere:app", None, None, http_port=0)
        assert srv.config.host == host and srv.config.port == 0
    # serve_foreground swaps the class where ModelServer looks it up
    assert ms.RESTServer is RESTServer or issubclass(ms.RESTServer, RESTServer)
    assert "RESTServer(" in Path(ms.__file__).read_text(encoding="utf-8")


def test_cli_defaults_bind_loopback() -> None:
    import inspect

    from kindml.cli import serve_cmd
    from kindml.monitoring import prometheus
    from kindml.serving import server

    assert inspect.signature(server.start_background).parameters["host"].default == "127.0.0.1"
    src = Path(serve_cmd.__file__).read_text(encoding="utf-8")
    assert src.count('typer.Option("127.0.0.1", "--host"') >= 2  # serve run / serve start
    assert prometheus.HOST == "127.0.0.1"  # the local Prometheus listens on loopback only


# ---------------------------------------------------------------- scan inputs
def test_scan_inputs_cover_the_pods_inside_custom_resources(tmp_path: Path) -> None:
    from kindml.cluster.scaninputs import pod_views, templates_for_scan, write_inputs

    t = templates_for_scan()
    isvc = t["inferenceservice"][0]
    views = pod_views(isvc)
    assert [v["metadata"]["name"] for v in views] == ["view-inferenceservice-model-predictor", "view-inferenceservice-model-canary0"]
    pod = views[0]["spec"]["template"]["spec"]
    assert pod["containers"] == isvc["spec"]["predictor"]["containers"] and "minReplicas" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    job = pod_views(t["rayjob"][0])
    assert [v["metadata"]["name"].rsplit("-", 1)[-1] for v in job] == ["submitter", "head", "ddp"]
    for v in job:  # every skip carries a reason
        ann = v["metadata"]["annotations"]
        skips = [a for k, a in ann.items() if k.startswith("checkov.io/skip")]
        assert skips and all(re.match(r"^CKV_K8S_\d+=\S.{20,}", a) for a in skips)
    assert any("CKV_K8S_8=KubeRay" in a for a in job[1]["metadata"]["annotations"].values())
    assert pod_views({"kind": "ConfigMap", "metadata": {"name": "x"}}) == []
    written = write_inputs(tmp_path)
    assert set(written) == {"kind", "kind-gpu", "inferenceservice", "rayjob", "rayjob-gpu", "views"}
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(written["views"].read_text()) if d]
    assert len(names) == len(set(names)) == 8
