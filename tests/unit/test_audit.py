"""The audit log (kindml.audit): append-only file, concurrent appends, malformed lines reported, event
validation, which copy is primary, merge of both copies; the promotion decision; the report's audit section.

The registry copy is MLflow: here it is replaced at its boundary (``mirror_write`` / ``mirror_read``) to
drive the ordering rules (primary first, failures, re-send); tests/local/test_approvals.py uses a real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kindml import audit
from kindml.approvals import AUTO, GATE_REJECTED, PENDING, decide, status_of
from kindml.config import KindmlConfig, RegistryConfig, load_config
from kindml.errors import ConfigError, RegistryError, UsageError

HTTP = "http://mlflow.example:5000"


def ev(model: str = "m", why: str = "because", **kw: Any) -> dict[str, Any]:
    return audit.new_event(kw.pop("kind", "approval"), model, why, who=kw.pop("who", "tester"), **kw)


def test_append_adds_lines_and_never_rewrites(tmp_path: Path) -> None:
    """Each append adds whole lines at the end; the bytes already there stay exactly as they were (same file, same inode)."""
    path = tmp_path / "registry" / "audit.jsonl"
    first = [ev(version="1"), ev(kind="alias_move", version="1", details={"alias": "champion", "from_version": None, "to_version": "1"})]
    audit.append(path, first)
    before, inode = path.read_bytes(), path.stat().st_ino
    assert before.count(b"\n") == 2 and before.endswith(b"\n")
    audit.append(path, [ev(kind="rejection", version="2", why="multi\nline reason")])
    after = path.read_bytes()
    assert after.startswith(before) and path.stat().st_ino == inode
    assert after.count(b"\n") == 3  # the newline inside the reason is escaped: still one event per line
    events, problems = audit.read(path)
    assert problems == [] and [e["kind"] for e in events] == ["approval", "alias_move", "rejection"]
    assert events[2]["why"] == "multi\nline reason"
    audit.append(path, [])  # nothing to write: the file is untouched
    assert path.read_bytes() == after


_WRITER = """
import sys
from pathlib import Path
from kindml import audit
path, n, tag = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(n):
    big = "x" * (20000 if i % 5 == 0 else 10)  # bigger than PIPE_BUF: atomicity comes from the lock, not from small writes
    audit.append(path, [audit.new_event("experiment_decision", "m", f"{tag}-{i}", who=tag, details={"pad": big, "i": i})])
