"""`kindml run --target kind` without a cluster: progress from KFP task states, bounded waits, failure summaries.

The KFP API server cannot run here, so it is replaced at the client boundary by
a scripted stand-in returning the KFP SDK's own response models
(kfp_server_api V2beta1Run / V2beta1PipelineTaskDetail). Everything after the
client (tracking, summary, errors) is the real code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kindml.pipeline.source import from_module  # noqa: E402

FRAUD_SOURCE = from_module("fraud", "kindml.pipelines.fraud.pipeline:pipeline", "kindml.pipelines.fraud.workload")

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def task(name: str, state: str, start: int | None = None, end: int | None = None) -> Any:
    from kfp_server_api import V2beta1PipelineTaskDetail

    return V2beta1PipelineTaskDetail(display_name=name, state=state, start_time=T0 + timedelta(seconds=start) if start is not None else None,
                                     end_time=T0 + timedelta(seconds=end) if end is not None else None)


def run(state: str, *tasks: Any, error: str | None = None) -> Any:
    from kfp_server_api import GoogleRpcStatus, V2beta1Run, V2beta1RunDetails

    return V2beta1Run(run_id="kfp-123", state=state, run_details=V2beta1RunDetails(task_details=list(tasks)),
                      error=GoogleRpcStatus(message=error) if error else None)


class ScriptedKfp:
    """Answers get_run with the next scripted run (the last one repeats)."""

    def __init__(self, polls: list[Any]) -> None:
        self.polls = polls
        self.calls = 0
        self.submitted: dict[str, Any] = {}

    def create_run_from_pipeline_func(self, fn: Any, arguments: dict[str, Any], **kw: Any) -> Any:
        self.submitted = {"fn": fn, "arguments": arguments, **kw}
        return run("PENDING")

    def get_run(self, run_id: str) -> Any:
        assert run_id == "kfp-123"
        r = self.polls[min(self.calls, len(self.polls) - 1)]
        self.calls += 1
        return r


def test_tracker_reports_each_stage_once_in_order_with_durations() -> None:
    from kindml.pipeline.remote import TaskTracker

    events: list[tuple[str, str, float | None]] = []
    tr = TaskTracker(("ingest", "validate", "features"), lambda s, e, secs: events.append((s, e, secs)))
    tr.update(run("RUNNING", task("ingest", "RUNNING", 0), task("kindml-capstone", "RUNNING", 0)))
    tr.update(run("RUNNING", task("ingest", "RUNNING", 0)))  # no change: no event
    # validate started and finished between two polls; a task listed twice (driver + executor) counts once
    tr.update(run("RUNNING", task("ingest", "SUCCEEDED", 0, 12), task("validate", "SUCCEEDED", 12, 20), task("validate", "SUCCEEDED", 13, 19),
                  task("features", "PENDING")))
    tr.update(run("FAILED", task("ingest", "SUCCEEDED", 0, 12), task("validate", "SUCCEEDED", 12, 20), task("features", "FAILED", 20, 31)))
    assert events == [("ingest", "start", None), ("ingest", "succeeded", 12.0), ("validate", "start", None), ("validate", "succeeded", 8.0),
                      ("features", "start", None), ("features", "failed", 11.0)]
    assert tr.clock.stages["features"] == {"status": "failed", "seconds": 11.0}


def test_wait_is_bounded_and_says_the_run_keeps_going() -> None:
    from kindml.errors import ClusterError
    from kindml.pipeline.remote import TaskTracker, wait_for_run

    now = [0.0]
    client = ScriptedKfp([run("RUNNING", task("ingest", "RUNNING", 0))])
    with pytest.raises(ClusterError) as e:
        wait_for_run(client, "kfp-123", TaskTracker(("ingest",)), timeout=60, poll_s=10, clock=lambda: now[0],
                     sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert "did not finish within 60 s" in e.value.message and "KFP UI" in e.value.hint
    assert client.calls == 7  # t = 0, 10, ..., 60: polled every 10 s until the deadline, never longer


def test_failed_run_writes_a_summary_naming_the_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kindml.config import KindmlConfig
    from kindml.errors import PipelineFailed
    from kindml.pipeline.remote import run_on_kfp
    from kindml.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    client = ScriptedKfp([
        run("RUNNING", task("ingest", "RUNNING", 0)),
        run("FAILED", task("ingest", "SUCCEEDED", 0, 5), task("validate", "FAILED", 5, 9), error="task validate failed"),
    ])
    with pytest.raises(PipelineFailed) as e:
        run_on_kfp(FRAUD_SOURCE, KindmlConfig(), ws, "r1", client=client, poll_s=0, mlflow_uri=(tmp_path / "no-mlflow").as_uri())
    assert "at stage validate" in e.value.message and "runs/details/kfp-123" in e.value.hint
    s = json.loads((ws.run_dir("r1") / "summary.json").read_text())
    assert s["target"] == "kind" and s["status"] == "failed" and s["failed_stage"] == "validate"
    assert s["stages"]["ingest"] == {"status": "succeeded", "seconds": 5.0} and s["stages"]["features"]["status"] == "not_run"
    assert s["error"]["message"] == "task validate failed"
    assert s["results_fetched"] == [] and s["results_note"]
    # what was submitted: the capstone with its config and the run id (pods find the services in the ConfigMap env)
    assert "env_json" not in client.submitted["arguments"] and client.submitted["arguments"]["run_id"] == "r1"
    assert json.loads(client.submitted["arguments"]["config_json"]) == json.loads(KindmlConfig().model_dump_json())
    assert client.submitted["run_name"] == "r1"


def test_unreachable_kfp_api_is_a_cluster_error(tmp_path: Path) -> None:
    from kindml.config import KindmlConfig
    from kindml.errors import ClusterError
    from kindml.localproc import free_port
    from kindml.pipeline.remote import run_on_kfp
    from kindml.workspace import Workspace

    with pytest.raises(ClusterError) as e:
        run_on_kfp(FRAUD_SOURCE, KindmlConfig(), Workspace(tmp_path / "ws"), "r2", host=f"http://127.0.0.1:{free_port()}")
    assert "not reachable" in e.value.message and "kindml up" in e.value.hint


@pytest.mark.parametrize("name", ["fraud", "text"])
def test_every_capstone_submits_to_kfp(name: str, tmp_path: Path) -> None:
    """The kind target submits every capstone: the pipeline, its config and run id (the KFP API is faked at the client boundary)."""
    from kindml.config import KindmlConfig
    from kindml.pipeline.remote import run_on_kfp
    from kindml.pipelines import CAPSTONES
    from kindml.workspace import Workspace

    c = CAPSTONES[name]
    source = from_module(c.name, c.pipeline, c.workload)
    client = ScriptedKfp([run("SUCCEEDED", *(task(s, "SUCCEEDED", 0, 1) for s in ("ingest", "validate")))])
    s = run_on_kfp(source, KindmlConfig(), Workspace(tmp_path / "ws"), f"r-{name}", client=client, poll_s=0,
                   mlflow_uri=(tmp_path / "no-mlflow").as_uri())
    assert s["pipeline"] == name and s["workload"] == c.workload and client.submitted["fn"].name == f"kindml-{name}"
    assert set(s["stages"]) == {"ingest", "validate", "features", "train", "evaluate", "export", "register", "deploy", "monitor"}
    assert client.submitted["arguments"]["run_id"] == f"r-{name}" and client.submitted["experiment_name"] == f"kindml-{name}"
