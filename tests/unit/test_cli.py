"""CLI behaviour: --help everywhere, user errors as `error:` + `hint:` with non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def kindml(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kindml", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def assert_user_error(res: subprocess.CompletedProcess[str], code: int | None = None, needle: str = "") -> None:
    assert res.returncode != 0, res.stdout
    if code is not None:
        assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert "error:" in res.stderr and "hint:" in res.stderr, res.stderr
    assert needle in res.stderr


def test_help_on_every_command(cli_env: dict[str, str]) -> None:
    from typer.main import get_command

    from kindml.cli.main import build_app

    root = get_command(build_app())
    paths: list[list[str]] = [[]]

    def walk(cmd, prefix):  # type: ignore[no-untyped-def]
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    assert ["capstone"] in paths and ["pipeline", "compile"] in paths
    from click.testing import CliRunner

    runner = CliRunner()
    for p in paths:
        res = runner.invoke(root, [*p, "--help"], env=cli_env, prog_name="kindml")
        assert res.exit_code == 0, (p, res.output)
        assert "Usage" in res.output


def test_bad_config_file_is_named(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bad = tmp_path / "k.yaml"
    bad.write_text("train:\n  epochs: -1\n")
    res = kindml(["--config", str(bad), "config", "show"], cli_env)
    assert_user_error(res, 2, str(bad))
    assert "train.epochs" in res.stderr


def test_bad_set_option(cli_env: dict[str, str]) -> None:
    assert_user_error(kindml(["capstone", "--set", "train.workers"], cli_env), 2, "KEY=VALUE")
    assert_user_error(kindml(["capstone", "--set", "train.nope=1"], cli_env), 2, "train.nope")


def test_bad_numbers_and_paths(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert_user_error(kindml(["capstone", "--rows", "10"], cli_env), 2, "data.rows")
    assert_user_error(kindml(["capstone", "--drift", "9"], cli_env), 2, "data.drift")
    assert_user_error(kindml(["capstone", "--data", str(tmp_path / "nope")], cli_env), 2, "not a folder")
    assert_user_error(kindml(["capstone", "--run-id", "../x"], cli_env), 2, "not a valid name")
    assert_user_error(kindml(["capstone", "--resume", "nope"], cli_env), 2, "no saved parameters")
    assert_user_error(kindml(["runs", "show", "../../etc"], cli_env), 2, "not a run id")


def test_click_usage_errors_have_no_traceback(cli_env: dict[str, str]) -> None:
    res = kindml(["capstone", "--rows", "many"], cli_env)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "Invalid value for '--rows'" in res.stderr


def test_config_show_json_and_env_override(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, KINDML_TRAIN__WORKERS="3")
    res = kindml(["config", "show", "-o", "json"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["train"]["workers"] == 3


def test_pipeline_compile_round_trip(tmp_path: Path, cli_env: dict[str, str]) -> None:
    res = kindml(["pipeline", "compile", "--out", str(tmp_path), "-o", "json"], cli_env)
    assert res.returncode == 0, res.stderr
    entries = {e["pipeline"]: e for e in json.loads(res.stdout)}
    from kindml.pipelines import CAPSTONES

    assert set(entries) == {*CAPSTONES, "bench-gpu"}
    entry = entries["fraud"]
    from kfp import components

    comp = components.load_component_from_file(entry["path"])
    assert comp.name == "kindml-fraud"
    for p in ("rows", "days", "seed", "corruption_rate", "quarantine", "min_roc_auc"):
        assert p in comp.component_spec.inputs
    text = Path(entry["path"]).read_text()
    for stage in ("ingest", "validate", "features", "train", "evaluate", "export", "register", "deploy", "monitor"):
        assert f"comp-{stage}" in text
    gpu = Path(entries["bench-gpu"]["path"]).read_text()
    assert components.load_component_from_file(entries["bench-gpu"]["path"]).name == "kindml-bench-gpu"
    assert "resourceType: nvidia.com/gpu" in gpu and "kindml.io/pool: gpu" in gpu and "key: nvidia.com/gpu" in gpu


def test_unknown_pipeline(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert_user_error(kindml(["pipeline", "compile", "--out", str(tmp_path), "--name", "nope"], cli_env), 2, "unknown pipeline")


@pytest.mark.parametrize("args", [["runs", "list"], ["models", "list"]])
def test_empty_workspace_listings(args: list[str], cli_env: dict[str, str]) -> None:
    res = kindml([*args, "-o", "json"], cli_env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []


def test_capstone_on_kind_without_a_cluster_is_one_clear_error(cli_env: dict[str, str]) -> None:
    from kindml.localproc import free_port

    host = f"http://127.0.0.1:{free_port()}"
    res = kindml(["capstone", "--target", "kind", "--kfp-host", host], cli_env)
    assert_user_error(res, 11, f"the KFP API at {host} is not reachable")
    assert "kindml up" in res.stderr
    assert_user_error(kindml(["capstone", "--target", "kind", "--resume", "x"], cli_env), 2, "--resume is for local runs")


def test_run_summary_names_realised_error_the_predictor_did_not_export() -> None:
    """One real series (forecast elecdaily): 7 joined actuals are below the predictor's window minimum; the line says so."""
    from kindml.cli.run_cmd import text_summary

    s = {"run_id": "r", "pipeline": "forecast", "status": "succeeded", "seconds": 1.0, "stages": {}, "run_dir": "/tmp/r",
         "quality": {"feedback": {"joined": 7, "actuals": True}, "realised": {}, "reference": {"wape": 0.0463},
                     "actuals": {"realised": {"wape": 4.64954}}, "quality_alert_fired": False}}
    line = next(ln for ln in text_summary(s).splitlines() if ln.startswith("delayed labels"))
    assert "realised wape=4.64954 on the joined actuals, not exported by the predictor" in line and "vs holdout wape=0.0463" in line
    s["quality"] |= {"realised": {"wape": 0.05}}
    line = next(ln for ln in text_summary(s).splitlines() if ln.startswith("delayed labels"))
    assert "realised wape=0.05 vs holdout" in line