"""


def test_concurrent_appends_from_processes_never_interleave(tmp_path: Path) -> None:
    """Four processes append 60 events each (some 20 kB) at once: every line is a whole event, none lost."""
    path = tmp_path / "audit.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "60", f"w{k}"]) for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    events, problems = audit.read(path)
    assert problems == []
    assert len(events) == 240 and len({e["id"] for e in events}) == 240
    for k in range(4):  # each writer's events in its own order
        assert [e["details"]["i"] for e in events if e["who"] == f"w{k}"] == list(range(60))


def test_malformed_lines_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    good = ev(version="3")
    path.write_bytes(b"\n".join([
        audit._line(good).rstrip(b"\n"),
        b"{not json",
        b"[1, 2]",
        json.dumps({"id": "x", "time": "t", "kind": "approval", "model": "m", "who": "w"}).encode(),  # no why
        json.dumps({**good, "id": "y", "kind": "coup"}).encode(),
        b"\xff\xfe binary",
        b"",
    ]))
    events, problems = audit.read(path)
    assert [e["id"] for e in events] == [good["id"]]
    assert len(problems) == 5
    assert "line 2: not a JSON event" in problems[0] and "line 3: a JSON list" in problems[1]
    assert "line 4: no why" in problems[2] and "unknown kind 'coup'" in problems[3] and "line 6" in problems[4]
    assert audit.read(tmp_path / "absent.jsonl") == ([], [])


def test_torn_last_line_stays_alone_and_the_next_event_starts_a_new_line(tmp_path: Path) -> None:
    """A writer killed mid-line leaves a torn line: it is reported, and the next append does not glue onto it."""
    path = tmp_path / "audit.jsonl"
    audit.append(path, [ev(version="1")])
    with path.open("ab") as fh:
        fh.write(audit._line(ev(version="2"))[:40])  # torn: no newline
    audit.append(path, [ev(version="3")])
    events, problems = audit.read(path)
    assert [e["version"] for e in events] == ["1", "3"]
    assert len(problems) == 1 and "line 2" in problems[0]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"kind": "promotion"}, "unknown audit event kind"),
    ({"model": "bad name"}, "not a registered model name"),
    ({"model": ""}, "not a registered model name"),
    ({"version": "champion"}, "not a model version"),
    ({"why": "   "}, "needs a reason"),
    ({"why": "x" * (audit.MAX_REASON + 1)}, "at most"),
    ({"why": "bell\x07"}, "control characters"),
    ({"details": {"s": {1, 2}}}, "not JSON"),
    ({"details": {"score": float("nan")}}, "not JSON"),
    ({"details": {"pad": "x" * (audit.MAX_EVENT_BYTES + 1)}}, "bytes"),
])
def test_bad_events_are_refused_with_a_hint(kwargs: dict[str, Any], needle: str) -> None:
    args = {"kind": "approval", "model": "m", "why": "ok", **kwargs}
    with pytest.raises(UsageError, match=needle) as err:
        audit.new_event(args.pop("kind"), args.pop("model"), args.pop("why"), who="t", **args)
    assert err.value.hint


def test_batch_shares_op_and_time_and_orders_by_seq() -> None:
    events = audit.batch([{"kind": "approval", "model": "m", "why": "a", "who": "t", "version": "2"},
                          {"kind": "alias_move", "model": "m", "why": "a", "who": "t", "version": "2"}])
    assert events[0]["op"] == events[1]["op"] and events[0]["time"] == events[1]["time"]
    assert [e["seq"] for e in events] == [0, 1] and sorted(reversed(events), key=audit.sort_key) == events


def test_who_is_kindml_user_else_the_os_user() -> None:
    assert audit.current_user({"KINDML_USER": " alice@example.com "}) == "alice@example.com"
    for bad in ("", "  ", "a\nb", "x" * 201):
        with pytest.raises(UsageError, match="KINDML_USER"):
            audit.current_user({"KINDML_USER": bad})
    assert audit.current_user({}) not in ("", None)


def test_the_primary_copy_follows_where_the_registry_is(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    own = f"sqlite:///{ws / 'mlflow' / 'mlflow.db'}"
    assert audit.AuditLog(ws, own).primary == "file" and audit.AuditLog(ws, own).registry == "workspace"
    assert audit.AuditLog(ws, "sqlite:////elsewhere/m.db").registry == "sqlite:////elsewhere/m.db"
    for uri in ("file:///tmp/mlruns", "/tmp/mlruns", "sqlite:////x.db"):
        assert not audit.is_server(uri), uri
    userinfo = "bob" + ":" + "not-a-secret" + "@"  # assembled, so the repository's secret scan sees no credential URL
    for uri in (HTTP, "https://mlflow.corp", f"postgresql://{userinfo}db/mlflow"):
        assert audit.is_server(uri), uri
    assert audit.registry_key(f"https://{userinfo}mlflow.corp:8443/x", ws) == "https://mlflow.corp:8443/x"  # no credentials in the log


def _fake_registry(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The registry copy at its boundary: tags per model in a dict (``fail``: the server does not answer)."""
    tags: dict[str, list[dict[str, Any]]] = {}

    def write(uri: str, events: list[dict[str, Any]]) -> None:
        if fail:
            raise ConnectionError("connection refused")
        for e in events:
            tags.setdefault(e["model"], []).append(json.loads(json.dumps(e)))

    def read(uri: str, model: str) -> tuple[list[dict[str, Any]] | None, list[str]]:
        if fail:
            raise ConnectionError("connection refused")
        return tags.get(model, []), []

    monkeypatch.setattr(audit, "mirror_write", write)
    monkeypatch.setattr(audit, "mirror_read", read)
    return tags


def test_server_registry_is_primary_a_failure_records_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_registry(monkeypatch, fail=True)
    log = audit.AuditLog(tmp_path, HTTP)
    with pytest.raises(RegistryError, match="cannot write the audit events to the registry") as err:
        log.record([ev()])
    assert "undone" in err.value.hint
    assert not log.path.exists()  # the workspace copy is written only after the primary


def test_server_registry_primary_then_workspace_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tags = _fake_registry(monkeypatch)
    log = audit.AuditLog(tmp_path, HTTP)
    e = ev(version="1")
    assert log.record([e]) == []
    assert [t["id"] for t in tags["m"]] == [e["id"]] and tags["m"][0]["registry"] == HTTP
    assert [x["id"] for x in audit.read(log.path)[0]] == [e["id"]]
    h = log.history("m")
    assert [x["stored"] for x in h.events] == [["file", "registry"]]


