"""One rule source, two renders: the committed PrometheusRule is fresh, promtool checks and unit-tests every alert."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kindml.errors import MonitoringError
from kindml.monitoring import rules

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
PROMTOOL_TESTS = REPO / "tests" / "promtool"
MANIFEST = REPO / rules.MANIFEST_PATH
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (Debian package `prometheus`: `make setup` or apt-get install prometheus)")


def _alerts(groups):
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def _records(groups):
    return {r["record"]: r for g in groups for r in g["rules"] if "record" in r}


def test_committed_prometheusrule_is_the_fresh_render():
    assert MANIFEST.read_text(encoding="utf-8") == rules.render_prometheusrule(), \
        "manifests/base/monitoring/prometheusrule.yaml is stale: run `python -m kindml.monitoring.rules --write`"
    assert rules.main(["--check"]) == 0


def test_both_profiles_have_the_same_rules_and_differ_only_in_timing():
    cluster, local = rules.render_groups("cluster"), rules.render_groups("local")
    assert set(_alerts(cluster)) == set(_alerts(local)) == {
        "KindmlFeatureDrift", "KindmlFeatureShift", "KindmlPredictionDrift", "KindmlHighErrorRate", "KindmlLatencySLO",
        "KindmlPredictorDown", "KindmlQualityDegraded", "KindmlErrorDegraded", "KindmlChallengerWorse", "KindmlExperimentStarved"}
    assert set(_records(cluster)) == set(_records(local)) == {
        "model_version:kindml_requests:rate", "model_version:kindml_requests:error_ratio",
        "model_version:kindml_request_latency_seconds:p50", "model_version:kindml_request_latency_seconds:p99"}
    assert set(rules.DRIFT_ALERTS) <= set(_alerts(local)) and set(rules.QUALITY_ALERTS) <= set(_alerts(local))
    assert "KindmlErrorDegraded" in rules.RETRAIN_ALERTS  # `kindml monitor watch` retrains on a rising forecast error
    assert _alerts(cluster)["KindmlFeatureDrift"]["for"] == "10m" and _alerts(local)["KindmlFeatureDrift"]["for"] == "10s"
    assert "[5m]" in _records(cluster)["model_version:kindml_requests:rate"]["expr"]
    assert "[20s]" in _records(local)["model_version:kindml_requests:rate"]["expr"]
    assert _alerts(cluster)["KindmlFeatureDrift"]["expr"] == _alerts(local)["KindmlFeatureDrift"]["expr"]
    for groups in (cluster, local):  # every placeholder was filled; Prometheus templating survived
        text = yaml.safe_dump(groups)
        assert "${" not in text and "{{ $labels.model }}" in text


def test_prometheusrule_shape_and_namespace():
    doc = rules.render_prometheus_rule()
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["namespace"] == "kindml-monitoring"
    assert yaml.safe_load(rules.render_prometheusrule()) == doc


def test_cluster_down_alert_matches_the_podmonitor_job():
    base = REPO / "manifests" / "base" / "monitoring"
    ns = yaml.safe_load((base / "kustomization.yaml").read_text())["namespace"]
    pm = yaml.safe_load((base / "podmonitor.yaml").read_text())
    job = f"{ns}/{pm['metadata']['name']}"  # the operator's job label for a PodMonitor
    expr = _alerts(rules.render_groups("cluster"))["KindmlPredictorDown"]["expr"]
    selector = re.search(r'job=~"([^"]+)"', expr).group(1)
    assert re.fullmatch(selector, job), (selector, job)


def test_local_job_matches_the_local_prometheus():
    from kindml.monitoring.prometheus import JOB

    expr = _alerts(rules.render_groups("local"))["KindmlPredictorDown"]["expr"]
    assert re.fullmatch(re.search(r'job=~"([^"]+)"', expr).group(1), JOB)


def test_unknown_placeholder_and_profile_are_errors():
    src = rules.source_text().replace("${feature_psi}", "${feature_psy}", 1)
    with pytest.raises(MonitoringError, match="feature_psy"):
        rules.render_groups("local", rules.load_source(src))
    with pytest.raises(MonitoringError, match="unknown rule profile"):
        rules.render_groups("staging")
    with pytest.raises(MonitoringError, match="invalid"):
        rules.load_source(rules.source_text().replace("expr:", "exp:", 1))


def test_write_local_rules(tmp_path):
    path = rules.write_local_rules(tmp_path / "sub" / "rules.yml")
    doc = yaml.safe_load(path.read_text())
    assert doc == rules.render_rule_file("local")
    assert path.read_text().startswith("# GENERATED")


@pytest.mark.parametrize("profile", rules.PROFILES)
def test_every_alert_has_a_firing_and_a_silent_promtool_test(profile):
    spec = yaml.safe_load((PROMTOOL_TESTS / f"{profile}.test.yml").read_text())
    fires, silent = set(), set()
    for t in spec["tests"]:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    alerts = set(_alerts(rules.render_groups(profile)))
    assert alerts <= fires, f"alerts never tested firing: {alerts - fires}"
    assert alerts <= silent, f"alerts never tested silent: {alerts - silent}"


def _rule_file(profile: str, folder: Path) -> Path:
    if profile == "cluster":  # test exactly what is committed
        groups = yaml.safe_load(MANIFEST.read_text())["spec"]["groups"]
        (folder / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    else:
        rules.write_local_rules(folder / "rules.yml", profile)
    return folder / "rules.yml"


@needs_promtool
@pytest.mark.parametrize("profile", rules.PROFILES)
def test_promtool_check_rules(profile, tmp_path):
    out = subprocess.run(["promtool", "check", "rules", str(_rule_file(profile, tmp_path))], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 14 rules found" in out.stdout


@needs_promtool
@pytest.mark.parametrize("profile", rules.PROFILES)
def test_promtool_unit_tests(profile, tmp_path):
    _rule_file(profile, tmp_path)
    shutil.copy(PROMTOOL_TESTS / f"{profile}.test.yml", tmp_path / "rules.test.yml")
    out = subprocess.run(["promtool", "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_tests_catch_a_wrong_threshold(tmp_path):
    """The promtool tests are not vacuous: moving the PSI threshold makes them fail."""
    src = rules.source_text().replace("feature_psi: 0.2", "feature_psi: 0.6")
    groups = rules.render_groups("local", rules.load_source(src))
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(PROMTOOL_TESTS / "local.test.yml", tmp_path / "rules.test.yml")
    out = subprocess.run(["promtool", "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and "KindmlFeatureDrift" in out.stdout + out.stderr