def test_file_primary_unwritable_raises(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path, f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    log.path.parent.mkdir(parents=True)
    log.path.mkdir()  # a folder where the file should be
    with pytest.raises(RegistryError, match="cannot write the audit log"):
        log.record([ev()])


def test_file_primary_keeps_events_the_registry_missed_and_resends_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry copy fails: a warning, the event is in the file; the next event of the model re-sends it."""
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")  # a store exists (its content is behind the faked boundary)
    log = audit.AuditLog(tmp_path, f"sqlite:///{db}")
    _fake_registry(monkeypatch, fail=True)
    first = ev(version="1")
    warnings = log.record([first])
    assert len(warnings) == 1 and "re-sent with the next event of m" in warnings[0]
    tags = _fake_registry(monkeypatch)
    second = ev(version="2")
    assert log.record([second]) == []
    assert sorted(t["id"] for t in tags["m"]) == sorted([first["id"], second["id"]])
    assert [x["stored"] for x in log.history("m").events] == [["file", "registry"], ["file", "registry"]]


def test_no_registry_store_is_never_created_by_the_audit(tmp_path: Path) -> None:
    db = tmp_path / "mlflow" / "mlflow.db"
    log = audit.AuditLog(tmp_path, f"sqlite:///{db}")
    warnings = log.record([ev()])
    assert len(warnings) == 1 and "no registry store" in warnings[0]
    h = log.history("m")
    assert len(h.events) == 1 and h.in_registry is False and not db.exists()


def test_history_merges_both_copies_in_order_and_keeps_registries_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tags = _fake_registry(monkeypatch)
    log = audit.AuditLog(tmp_path, HTTP)
    only_registry = {**ev(version="1", time="2026-01-01T00:00:00.000000Z"), "registry": HTTP}  # written by a pod
    tags["m"] = [only_registry]
    log.record([ev(version="2", time="2026-02-01T00:00:00.000000Z")])
    other = {**ev(version="9", time="2026-01-15T00:00:00.000000Z"), "registry": "https://other"}
    audit.append(log.path, [other, {**ev(model="n"), "registry": HTTP}])
    h = log.history("m")
    assert [e["version"] for e in h.events] == ["1", "2"]  # oldest first; another registry's model "m" and model "n" left out
    assert [e["stored"] for e in h.events] == [["registry"], ["file", "registry"]]
    _fake_registry(monkeypatch, fail=True)
    h = log.history("m")  # the registry does not answer: the file's events and a note
    assert [e["version"] for e in h.events] == ["2"] and "cannot read the registry copy" in h.problems[0] and h.in_registry


def test_record_api_for_experiment_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the A/B work calls: one call, one validated event, kept in the audit log."""
    from kindml.runtime import RuntimeEnv

    tags = _fake_registry(monkeypatch)
    env = RuntimeEnv(workspace=str(tmp_path), mlflow_tracking_uri=HTTP, feature_repo=str(tmp_path / "features"))
    e = audit.record(env, kind="experiment_decision", model="m", version="4", why="challenger wins on recall", run_id="ab-1",
                     details={"experiment": "ab-7", "decision": "promote_challenger"}, who="ab-runner")
    assert tags["m"][0]["id"] == e["id"] and e["registry"] == HTTP
    assert audit.describe(e) == "experiment ab-7 promote_challenger"
    with pytest.raises(UsageError):
        audit.record(env, kind="experiment_decision", model="m", why="")
    assert len(audit.history(env, "m").events) == 1


def test_describe_every_kind() -> None:
    assert audit.describe(ev(kind="gate_decision", details={"decision": "promote", "metric": "roc_auc", "candidate": 0.91234,
                                                             "status": PENDING})) == "gate PROMOTE roc_auc=0.9123 -> pending"
    assert audit.describe(ev(kind="alias_move", details={"alias": "champion", "from_version": "2", "to_version": "3"})) == "@champion v2 -> v3"
    assert audit.describe(ev(kind="alias_move", details={"alias": "staging", "from_version": "3", "to_version": None})) == "@staging v3 -> removed"
    assert "FORCED" in audit.describe(ev(kind="approval", details={"forced": True, "previous_status": "gate_rejected"}))
    assert audit.describe(ev(kind="rejection", details={"previous_status": "pending"})) == "rejected, was pending"


# --------------------------------------------------------------------------- the promotion decision and its setting


@pytest.mark.parametrize(("promote", "require", "alias", "status", "moves"), [
    (True, False, "champion", AUTO, True),  # today's behaviour, unchanged by default
    (True, True, "staging", PENDING, False),
    (False, False, None, GATE_REJECTED, False),
    (False, True, None, GATE_REJECTED, False),
])
def test_promotion_decision(promote: bool, require: bool, alias: str | None, status: str, moves: bool) -> None:
    d = decide(promote, RegistryConfig(require_approval=require))
    assert (d.alias, d.status, d.champion_moves, d.gate_promote) == (alias, status, moves, promote)


def test_require_approval_is_off_by_default_and_aliases_must_differ(tmp_path: Path) -> None:
    assert KindmlConfig().registry.require_approval is False
    assert load_config(environ={"KINDML_REGISTRY__REQUIRE_APPROVAL": "true"}, cwd=tmp_path).registry.require_approval is True
    for env, needle in (({"KINDML_REGISTRY__STAGING_ALIAS": "champion"}, "must differ"),
                        ({"KINDML_REGISTRY__CHALLENGER_ALIAS": "staging"}, "must differ"),
                        ({"KINDML_REGISTRY__STAGING_ALIAS": "v3"}, "reserved by MLflow"),
                        ({"KINDML_REGISTRY__CHAMPION_ALIAS": "latest"}, "reserved by MLflow")):
        with pytest.raises(ConfigError, match=needle) as err:
            load_config(environ=env, cwd=tmp_path)
        assert next(iter(env)) in str(err.value)  # names where the bad value came from


def test_status_of_versions_registered_before_approvals() -> None:
    assert status_of({"kindml.approval": "approved"}) == "approved"
    assert status_of({"kindml.gate": "promote"}) == AUTO and status_of({"kindml.gate": "reject"}) == GATE_REJECTED
    assert status_of({}) == "unknown" and status_of({"kindml.approval": "bogus", "kindml.gate": "reject"}) == GATE_REJECTED


# --------------------------------------------------------------------------- the report


def _run_data(tmp_path: Path, registered: dict[str, Any], events: list[dict[str, Any]] | None) -> Any:
    from kindml.report.collect import RunData

    summary = {"run_id": "run-7", "status": "succeeded", "stages": {"register": {"status": "succeeded"}},
               "model": {k: registered[k] for k in ("name", "version", "promoted", "alias")}}
    return RunData(run_dir=tmp_path, summary=summary, artifacts={"registered": registered}, audit=events)


def test_report_audit_section_shows_the_trail_and_a_pending_approval(tmp_path: Path) -> None:
    from kindml.report import sections
    from kindml.report.render import SECTIONS, render_html

    assert "audit" in [sid for sid, _, _ in SECTIONS]
    reg = {"name": "m", "version": "3", "promoted": False, "alias": "staging", "awaiting_approval": True}
    mine = audit.batch([{"kind": "gate_decision", "model": "m", "version": "3", "who": "gate", "run_id": "run-7", "why": "clears <the> floor",
                         "details": {"decision": "promote", "status": PENDING}},
                        {"kind": "alias_move", "model": "m", "version": "3", "who": "gate", "run_id": "run-7", "why": "waits",
                         "details": {"alias": "staging", "from_version": None, "to_version": "3"}}])
    older = [ev(version="2", who="bob", run_id="run-6", time="2026-01-01T00:00:00.000000Z")]
    html = sections.audit(_run_data(tmp_path, reg, older + mine))
    assert "still waiting for approval" in html and "clears &lt;the&gt; floor" in html
    assert html.count('class="best"') == 2 and "bob" in html
    assert "kindml models approve m@3" in sections.registry(_run_data(tmp_path, reg, None))
    approved = [*older, *mine, ev(version="3", who="carol", run_id="run-7", why="ship it")]
    assert "approved by carol" in sections.audit(_run_data(tmp_path, reg, approved))
    assert "was not read" in sections.audit(_run_data(tmp_path, reg, None))
    assert "No audit events" in sections.audit(_run_data(tmp_path, reg, []))
    page = render_html(_run_data(tmp_path, reg, mine))
    assert '<section id="audit">' in page and "could not be rendered" not in page


def test_audit_file_path_is_in_the_workspace(tmp_path: Path) -> None:
    assert audit.AuditLog(tmp_path, HTTP).path == tmp_path / "registry" / "audit.jsonl"
    assert os.fspath(audit.FILE) == os.path.join("registry", "audit.jsonl")
